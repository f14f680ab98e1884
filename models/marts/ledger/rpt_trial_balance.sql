-- One row per posting day: total debits and credits of the day and cumulatively. They are equal on every row
-- (INV-18); BI shows it as the books' daily health check.
with

daily as (
    select
        posted_on,
        currency,
        cast(sum(debit_fen) as bigint) as debit_fen,
        cast(sum(credit_fen) as bigint) as credit_fen,
        count(distinct journal_id) as journals
    from {{ ref('hist_journal_lines') }}
    group by posted_on, currency
)

select
    posted_on,
    currency,
    journals,
    debit_fen,
    credit_fen,
    cast(sum(debit_fen) over (
        partition by currency order by posted_on rows between unbounded preceding and current row
    ) as bigint) as cumulative_debit_fen,
    cast(sum(credit_fen) over (
        partition by currency order by posted_on rows between unbounded preceding and current row
    ) as bigint) as cumulative_credit_fen
from daily
