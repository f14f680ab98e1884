-- INV-10: duplicates are flagged, not dropped. Per stream, the channel lines that repeat a row id already listed
-- (same serial / payout state / bank serial; counted from staging for trade bills) equal the channel-side
-- duplicate facts, and every one of them is still a fact.
with

trade_staged as (
    select
        row_kind,
        channel_serial
    from {{ ref('stg_wechat__trade_bill_lines') }}
    where row_kind <> 'refund'
    union all
    select
        row_kind,
        channel_refund_id as channel_serial
    from {{ ref('stg_wechat__trade_bill_lines') }}
    where row_kind = 'refund'
    union all
    -- an Alipay refund line repeats the payment's trade_no; its row id adds the refund request no
    select
        row_kind,
        case when row_kind = 'refund' then channel_serial || '/' || refund_id else channel_serial end
            as channel_serial
    from {{ ref('stg_alipay__trade_bill_lines') }}
    union all
    select
        row_kind,
        channel_serial
    from {{ ref('stg_unionpay__zm_lines') }}
),

extra_rows as (
    select
        'trade' as recon_stream,
        count(*) - count(distinct row_kind || ':' || channel_serial) as extra
    from trade_staged
    union all
    select
        recon_stream,
        count(*) - count(distinct duplicate_key) as extra
    from {{ ref('int_recon__channel_lines') }}
    where recon_stream <> 'trade'
    group by recon_stream
),

flagged as (
    select
        recon_stream,
        count(*) as duplicates
    from {{ ref('hist_recon_results') }}
    where break_type = 'duplicate' and channel_line_id is not null
    group by recon_stream
)

select
    extra_rows.recon_stream,
    extra_rows.extra,
    coalesce(flagged.duplicates, 0) as flagged
from extra_rows
left join flagged on extra_rows.recon_stream = flagged.recon_stream
where extra_rows.extra <> coalesce(flagged.duplicates, 0)
