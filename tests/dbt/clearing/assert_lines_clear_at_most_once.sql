-- A line clears at most once (INV-15, never twice). Each state of a fact (its recon key; `@yyyymmdd` for a later
-- state after a re-issued bill changed the line) clears at most once and is reversed at most once, never before it
-- cleared and for exactly what it cleared; and a fact has at most one cleared state at any time: a later state
-- clears only from the day the one before it was reversed.
with

entries as (
    select
        replace(cleared_line_id, '/reversal', '') as state_id,
        recon_key,
        entry_kind,
        cleared_on,
        amount_fen,
        merchant_fee_fen,
        channel_cost_fen
    from {{ ref('fct_cleared_lines') }}
),

states as (
    select
        state_id,
        recon_key,
        count(case when entry_kind = 'clearing' then 1 end) as clearings,
        count(case when entry_kind = 'reversal' then 1 end) as reversals,
        min(case when entry_kind = 'clearing' then cleared_on end) as cleared_on,
        min(case when entry_kind = 'reversal' then cleared_on end) as reversed_on,
        sum(amount_fen) as net_amount_fen,
        sum(merchant_fee_fen) as net_fee_fen,
        sum(coalesce(channel_cost_fen, 0)) as net_cost_fen
    from entries
    group by state_id, recon_key
),

-- only a fact with more than one state has a state before another: the window sorts just those (a re-issued
-- bill's changed lines), not every cleared line. States without a key stay in the window too, as one partition,
-- so they are compared with each other as before (not_null reports the missing key itself).
multi_state_facts as (
    select recon_key
    from states
    where recon_key is not null
    group by recon_key
    having count(*) > 1
),

states_marked as (
    select
        states.*,
        multi_state_facts.recon_key is not null or states.recon_key is null as needs_window
    from states
    left join multi_state_facts on states.recon_key = multi_state_facts.recon_key
),

ordered as (
    select
        *,
        lag(reversed_on) over (partition by recon_key order by cleared_on, state_id) as previous_reversed_on,
        lag(state_id) over (partition by recon_key order by cleared_on, state_id) as previous_state_id
    from states_marked
    where needs_window
    union all
    select
        *,
        cast(null as date) as previous_reversed_on,
        cast(null as {{ dbt.type_string() }}) as previous_state_id
    from states_marked
    where not needs_window
)

select
    state_id,
    recon_key,
    clearings,
    reversals,
    cleared_on,
    reversed_on,
    previous_state_id,
    previous_reversed_on
from ordered
where
    clearings <> 1
    or reversals > 1
    or reversed_on < cleared_on
    or (reversals = 1 and (net_amount_fen <> 0 or net_fee_fen <> 0 or net_cost_fen <> 0))
    -- the fact's previous state was still cleared when this one cleared
    or (previous_state_id is not null and (previous_reversed_on is null or previous_reversed_on > cleared_on))
