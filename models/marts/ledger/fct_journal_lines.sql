/*
    The double-entry journal: one row per leg. Every money movement Tally knows is a journal whose debits equal its
    credits (INV-17). A journal is made of movements, each one amount from one account to another (two legs):
    - CLR (clearing): the channel owes us the amount and we owe the merchant it; the merchant pays our fee; the
      channel's cost reduces what it owes us. One journal per settlement batch, channel and channel bill day posts
      the net of its cleared lines (refunds' negative amounts run the movements backwards); fct_cleared_lines is its
      detail, one row per line with the journal's id (a subledger under a general ledger: a leg per trade made the
      journal six times the trades, 60M rows on a 10M-trade day).
    - BRK (a channel line that moved money but did not clear: a break or a line in suspense): the channel owes us its
      net all the same (it settles its own bill); the money waits in unreconciled channel funds (挂账).
    - A re-issued bill never rewrites what was posted: a line it changed or dropped keeps the CLR, RCO or BRK its
      earlier version posted, and is reversed (the same legs the other way) on the day the re-issue became visible:
      an RCO or BRK by a journal of its id with `/reversal`, a cleared line in that day's CLR `/reversal` journal;
      the changed line then posts again as what it now is, under an id of its own (`@yyyymmdd`). Lines the
      re-issue repeats unchanged keep their entries as they were.
    - SCF (settlement carry-forward): a batch that nets negative pays nothing; the shortfall moves from the merchant
      payable to a receivable from the merchant (1123) until a later batch recovers it (fct_settlement_batches).
    - OPN: the bank account's balance before the first statement Tally has, from that statement.
    - Every line of our bank statement moves the bank account: STL a channel settlement (out of the channel
      receivable), PDB a payout leaving (out of payouts in transit), PRT a payout returned (退票, back to the
      merchant), RCG an offline recharge (to the merchant's prepaid balance); a line that did not reconcile goes to
      unreconciled funds instead.
    - PFZ freezes a payout's amount when we request it (merchant payable -> payouts in transit); PFL unfreezes it
      when it fails.
    - Account system events: RCO an online recharge (a reconciled channel line whose order is a recharge: the channel
      owes us, the merchant's prepaid balance is credited, the channel's cost is ours); a withdrawal (提现) from the
      prepaid balance is frozen on request (WFZ: prepaid balance -> payouts in transit), debited by the bank (WDB),
      unfrozen when it fails (WFL) and given back when the bank returns it (WRT, 退票).
    - DSP (an accepted disposition): the money a break holds in unreconciled funds (2241) goes where the analyst
      decided: a payable to the payer (refund by the original route, or payout), a claim on the channel (chase
      funds), or written off to non-operating income or expense (ignore out of system); manual review moves nothing.
      Chasing a fee mismatch claims the overcharged fee back from channel cost. Posted on the decision day, with
      the disposition file's line as its lineage.
    Amounts are positive fen with a side; `source_*` columns give each leg's lineage to the fact and file line.
*/
with

facts as (
    select * from {{ ref('hist_recon_results') }}
),

-- each CLR journal: the sums of its cleared lines
clearing_journals as (
    select
        journal_id,
        entry_kind,
        cleared_on,
        merchant_id,
        channel,
        bill_date,
        cast(sum(amount_fen) as bigint) as amount_fen,
        cast(sum(merchant_fee_fen) as bigint) as merchant_fee_fen,
        cast(sum(channel_cost_fen) as bigint) as channel_cost_fen
    from {{ ref('fct_cleared_lines') }}
    group by journal_id, entry_kind, cleared_on, merchant_id, channel, bill_date
),

online_recharges as (
    select * from {{ ref('int_account__online_recharges') }}
),

-- lines of re-issued bills: a later state of a fact posts under an id of its own
current_states as (
    select
        channel_line_id,
        state_suffix
    from {{ ref('int_recon__trade_line_states') }}
    where is_current
),

-- the day each channel line was first visible (a re-issue that repeats it unchanged keeps that day)
channel_known as (
    select
        channel_line_id,
        known_on
    from {{ ref('int_recon__channel_lines') }}
    where recon_stream = 'trade'
),

-- lines a re-issue changed or dropped, as they were while current
superseded_lines as (
    select * from {{ ref('int_recon__superseded_trade_lines') }}
),

-- a channel line that moved money but did not clear: held in unreconciled funds from the day the line was first
-- visible (not the day our record was: no earlier build saw the line, so none posted it earlier)
held_lines as (
    select
        facts.recon_key || coalesce(s.state_suffix, '') as state_id,
        'held' as entry_kind,
        k.known_on as posted_on,
        facts.channel,
        facts.channel_amount_fen - coalesce(facts.channel_fee_fen, 0) as amount_fen,
        facts.bill_date,
        facts.recon_key,
        facts.channel_file_version_id,
        facts.channel_line_no
    from facts
    inner join channel_known as k on facts.channel_line_id = k.channel_line_id
    left join current_states as s on facts.channel_line_id = s.channel_line_id
    where
        facts.recon_stream = 'trade' and facts.channel_line_id is not null and facts.channel_status = 'SUCCESS'
        and not (facts.internal_record_id is not null and facts.break_type in ('matched', 'fee_mismatch'))
    union all
    select
        s.state_id,
        entry.entry_kind,
        case when entry.entry_kind = 'reversal' then s.superseded_on else s.state_known_on end as posted_on,
        s.channel,
        entry.entry_sign * (s.channel_amount_fen - coalesce(s.channel_fee_fen, 0)) as amount_fen,
        s.bill_date,
        s.recon_key,
        s.channel_file_version_id,
        s.channel_line_no
    from superseded_lines as s
    cross join (
        select
            'held' as entry_kind,
            1 as entry_sign
        union all
        select
            'reversal' as entry_kind,
            -1 as entry_sign
    ) as entry
    where s.outcome = 'held'
),

batches as (
    select * from {{ ref('fct_settlement_batches') }}
),

-- what each payout is for: a settlement batch (merchant payable) or a withdrawal from the prepaid balance
payout_purposes as (
    select
        payout_id,
        max(biz_type) as payout_biz_type
    from {{ ref('stg_internal__payout_events') }}
    group by payout_id
),

statement_lines as (
    select
        facts.*,
        payout_purposes.payout_biz_type
    from facts
    left join payout_purposes on facts.payout_id = payout_purposes.payout_id
    where facts.recon_stream = 'bank_statement' and facts.channel_line_id is not null
),

-- the disposition an analyst accepted for a fact, with the file line it was filed on (the latest filing of the
-- same decision if it was filed twice)
accepted as (
    select
        f.recon_key,
        f.channel,
        f.break_type,
        f.fee_delta_fen,
        f.accepted_disposition,
        cast(f.decided_at as date) as decided_on,
        d.file_version_id,
        d.line_no,
        row_number() over (partition by f.recon_key order by d.file_version_id desc, d.line_no desc) as n
    from facts as f
    inner join {{ ref('stg_internal__recon_dispositions') }} as d
        on
            f.recon_key = d.recon_key
            and f.accepted_disposition = d.disposition
            and f.decided_at = d.decided_at
),

opening as (
    select
        s.statement_date,
        s.balance_fen - s.amount_fen as opening_fen,
        s.file_version_id,
        s.line_no,
        row_number() over (order by s.statement_date, s.line_no) as n
    from {{ ref('stg_bank__statement_lines') }} as s
),

payout_events as (
    select
        facts.*,
        payout_purposes.payout_biz_type,
        row_number() over (
            partition by facts.payout_id order by facts.bill_date, facts.internal_txn_at, facts.internal_line_no
        ) as n
    from facts
    left join payout_purposes on facts.payout_id = payout_purposes.payout_id
    where facts.recon_stream = 'payout_result' and facts.internal_record_id is not null
),

-- one row per movement: `amount_fen` goes from credit_account to debit_account (negative runs it backwards)
movements as (
    select
        journal_id,
        case when entry_kind = 'reversal' then 'clearing_reversal' else 'clearing' end as journal_type,
        cleared_on as posted_on,
        1 as movement_no,
        '1122' as debit_account,
        channel as debit_sub,
        '2202' as credit_account,
        merchant_id as credit_sub,
        amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        bill_date as channel_bill_date,
        -- the journal's lines are its rows in fct_cleared_lines
        'cleared_lines|' || journal_id as source_recon_key,
        cast(null as {{ dbt.type_string() }}) as source_file_version_id,
        cast(null as bigint) as source_line_no
    from clearing_journals
    union all
    select
        journal_id,
        case when entry_kind = 'reversal' then 'clearing_reversal' else 'clearing' end as journal_type,
        cleared_on as posted_on,
        2 as movement_no,
        '2202' as debit_account,
        merchant_id as debit_sub,
        '6001' as credit_account,
        channel as credit_sub,
        merchant_fee_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        bill_date as channel_bill_date,
        -- the journal's lines are its rows in fct_cleared_lines
        'cleared_lines|' || journal_id as source_recon_key,
        cast(null as {{ dbt.type_string() }}) as source_file_version_id,
        cast(null as bigint) as source_line_no
    from clearing_journals
    union all
    select
        journal_id,
        case when entry_kind = 'reversal' then 'clearing_reversal' else 'clearing' end as journal_type,
        cleared_on as posted_on,
        3 as movement_no,
        '6401' as debit_account,
        channel as debit_sub,
        '1122' as credit_account,
        channel as credit_sub,
        channel_cost_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        bill_date as channel_bill_date,
        -- the journal's lines are its rows in fct_cleared_lines
        'cleared_lines|' || journal_id as source_recon_key,
        cast(null as {{ dbt.type_string() }}) as source_file_version_id,
        cast(null as bigint) as source_line_no
    from clearing_journals
    union all
    select
        'BRK:' || case when entry_kind = 'reversal' then state_id || '/reversal' else state_id end as journal_id,
        case when entry_kind = 'reversal' then 'uncleared_channel_line_reversal' else 'uncleared_channel_line' end
            as journal_type,
        posted_on,
        1 as movement_no,
        '1122' as debit_account,
        channel as debit_sub,
        '2241' as credit_account,
        channel as credit_sub,
        amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        bill_date as channel_bill_date,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from held_lines
    union all
    select
        'RCO:' || credit_id as journal_id,
        case when entry_kind = 'reversal' then 'online_recharge_reversal' else 'online_recharge' end as journal_type,
        credited_on as posted_on,
        1 as movement_no,
        '1122' as debit_account,
        channel as debit_sub,
        '2204' as credit_account,
        merchant_id as credit_sub,
        amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        bill_date as channel_bill_date,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from online_recharges
    union all
    select
        'RCO:' || credit_id as journal_id,
        case when entry_kind = 'reversal' then 'online_recharge_reversal' else 'online_recharge' end as journal_type,
        credited_on as posted_on,
        2 as movement_no,
        '6401' as debit_account,
        channel as debit_sub,
        '1122' as credit_account,
        channel as credit_sub,
        channel_cost_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        bill_date as channel_bill_date,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from online_recharges
    union all
    select
        'OPN:' || file_version_id as journal_id,
        'opening_balance' as journal_type,
        statement_date as posted_on,
        1 as movement_no,
        '1002' as debit_account,
        'settlement' as debit_sub,
        '3001' as credit_account,
        'settlement' as credit_sub,
        opening_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        cast(null as date) as channel_bill_date,
        'bank_statement|opening:' || file_version_id as source_recon_key,
        file_version_id as source_file_version_id,
        line_no as source_line_no
    from opening
    where n = 1
    union all
    -- every statement line moves the bank account; the other side depends on what it reconciled to
    select
        case
            when break_type <> 'matched' then 'UNR:'
            when row_kind = 'channel_settlement' then 'STL:'
            when row_kind = 'payout' and payout_biz_type = 'WITHDRAWAL' then 'WDB:'
            when row_kind = 'payout' then 'PDB:'
            when row_kind = 'payout_return' and payout_biz_type = 'WITHDRAWAL' then 'WRT:'
            when row_kind = 'payout_return' then 'PRT:'
            when row_kind = 'recharge' then 'RCG:'
            else 'UNR:'
        end || recon_key as journal_id,
        case
            when break_type <> 'matched' then 'unreconciled_bank_line'
            when row_kind = 'channel_settlement' then 'channel_settlement'
            when row_kind = 'payout' and payout_biz_type = 'WITHDRAWAL' then 'withdrawal_debit'
            when row_kind = 'payout' then 'payout_debit'
            when row_kind = 'payout_return' and payout_biz_type = 'WITHDRAWAL' then 'withdrawal_return'
            when row_kind = 'payout_return' then 'payout_return'
            when row_kind = 'recharge' then 'recharge'
            else 'unreconciled_bank_line'
        end as journal_type,
        bill_date as posted_on,
        1 as movement_no,
        '1002' as debit_account,
        'settlement' as debit_sub,
        case
            when break_type <> 'matched' then '2241'
            when row_kind = 'channel_settlement' then '1122'
            when row_kind = 'payout' then '2203'
            -- a returned withdrawal goes back to the prepaid balance it came from
            when row_kind = 'payout_return' and payout_biz_type = 'WITHDRAWAL' then '2204'
            when row_kind = 'payout_return' then '2202'
            when row_kind = 'recharge' then '2204'
            else '2241'
        end as credit_account,
        case
            when break_type <> 'matched' then 'bank'
            when row_kind = 'channel_settlement' then settled_channel
            else merchant_id
        end as credit_sub,
        -- credit - debit: a payout debit is negative and runs the movement backwards
        channel_amount_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        case when row_kind = 'channel_settlement' and break_type = 'matched' then settled_bill_date end
            as channel_bill_date,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from statement_lines
    union all
    select
        case when payout_biz_type = 'WITHDRAWAL' then 'WFZ:' else 'PFZ:' end || payout_id as journal_id,
        case when payout_biz_type = 'WITHDRAWAL' then 'withdrawal_freeze' else 'payout_freeze' end as journal_type,
        bill_date as posted_on,
        1 as movement_no,
        -- a withdrawal is frozen out of the prepaid balance, a settlement payout out of the merchant payable
        case when payout_biz_type = 'WITHDRAWAL' then '2204' else '2202' end as debit_account,
        merchant_id as debit_sub,
        '2203' as credit_account,
        merchant_id as credit_sub,
        internal_amount_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        cast(null as date) as channel_bill_date,
        recon_key as source_recon_key,
        internal_file_version_id as source_file_version_id,
        internal_line_no as source_line_no
    from payout_events
    where n = 1
    union all
    select
        case when payout_biz_type = 'WITHDRAWAL' then 'WFL:' else 'PFL:' end || payout_id as journal_id,
        case when payout_biz_type = 'WITHDRAWAL' then 'withdrawal_failed' else 'payout_failed' end as journal_type,
        bill_date as posted_on,
        1 as movement_no,
        '2203' as debit_account,
        merchant_id as debit_sub,
        case when payout_biz_type = 'WITHDRAWAL' then '2204' else '2202' end as credit_account,
        merchant_id as credit_sub,
        internal_amount_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        cast(null as date) as channel_bill_date,
        recon_key as source_recon_key,
        internal_file_version_id as source_file_version_id,
        internal_line_no as source_line_no
    from payout_events
    where internal_status = 'FAILED'
    union all
    -- a batch's shortfall (net below what it carried in) to or from the receivable from the merchant
    select
        'SCF:' || settlement_batch_id as journal_id,
        'settlement_carry_forward' as journal_type,
        cleared_on as posted_on,
        1 as movement_no,
        '1123' as debit_account,
        merchant_id as debit_sub,
        '2202' as credit_account,
        merchant_id as credit_sub,
        carried_in_fen - carried_out_fen as amount_fen,
        cast(null as date) as channel_bill_date,
        'settlement_batch|' || settlement_batch_id as source_recon_key,
        cast(null as {{ dbt.type_string() }}) as source_file_version_id,
        cast(null as bigint) as source_line_no
    from batches
    where carried_in_fen <> carried_out_fen
),

-- what each break holds in unreconciled funds (BRK and UNR put it there)
held as (
    select
        source_recon_key,
        credit_sub,
        cast(sum(amount_fen) as bigint) as held_fen
    from movements
    where credit_account = '2241'
    group by source_recon_key, credit_sub
),

disposition_movements as (
    select
        'DSP:' || accepted.recon_key as journal_id,
        case accepted.accepted_disposition
            when 'refund_original_route' then 'disposition_refund'
            when 'payout' then 'disposition_payout'
            when 'chase_funds' then 'disposition_chase_funds'
            else 'disposition_write_off'
        end as journal_type,
        accepted.decided_on as posted_on,
        1 as movement_no,
        '2241' as debit_account,
        held.credit_sub as debit_sub,
        case
            when accepted.accepted_disposition in ('refund_original_route', 'payout') then '2205'
            when accepted.accepted_disposition = 'chase_funds' then '1221'
            -- money nobody is owed is income; money that left without a counterpart is a loss
            when held.held_fen > 0 then '6301'
            else '6711'
        end as credit_account,
        held.credit_sub,
        held.held_fen as amount_fen,
        cast(null as date) as channel_bill_date,
        accepted.recon_key as source_recon_key,
        accepted.file_version_id as source_file_version_id,
        accepted.line_no as source_line_no
    from accepted
    inner join held on accepted.recon_key = held.source_recon_key
    where
        accepted.n = 1 and held.held_fen <> 0
        and accepted.accepted_disposition in ('refund_original_route', 'payout', 'chase_funds', 'ignore_out_of_system')
    union all
    -- chasing a fee mismatch: what the channel charged over its contract becomes a claim on it, out of channel cost
    select
        'DSP:' || recon_key as journal_id,
        'disposition_chase_funds' as journal_type,
        decided_on as posted_on,
        1 as movement_no,
        '1221' as debit_account,
        channel as debit_sub,
        '6401' as credit_account,
        channel as credit_sub,
        fee_delta_fen as amount_fen,
        cast(null as date) as channel_bill_date,
        recon_key as source_recon_key,
        file_version_id as source_file_version_id,
        line_no as source_line_no
    from accepted
    where n = 1 and accepted_disposition = 'chase_funds' and break_type = 'fee_mismatch' and fee_delta_fen <> 0
),

all_movements as (
    select * from movements
    union all
    select * from disposition_movements
),

legs as (
    select
        journal_id,
        journal_type,
        posted_on,
        2 * movement_no - 1 as leg_no,
        debit_account as account_code,
        debit_sub as sub_account,
        amount_fen as signed_fen,
        channel_bill_date,
        source_recon_key,
        source_file_version_id,
        source_line_no
    from all_movements
    union all
    select
        journal_id,
        journal_type,
        posted_on,
        2 * movement_no as leg_no,
        credit_account as account_code,
        credit_sub as sub_account,
        -amount_fen as signed_fen,
        channel_bill_date,
        source_recon_key,
        source_file_version_id,
        source_line_no
    from all_movements
)

select
    legs.journal_id,
    legs.journal_type,
    legs.posted_on,
    cast(legs.leg_no as integer) as leg_no,
    legs.account_code,
    accounts.account_name,
    legs.sub_account,
    case when legs.signed_fen > 0 then 'debit' else 'credit' end as side,
    case when legs.signed_fen > 0 then legs.signed_fen else 0 end as debit_fen,
    case when legs.signed_fen < 0 then -legs.signed_fen else 0 end as credit_fen,
    abs(legs.signed_fen) as amount_fen,
    'CNY' as currency,
    case when legs.account_code = '1122' then legs.channel_bill_date end as channel_bill_date,
    legs.source_recon_key,
    legs.source_file_version_id,
    legs.source_line_no
from legs
inner join {{ ref('chart_of_accounts') }} as accounts on legs.account_code = accounts.account_code
-- a movement of zero (no fee, no cost) moves nothing and is left out
where
    legs.signed_fen <> 0
    -- days moved to the history archive (tally archive) stay out of the hot table, also when it is rebuilt;
    -- hist_journal_lines reads them from the archive
    and legs.posted_on not in ({{ archived_partitions('fct_journal_lines') }})
