{{ config(severity='warn') }}
-- INV-20: the channel receivable is a transit account: what a channel owes for a bill day comes back to zero when
-- its settlement arrives. Per channel, a non-zero balance older than the settlement window (settlement_lag_days +
-- suspense_days) is reported with its age. A warning: the age is the finance team's signal to chase the channel.
with

as_of as (
    select {{ as_of_date() }} as as_of_date
),

last_balances as (
    select
        sub_account as channel,
        max(balance_date) as balance_date
    from {{ ref('fct_account_balances_daily') }}
    where account_code = '1122'
    group by sub_account
),

calendar as (
    select * from {{ ref('channel_calendar') }}
    where recon_stream = 'trade'
)

select
    b.sub_account as channel,
    b.balance_date,
    b.closing_balance_fen,
    {{ dbt.datediff('b.balance_date', 'as_of.as_of_date', 'day') }} as age_days -- noqa: LT05
from {{ ref('fct_account_balances_daily') }} as b
inner join last_balances as l on b.sub_account = l.channel and b.balance_date = l.balance_date
inner join calendar as c on b.sub_account = c.channel
cross join as_of
where
    b.account_code = '1122'
    and b.closing_balance_fen <> 0
    and {{ dbt.datediff('b.balance_date', 'as_of.as_of_date', 'day') }} > c.settlement_lag_days + c.suspense_days -- noqa: LT05
