-- One row per account, sub-account and day with postings: the day's debits and credits and the closing balance
-- on the account's normal side (debit-normal: debits - credits; credit-normal: credits - debits), cumulative.
with

daily as (
    select
        account_code,
        sub_account,
        posted_on,
        cast(sum(debit_fen) as bigint) as debit_fen,
        cast(sum(credit_fen) as bigint) as credit_fen,
        count(*) as legs
    from {{ ref('hist_journal_lines') }}
    group by account_code, sub_account, posted_on
),

accounts as (
    select * from {{ ref('chart_of_accounts') }}
)

select
    daily.account_code,
    accounts.account_name,
    accounts.normal_side,
    daily.sub_account,
    daily.posted_on as balance_date,
    daily.legs,
    daily.debit_fen,
    daily.credit_fen,
    cast(
        case when accounts.normal_side = 'debit' then 1 else -1 end * sum(daily.debit_fen - daily.credit_fen) over (
            partition by daily.account_code, daily.sub_account order by daily.posted_on
            rows between unbounded preceding and current row
        ) as bigint
    ) as closing_balance_fen
from daily
inner join accounts on daily.account_code = accounts.account_code
