-- INV-17: every journal balances: at least two legs, every leg a positive whole number of fen, and per currency the
-- debits equal the credits.
select
    journal_id,
    currency,
    count(*) as legs,
    sum(debit_fen) as debit_fen,
    sum(credit_fen) as credit_fen,
    min(amount_fen) as smallest_leg_fen
from {{ ref('hist_journal_lines') }}
group by journal_id, currency
having count(*) < 2 or sum(debit_fen) <> sum(credit_fen) or min(amount_fen) <= 0
