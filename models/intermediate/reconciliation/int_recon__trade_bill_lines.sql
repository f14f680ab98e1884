/*
    Every detail line of the channels' trade bills (WeChat, Alipay, UnionPay: payments, refunds, revokes) in one
    shape, one row per line of every landed version of a bill: the current version, and the versions a re-issued
    bill superseded (file_status). int_recon__channel_lines reconciles the current ones;
    int_recon__trade_line_states compares a re-issued bill with the versions before it. Amounts are signed from the
    merchant's point of view. A view: the engine folds it into each reader, so the lines are not written twice.
*/
{{ config(materialized='view') }}

with

wechat as (
    select
        'wechat' as channel,
        'wechat_trade_bill' as source_format,
        channel_merchant_id,
        bill_date,
        row_kind,
        case when row_kind = 'refund' then refund_id else order_id end as our_id,
        case when row_kind = 'refund' then channel_refund_id else channel_serial end as channel_serial,
        channel_serial as payment_channel_serial,
        order_id,
        refund_id,
        amount_fen,
        fee_fen,
        channel_status as status,
        channel_txn_at as txn_at,
        payer_id as payer_account,
        subject as remark,
        file_version_id,
        line_no
    from {{ ref('stg_wechat__trade_bill_line_versions') }}
),

alipay as (
    select
        'alipay' as channel,
        'alipay_trade_bill' as source_format,
        cast(null as {{ dbt.type_string() }}) as channel_merchant_id,
        bill_date,
        row_kind,
        case when row_kind = 'refund' then refund_id else order_id end as our_id,
        -- a refund line repeats the payment's trade_no: with the refund request no it names the row
        case when row_kind = 'refund' then channel_serial || '/' || refund_id else channel_serial end
            as channel_serial,
        channel_serial as payment_channel_serial,
        order_id,
        refund_id,
        amount_fen,
        fee_fen,
        channel_status as status,
        channel_txn_at as txn_at,
        payer_masked as payer_account,
        subject as remark,
        file_version_id,
        line_no
    from {{ ref('stg_alipay__trade_bill_line_versions') }}
),

unionpay as (
    select
        'unionpay' as channel,
        'unionpay_zm' as source_format,
        channel_merchant_id,
        settle_date as bill_date,
        row_kind,
        case when row_kind = 'payment' then order_id else refund_id end as our_id,
        channel_serial,
        coalesce(original_channel_serial, channel_serial) as payment_channel_serial,
        order_id,
        refund_id,
        amount_fen,
        fee_fen,
        channel_status as status,
        channel_txn_at as txn_at,
        card_no_masked as payer_account,
        cast(null as {{ dbt.type_string() }}) as remark,
        file_version_id,
        line_no
    from {{ ref('stg_unionpay__zm_line_versions') }}
),

-- Alipay bill files name the merchant (PID) in the file, not in the rows: take it from the file ledger.
final as (
    select
        trade.channel,
        trade.source_format,
        coalesce(trade.channel_merchant_id, files.merchant_key) as channel_merchant_id,
        trade.bill_date,
        trade.row_kind,
        trade.our_id,
        trade.channel_serial,
        trade.payment_channel_serial,
        trade.order_id,
        trade.refund_id,
        trade.amount_fen,
        trade.fee_fen,
        trade.status,
        trade.txn_at,
        trade.payer_account,
        trade.remark,
        trade.file_version_id,
        trade.line_no,
        files.file_status,
        files.merchant_key as file_merchant_key,
        files.version_no,
        -- the first as-of date whose build could see this version: a file arrives the morning after its bill date
        case
            when cast(files.delivered_at as date) > trade.bill_date
                then cast({{ dbt.dateadd('day', -1, 'cast(files.delivered_at as date)') }} as date)
            else trade.bill_date
        end as version_known_on
    from (
        select * from wechat
        union all
        select * from alipay
        union all
        select * from unionpay
    ) as trade
    inner join {{ ref('stg_lake__file_deliveries') }} as files
        on trade.file_version_id = files.file_version_id and files.file_status in ('current', 'superseded')
)

select * from final
