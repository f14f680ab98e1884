-- INV-22, the amounts: each clearing journal (CLR) is the sum of its cleared lines, the subledger under it
-- (fct_cleared_lines rows with its journal_id). The channel receivable moves by the amount less the channel's cost,
-- the merchant payable by the amount less our fee, fee revenue by our fee and channel cost by the channel's fee;
-- a journal without lines, or lines whose money no journal posted, fail.
with

lines as (
    select
        journal_id,
        sum(amount_fen - channel_cost_fen) as receivable_fen,
        sum(amount_fen - merchant_fee_fen) as payable_fen,
        sum(merchant_fee_fen) as fee_revenue_fen,
        sum(channel_cost_fen) as channel_cost_fen
    from {{ ref('fct_cleared_lines') }}
    group by journal_id
),

legs as (
    select
        journal_id,
        sum(case when account_code = '1122' then debit_fen - credit_fen else 0 end) as receivable_fen,
        sum(case when account_code = '2202' then credit_fen - debit_fen else 0 end) as payable_fen,
        sum(case when account_code = '6001' then credit_fen - debit_fen else 0 end) as fee_revenue_fen,
        sum(case when account_code = '6401' then debit_fen - credit_fen else 0 end) as channel_cost_fen
    from {{ ref('hist_journal_lines') }}
    where journal_type in ('clearing', 'clearing_reversal')
    group by journal_id
)

select
    coalesce(lines.journal_id, legs.journal_id) as journal_id,
    lines.receivable_fen as lines_receivable_fen,
    legs.receivable_fen as legs_receivable_fen,
    lines.payable_fen as lines_payable_fen,
    legs.payable_fen as legs_payable_fen,
    lines.fee_revenue_fen as lines_fee_revenue_fen,
    legs.fee_revenue_fen as legs_fee_revenue_fen,
    lines.channel_cost_fen as lines_channel_cost_fen,
    legs.channel_cost_fen as legs_channel_cost_fen
from lines
full outer join legs on lines.journal_id = legs.journal_id
where
    legs.journal_id is null and (
        lines.receivable_fen <> 0 or lines.payable_fen <> 0 or lines.fee_revenue_fen <> 0
        or lines.channel_cost_fen <> 0
    )
    or lines.journal_id is null
    or legs.receivable_fen <> lines.receivable_fen
    or legs.payable_fen <> lines.payable_fen
    or legs.fee_revenue_fen <> lines.fee_revenue_fen
    or legs.channel_cost_fen <> lines.channel_cost_fen
