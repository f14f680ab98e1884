-- A balance assertion (as Beancount and hledger do): at the end of every statement day, the ledger's bank account
-- (1002) holds exactly the balance the bank printed on that day's last statement line.
with

statement_close as (
    select
        statement_date,
        balance_fen,
        row_number() over (partition by statement_date order by line_no desc) as n
    from {{ ref('stg_bank__statement_lines') }}
),

ledger_as_of as (
    select
        s.statement_date,
        l.closing_balance_fen,
        row_number() over (partition by s.statement_date order by l.balance_date desc) as n
    from statement_close as s
    inner join {{ ref('fct_account_balances_daily') }} as l
        on l.account_code = '1002' and s.statement_date >= l.balance_date
    where s.n = 1
)

select
    s.statement_date,
    s.balance_fen as bank_says_fen,
    l.closing_balance_fen as ledger_says_fen
from statement_close as s
left join ledger_as_of as l on s.statement_date = l.statement_date and l.n = 1
where s.n = 1 and (l.closing_balance_fen is null or s.balance_fen <> l.closing_balance_fen)
