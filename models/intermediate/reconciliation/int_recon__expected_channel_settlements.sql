/*
    What each channel owes us per merchant and bill date: the net (amount - fee) of the lines its own bill lists as
    done, due on our bank account `settlement_lag_days` later. One row per (channel, channel merchant, bill date).
    This is the "many" side of grouped matching: one bank credit settles all of these lines at once.
*/
with

trade_lines as (
    select * from {{ ref('int_recon__channel_lines') }}
    where recon_stream = 'trade'
),

calendar as (
    select * from {{ ref('channel_calendar') }}
    where recon_stream = 'trade'
),

grouped as (
    select
        channel,
        channel_merchant_id,
        bill_date,
        count(*) as line_count,
        cast(sum(amount_fen) as bigint) as amount_fen,
        cast(sum(coalesce(fee_fen, 0)) as bigint) as fee_fen,
        cast(sum(amount_fen - coalesce(fee_fen, 0)) as bigint) as net_fen,
        max(known_on) as known_on
    from trade_lines
    -- a refund the channel still shows as PROCESSING has not moved money yet
    where status = 'SUCCESS'
    group by channel, channel_merchant_id, bill_date
)

select
    grouped.channel || ':' || grouped.channel_merchant_id || ':'
    || replace(cast(grouped.bill_date as {{ dbt.type_string() }}), '-', '') as group_key,
    grouped.channel,
    grouped.channel_merchant_id,
    grouped.bill_date,
    cast({{ dbt.dateadd('day', 'calendar.settlement_lag_days', 'grouped.bill_date') }} as date) as due_date,
    grouped.line_count,
    grouped.amount_fen,
    grouped.fee_fen,
    grouped.net_fen,
    grouped.known_on
from grouped
inner join calendar on grouped.channel = calendar.channel
-- a day that nets to zero moves no money and gets no credit
where grouped.net_fen <> 0
