-- INV-08: no money is created or lost by reconciliation. Per stream, side and bill date, the amounts in the facts
-- add up to the staged amounts (with the stream's sign: on the statement stream a payout is a debit, negative).
with

staged as (
    select
        'trade' as recon_stream,
        'channel' as side,
        bill_date,
        amount_fen
    from {{ ref('stg_wechat__trade_bill_lines') }}
    union all
    select
        'trade' as recon_stream,
        'channel' as side,
        bill_date,
        amount_fen
    from {{ ref('stg_alipay__trade_bill_lines') }}
    union all
    select
        'trade' as recon_stream,
        'channel' as side,
        settle_date as bill_date,
        amount_fen
    from {{ ref('stg_unionpay__zm_lines') }}
    union all
    select
        'payout_result' as recon_stream,
        'channel' as side,
        result_date as bill_date,
        amount_fen
    from {{ ref('stg_bank__payout_result_lines') }}
    union all
    select
        'bank_statement' as recon_stream,
        'channel' as side,
        statement_date as bill_date,
        amount_fen
    from {{ ref('stg_bank__statement_lines') }}
    union all
    select
        'trade' as recon_stream,
        'internal' as side,
        dump_date as bill_date,
        amount_fen
    from {{ ref('stg_internal__payments') }}
    union all
    select
        'trade' as recon_stream,
        'internal' as side,
        dump_date as bill_date,
        amount_fen
    from {{ ref('stg_internal__refunds') }}
    union all
    select
        'payout_result' as recon_stream,
        'internal' as side,
        dump_date as bill_date,
        amount_fen
    from {{ ref('stg_internal__payout_events') }}
    union all
    select
        'bank_statement' as recon_stream,
        'internal' as side,
        dump_date as bill_date,
        case when status = 'RETURNED' then amount_fen else -amount_fen end as amount_fen
    from {{ ref('stg_internal__payout_events') }}
    where status in ('SUCCESS', 'RETURNED')
    union all
    select
        'bank_statement' as recon_stream,
        'internal' as side,
        dump_date as bill_date,
        amount_fen
    from {{ ref('stg_internal__recharges') }}
    union all
    select
        'bank_statement' as recon_stream,
        'internal' as side,
        bill_date,
        net_fen as amount_fen
    from {{ ref('int_recon__expected_channel_settlements') }}
),

staged_totals as (
    select
        recon_stream,
        side,
        bill_date,
        sum(amount_fen) as staged_fen
    from staged
    group by recon_stream, side, bill_date
),

-- each side of a fact keeps its own bill date: a pair across midnight counts on both days. A fact's bill date is
-- its channel line's when it has one, so only our side needs its record's.
fact_sides as (
    select
        recon_stream,
        'channel' as side,
        bill_date,
        channel_amount_fen as amount_fen
    from {{ ref('hist_recon_results') }}
    where channel_line_id is not null
    union all
    select
        f.recon_stream,
        'internal' as side,
        i.bill_date,
        f.internal_amount_fen as amount_fen
    from {{ ref('hist_recon_results') }} as f
    inner join {{ ref('int_recon__internal_records') }} as i on f.internal_record_id = i.internal_record_id
),

fact_totals as (
    select
        recon_stream,
        side,
        bill_date,
        sum(amount_fen) as fact_fen
    from fact_sides
    group by recon_stream, side, bill_date
)

select
    coalesce(s.recon_stream, f.recon_stream) as recon_stream,
    coalesce(s.side, f.side) as side,
    coalesce(s.bill_date, f.bill_date) as bill_date,
    s.staged_fen,
    f.fact_fen
from staged_totals as s
full outer join fact_totals as f
    on s.recon_stream = f.recon_stream and s.side = f.side and s.bill_date = f.bill_date
where coalesce(s.staged_fen, 0) <> coalesce(f.fact_fen, 0)
