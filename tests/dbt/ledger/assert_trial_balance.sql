-- INV-18: the trial balance holds per day and cumulatively: total debits equal total credits.
select
    posted_on,
    currency,
    debit_fen,
    credit_fen,
    cumulative_debit_fen,
    cumulative_credit_fen
from {{ ref('rpt_trial_balance') }}
where debit_fen <> credit_fen or cumulative_debit_fen <> cumulative_credit_fen
