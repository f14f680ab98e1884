-- INV-04: per current file, the staged detail rows add up to the file's own control totals (WeChat summary rows,
-- Alipay #合计 lines and 汇总 file, the payout batch header, the bank statement's 合计 row). A quarantined row
-- makes its file fail here on purpose: money in that file is not accounted for until the row is resolved.
with

files as (
    select * from {{ ref('stg_lake__file_deliveries') }}
    where file_status = 'current' and not is_empty_day
),

detail as (
    select
        file_version_id,
        count(*) as row_count,
        sum(case when row_kind = 'payment' then amount_fen else 0 end) as payment_fen,
        sum(case when row_kind = 'refund' then -amount_fen else 0 end) as refund_fen,
        sum(fee_fen) as fee_fen,
        cast(null as bigint) as credit_fen,
        cast(null as bigint) as debit_fen
    from {{ ref('stg_wechat__trade_bill_lines') }}
    group by file_version_id
    union all
    select
        file_version_id,
        count(*) as row_count,
        sum(case when row_kind = 'payment' then amount_fen else 0 end) as payment_fen,
        -- Alipay prints the refund total negative
        sum(case when row_kind = 'refund' then amount_fen else 0 end) as refund_fen,
        -- and the 汇总 服务费 total with the file's own sign (charged fees negative)
        -sum(fee_fen) as fee_fen,
        cast(null as bigint) as credit_fen,
        cast(null as bigint) as debit_fen
    from {{ ref('stg_alipay__trade_bill_lines') }}
    group by file_version_id
    union all
    select
        file_version_id,
        count(*) as row_count,
        sum(amount_fen) as payment_fen,
        cast(null as bigint) as refund_fen,
        cast(null as bigint) as fee_fen,
        cast(null as bigint) as credit_fen,
        cast(null as bigint) as debit_fen
    from {{ ref('stg_bank__payout_result_lines') }}
    group by file_version_id
    union all
    select
        file_version_id,
        cast(null as bigint) as row_count,
        cast(null as bigint) as payment_fen,
        cast(null as bigint) as refund_fen,
        cast(null as bigint) as fee_fen,
        sum(credit_fen) as credit_fen,
        sum(debit_fen) as debit_fen
    from {{ ref('stg_bank__statement_lines') }}
    group by file_version_id
),

compared as (
    select
        files.file_version_id,
        files.source_path,
        files.ctl_row_count,
        detail.row_count,
        files.ctl_payment_fen,
        detail.payment_fen,
        files.ctl_refund_fen,
        detail.refund_fen,
        files.ctl_fee_fen,
        detail.fee_fen,
        files.ctl_credit_fen,
        detail.credit_fen,
        files.ctl_debit_fen,
        detail.debit_fen
    from files
    left join detail on files.file_version_id = detail.file_version_id
)

select * from compared
where
    (ctl_row_count is not null and ctl_row_count <> coalesce(row_count, 0))
    or (ctl_payment_fen is not null and ctl_payment_fen <> coalesce(payment_fen, 0))
    or (ctl_refund_fen is not null and ctl_refund_fen <> coalesce(refund_fen, 0))
    or (ctl_fee_fen is not null and ctl_fee_fen <> coalesce(fee_fen, 0))
    or (ctl_credit_fen is not null and ctl_credit_fen <> coalesce(credit_fen, 0))
    or (ctl_debit_fen is not null and ctl_debit_fen <> coalesce(debit_fen, 0))
