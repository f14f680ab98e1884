-- INV-24: a frozen payout resolves at most once (TigerBeetle's two-phase transfers: a pending transfer is posted or
-- voided once). A payout or withdrawal is frozen once when we request it (PFZ, WFZ: into payouts in transit, 2203),
-- then resolved once: debited by the bank (PDB, WDB) or unfrozen when the bank refuses it (PFL, WFL), for exactly
-- the frozen amount (a payout is all or nothing, so posted = pending), never before the freeze; a return (退票: PRT,
-- WRT) only follows a debit, once. Which payout a leg belongs to comes from the fact the leg is traced to (our payout
-- event, or the statement line that quotes the payout id). Tally has no expiry of a freeze, so nothing to check there.
with

facts as (
    select
        recon_key,
        payout_id
    from {{ ref('hist_recon_results') }}
    where payout_id is not null
),

legs as (
    select
        facts.payout_id,
        j.journal_id,
        j.posted_on,
        case
            when j.journal_type in ('payout_freeze', 'withdrawal_freeze') then 'freeze'
            when j.journal_type in ('payout_debit', 'withdrawal_debit', 'payout_failed', 'withdrawal_failed')
                then 'resolution'
            when j.journal_type in ('payout_return', 'withdrawal_return') then 'return'
        end as step,
        j.journal_type in ('payout_debit', 'withdrawal_debit') as is_debit,
        j.account_code,
        j.debit_fen,
        j.credit_fen
    from {{ ref('hist_journal_lines') }} as j
    inner join facts on j.source_recon_key = facts.recon_key
    where j.journal_type in (
        'payout_freeze', 'withdrawal_freeze', 'payout_debit', 'withdrawal_debit', 'payout_failed',
        'withdrawal_failed', 'payout_return', 'withdrawal_return'
    )
),

per_payout as (
    select
        payout_id,
        count(distinct case when step = 'freeze' then journal_id end) as freezes,
        count(distinct case when step = 'resolution' then journal_id end) as resolutions,
        count(distinct case when step = 'resolution' and is_debit then journal_id end) as debits,
        count(distinct case when step = 'return' then journal_id end) as returns,
        coalesce(sum(case when step = 'freeze' and account_code = '2203' then credit_fen end), 0) as frozen_fen,
        coalesce(sum(case when step = 'resolution' and account_code = '2203' then debit_fen end), 0) as resolved_fen,
        min(case when step = 'freeze' then posted_on end) as frozen_on,
        min(case when step = 'resolution' then posted_on end) as resolved_on,
        min(case when step = 'resolution' and is_debit then posted_on end) as debited_on,
        min(case when step = 'return' then posted_on end) as returned_on
    from legs
    group by payout_id
)

select
    payout_id,
    freezes,
    resolutions,
    returns,
    frozen_fen,
    resolved_fen,
    case
        when freezes > 1 then 'frozen more than once'
        when resolutions > 1 then 'resolved more than once'
        when resolutions = 1 and freezes = 0 then 'resolved without a freeze'
        when resolutions = 1 and resolved_fen <> frozen_fen then 'resolved for another amount than was frozen'
        when resolved_on < frozen_on then 'resolved before it was frozen'
        when returns > 1 then 'returned more than once'
        when returns = 1 and debits = 0 then 'returned without a debit'
        when returned_on < debited_on then 'returned before it was debited'
    end as problem
from per_payout
where
    freezes > 1
    or resolutions > 1
    or (resolutions = 1 and freezes = 0)
    or (resolutions = 1 and resolved_fen <> frozen_fen)
    or resolved_on < frozen_on
    or returns > 1
    or (returns = 1 and debits = 0)
    or returned_on < debited_on
