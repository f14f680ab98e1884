{{ config(severity='warn') }}
-- INV-20: the channel receivable is a transit account: per channel and bill day, what the channel owes (its lines,
-- cleared or not) comes back to zero when its settlement for that bill day arrives. A bill day still open after the
-- settlement window (settlement_lag_days + suspense_days) is reported with its age. A warning: the age is the
-- finance team's signal to chase the channel (what did channel Y fail to settle).
with

as_of as (
    select {{ as_of_date() }} as as_of_date
),

open_days as (
    select
        sub_account as channel,
        channel_bill_date,
        cast(sum(debit_fen - credit_fen) as bigint) as receivable_fen
    from {{ ref('hist_journal_lines') }}
    where account_code = '1122'
    group by sub_account, channel_bill_date
    having sum(debit_fen - credit_fen) <> 0
),

calendar as (
    select * from {{ ref('channel_calendar') }}
    where recon_stream = 'trade'
)

select
    o.channel,
    o.channel_bill_date,
    o.receivable_fen,
    {{ dbt.datediff('o.channel_bill_date', 'as_of.as_of_date', 'day') }} as age_days -- noqa: LT05
from open_days as o
inner join calendar as c on o.channel = c.channel
cross join as_of
where
    o.channel_bill_date is null
    or {{ dbt.datediff('o.channel_bill_date', 'as_of.as_of_date', 'day') }} > c.settlement_lag_days + c.suspense_days -- noqa: LT05
