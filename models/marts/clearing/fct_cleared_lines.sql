/*
    The clearing log (清分): one row per entry. A trade line clears when it is a reconciled pair whose amount and
    status agree (matched, or a fee mismatch, which is the channel's cost problem and not the merchant's), on the day
    it was reconciled (`paired_on`): a line held in suspense clears when its counterpart arrives, once. Lines in break
    do not clear, and neither do online recharges (int_account__online_recharges: they credit the prepaid balance).
    The merchant fee is recomputed from the merchant's fee plan: the rate per line half up to the fen, plus the fixed
    fee, at least the minimum; a refund gives back the original fee pro rata (half up).

    Entries are never rewritten. A line a re-issued bill repeats unchanged keeps its day and its batch
    (int_recon__trade_line_states). A line that cleared and that a re-issue then changed or dropped keeps its
    clearing entry where it was, and gets a `reversal` entry (the same amounts, negative) on the day the re-issue
    became visible, in that day's batch; the changed line clears again from that day if it still agrees with our
    record. `cleared_line_id` is the recon key (with `@yyyymmdd` for a later state of the same fact), and
    `/reversal` for a reversal.
*/
with

current_facts as (
    select * from {{ ref('hist_recon_results') }}
    where
        recon_stream = 'trade' and break_type in ('matched', 'fee_mismatch')
        -- an online recharge tops up the merchant's prepaid balance: not trade revenue, it does not clear
        and recon_key not in (select r.recon_key from {{ ref('int_account__online_recharges') }} as r)
),

-- a line of a re-issued bill: a state after its fact's first one posts under ids of its own
current_states as (
    select
        channel_line_id,
        state_suffix
    from {{ ref('int_recon__trade_line_states') }}
    where is_current
),

superseded as (
    select * from {{ ref('int_recon__superseded_trade_lines') }}
    where outcome = 'cleared'
),

entries as (
    select
        f.recon_key || coalesce(s.state_suffix, '') as state_id,
        'clearing' as entry_kind,
        f.paired_on as cleared_on,
        f.recon_key,
        f.merchant_id,
        f.channel,
        f.row_kind,
        f.bill_date,
        f.internal_amount_fen,
        f.channel_fee_fen,
        f.expected_fee_fen,
        f.break_type,
        f.order_id,
        f.refund_id,
        f.channel_serial,
        f.channel_file_version_id,
        f.channel_line_no,
        f.internal_file_version_id,
        f.internal_line_no
    from current_facts as f
    left join current_states as s on f.channel_line_id = s.channel_line_id
    union all
    -- a superseded line that had cleared: its clearing as it was posted, then its reversal on the re-issue's day
    select
        s.state_id,
        entry.entry_kind,
        case when entry.entry_kind = 'clearing' then s.paired_on else s.superseded_on end as cleared_on,
        s.recon_key,
        s.merchant_id,
        s.channel,
        s.row_kind,
        s.bill_date,
        s.internal_amount_fen,
        s.channel_fee_fen,
        s.expected_fee_fen,
        s.break_type,
        s.order_id,
        s.refund_id,
        s.channel_serial,
        s.channel_file_version_id,
        s.channel_line_no,
        s.internal_file_version_id,
        s.internal_line_no
    from superseded as s
    cross join (
        select 'clearing' as entry_kind
        union all
        select 'reversal' as entry_kind
    ) as entry
),

merchants as (
    select * from {{ ref('merchants') }}
),

plans as (
    select * from {{ ref('merchant_fee_plans') }}
),

payments as (
    select
        order_id,
        amount_fen,
        dump_date
    from {{ ref('stg_internal__payments') }}
),

priced as (
    select
        entries.*,
        merchants.fee_plan_id,
        merchants.settlement_cycle_days,
        plans.rate_bp,
        plans.fixed_fen,
        plans.min_fen,
        payments.amount_fen as order_amount_fen,
        -- the fee the original payment carries under the plan (for a refund: the fee it gives back a share of)
        greatest(
            {{ div_half_up('payments.amount_fen * plans.rate_bp', '10000') }} + plans.fixed_fen, plans.min_fen
        ) as order_fee_fen
    from entries
    inner join merchants on entries.merchant_id = merchants.merchant_id
    left join payments on entries.order_id = payments.order_id
    -- the plan in force when the payment was made prices the payment and every refund of it
    inner join plans
        on
            merchants.fee_plan_id = plans.fee_plan_id
            and entries.channel = plans.channel
            and coalesce(payments.dump_date, entries.bill_date) between plans.valid_from and plans.valid_to
),

signed as (
    select
        *,
        -- a reversal takes back exactly what its clearing posted
        case when entry_kind = 'reversal' then -1 else 1 end as entry_sign,
        -- one batch per merchant and clearing day, paid T+N business days later (fct_settlement_batches)
        'SB' || merchant_id || replace(cast(cleared_on as {{ dbt.type_string() }}), '-', '') as settlement_batch_id
    from priced
)

select
    case when entry_kind = 'reversal' then state_id || '/reversal' else state_id end as cleared_line_id,
    entry_kind,
    recon_key,
    merchant_id,
    channel,
    row_kind,
    bill_date,
    cleared_on,
    settlement_batch_id,
    -- the ledger posts a batch's lines per channel and channel bill day, one journal for clearings and one for
    -- reversals: this log is that journal's detail (a general ledger does not carry a leg per trade)
    'CLR:' || settlement_batch_id || ':' || channel || ':'
    || replace(cast(bill_date as {{ dbt.type_string() }}), '-', '')
    || case when entry_kind = 'reversal' then '/reversal' else '' end as journal_id,
    entry_sign * internal_amount_fen as amount_fen,
    entry_sign * case
        when row_kind = 'refund'
            then -{{ div_half_up('order_fee_fen * (-internal_amount_fen)', 'order_amount_fen') }}
        else order_fee_fen
    end as merchant_fee_fen,
    entry_sign * channel_fee_fen as channel_cost_fen,
    entry_sign * expected_fee_fen as expected_channel_cost_fen,
    break_type,
    fee_plan_id,
    rate_bp,
    settlement_cycle_days,
    order_id,
    refund_id,
    channel_serial,
    channel_file_version_id,
    channel_line_no,
    internal_file_version_id,
    internal_line_no
from signed
