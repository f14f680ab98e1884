-- INV-19: no balance drift: each stored closing balance equals the sum of the account's journal legs up to that day,
-- recomputed here from the journal with a join (not with the window the balance model uses).
with

balances as (
    select * from {{ ref('fct_account_balances_daily') }}
),

recomputed as (
    select
        b.account_code,
        b.sub_account,
        b.balance_date,
        case when b.normal_side = 'debit' then 1 else -1 end * sum(j.debit_fen - j.credit_fen) as balance_fen
    from balances as b
    inner join {{ ref('hist_journal_lines') }} as j
        on b.account_code = j.account_code and b.sub_account = j.sub_account and b.balance_date >= j.posted_on
    group by b.account_code, b.sub_account, b.balance_date, b.normal_side
)

select
    balances.account_code,
    balances.sub_account,
    balances.balance_date,
    balances.closing_balance_fen,
    recomputed.balance_fen
from balances
left join recomputed
    on
        balances.account_code = recomputed.account_code
        and balances.sub_account = recomputed.sub_account
        and balances.balance_date = recomputed.balance_date
where recomputed.balance_fen is null or balances.closing_balance_fen <> recomputed.balance_fen
