-- INV-22: two-way traceability. Every money-moving fact has its journal: each clearing journal of cleared lines
-- (CLR, whose lines add up to its legs: assert_clearing_journals_tie_to_cleared_lines), each reconciled
-- online recharge (RCO), each channel line that moved money without clearing (BRK), each bank statement line (STL,
-- PDB, PRT, WDB, WRT, RCG or UNR), each payout or withdrawal we requested (PFZ, WFZ) and each that failed (PFL, WFL),
-- each accepted disposition that moves money (DSP), each batch that carries a shortfall in or out (SCF), and each
-- line a re-issued bill superseded that had been credited or held (its RCO or BRK, and the reversal: same family;
-- one that had cleared is in fct_cleared_lines); every journal points back at a fact that exists (a superseded line
-- at its fact or its superseded state, a clearing journal at its cleared lines, a carry-forward at its batch, the
-- opening balance OPN at the statement line it comes from), and all legs of one journal point at the same fact.
with

facts as (
    select * from {{ ref('hist_recon_results') }}
),

superseded as (
    select * from {{ ref('int_recon__superseded_trade_lines') }}
),

-- clearing journals that move money (lines that net to nothing in every movement post no legs)
clearing_journals as (
    select 'cleared_lines|' || journal_id as source_recon_key
    from {{ ref('fct_cleared_lines') }}
    group by journal_id
    having sum(amount_fen) <> 0 or sum(merchant_fee_fen) <> 0 or sum(channel_cost_fen) <> 0
),

carrying_batches as (
    select 'settlement_batch|' || settlement_batch_id as source_recon_key
    from {{ ref('fct_settlement_batches') }}
    where carried_in_fen <> carried_out_fen
),

-- only the facts that journals name: a journal is posted for few facts (not for a matched trade, which clears), so
-- the check's hash table holds journal keys, not every fact's key (at 30M trades, every key overran DuckDB's memory)
journal_keys as (
    select distinct source_recon_key
    from {{ ref('hist_journal_lines') }}
),

sources as (
    select recon_key as source_recon_key from facts
    where recon_key in (select k.source_recon_key from journal_keys as k)
    union all
    select recon_key as source_recon_key from superseded
    where recon_key in (select k.source_recon_key from journal_keys as k)
    union all
    select source_recon_key from carrying_batches
    union all
    select source_recon_key from clearing_journals
),

recharge_orders as (
    select order_id from {{ ref('stg_internal__payments') }}
    where biz_type = 'RECHARGE'
),

withdrawals as (
    select distinct payout_id from {{ ref('stg_internal__payout_events') }}
    where biz_type = 'WITHDRAWAL'
),

-- facts whose money sits in unreconciled funds until a disposition moves it
held_in_2241 as (
    select recon_key
    from facts
    where
        recon_stream = 'trade' and channel_line_id is not null and channel_status = 'SUCCESS'
        and not (internal_record_id is not null and break_type in ('matched', 'fee_mismatch'))
        and channel_amount_fen - coalesce(channel_fee_fen, 0) <> 0
    union all
    select recon_key
    from facts
    where
        recon_stream = 'bank_statement' and channel_line_id is not null and break_type <> 'matched'
        and channel_amount_fen <> 0
),

expected as (
    select
        source_recon_key,
        'CLR' as family
    from clearing_journals
    union all
    select
        recon_key as source_recon_key,
        'RCO' as family
    from facts
    where
        recon_stream = 'trade' and break_type in ('matched', 'fee_mismatch')
        and order_id in (select r.order_id from recharge_orders as r)
    union all
    select
        recon_key as source_recon_key,
        'DSP' as family
    from facts
    where
        accepted_disposition in ('refund_original_route', 'payout', 'chase_funds', 'ignore_out_of_system')
        and recon_key in (select h.recon_key from held_in_2241 as h)
    union all
    select
        recon_key as source_recon_key,
        'DSP' as family
    from facts
    where accepted_disposition = 'chase_funds' and break_type = 'fee_mismatch' and fee_delta_fen <> 0
    union all
    select
        recon_key as source_recon_key,
        'BRK' as family
    from facts
    where
        recon_stream = 'trade' and channel_line_id is not null and channel_status = 'SUCCESS'
        and not (internal_record_id is not null and break_type in ('matched', 'fee_mismatch'))
        and channel_amount_fen - coalesce(channel_fee_fen, 0) <> 0
    union all
    select
        recon_key as source_recon_key,
        case outcome when 'credited' then 'RCO' else 'BRK' end as family
    from superseded
    where
        outcome = 'credited'
        or (outcome = 'held' and channel_amount_fen - coalesce(channel_fee_fen, 0) <> 0)
    union all
    select
        source_recon_key,
        'SCF' as family
    from carrying_batches
    union all
    select
        recon_key as source_recon_key,
        'BANK' as family
    from facts
    where recon_stream = 'bank_statement' and channel_line_id is not null and channel_amount_fen <> 0
    union all
    select
        min(recon_key) as source_recon_key,
        case when payout_id in (select w.payout_id from withdrawals as w) then 'WFZ' else 'PFZ' end as family
    from (
        select
            recon_key,
            payout_id,
            row_number() over (partition by payout_id order by bill_date, internal_txn_at, internal_line_no) as n
        from facts
        where recon_stream = 'payout_result' and internal_record_id is not null
    ) as firsts
    where n = 1
    group by payout_id
    union all
    select
        recon_key as source_recon_key,
        case when payout_id in (select w.payout_id from withdrawals as w) then 'WFL' else 'PFL' end as family
    from facts
    where recon_stream = 'payout_result' and internal_record_id is not null and internal_status = 'FAILED'
),

journals as (
    select distinct
        source_recon_key,
        case
            when left(journal_id, 4) in ('STL:', 'PDB:', 'PRT:', 'WDB:', 'WRT:', 'RCG:', 'UNR:') then 'BANK'
            else left(journal_id, 3)
        end as family
    from {{ ref('hist_journal_lines') }}
    where journal_type <> 'opening_balance'
),

mixed_sources as (
    select journal_id
    from {{ ref('hist_journal_lines') }}
    group by journal_id
    having count(distinct source_recon_key) > 1
)

select
    coalesce(expected.source_recon_key, journals.source_recon_key) as source_recon_key,
    coalesce(expected.family, journals.family) as family,
    expected.source_recon_key is null as journal_without_source,
    journals.source_recon_key is null as source_without_journal
from expected
full outer join journals
    on expected.source_recon_key = journals.source_recon_key and expected.family = journals.family
where
    expected.source_recon_key is null
    or journals.source_recon_key is null
    or journals.source_recon_key not in (select s.source_recon_key from sources as s)
union all
select
    journal_id as source_recon_key,
    'legs point at different facts' as family,
    true as journal_without_source,
    false as source_without_journal
from mixed_sources
