-- INV-21: an account the chart flags as never negative (merchant payable, our bank account) never closes a day
-- below zero.
select
    b.account_code,
    b.sub_account,
    b.balance_date,
    b.closing_balance_fen
from {{ ref('fct_account_balances_daily') }} as b
inner join {{ ref('chart_of_accounts') }} as a on b.account_code = a.account_code
where not a.may_go_negative and b.closing_balance_fen < 0
