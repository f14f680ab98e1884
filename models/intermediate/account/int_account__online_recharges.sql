/*
    One row per credit of an online recharge to a merchant's prepaid balance: a merchant topping up through a
    channel. The account system's recharge order pays through the cashier like any payment (it is in our payments
    dump with biz_type RECHARGE), so it is reconciled against the channel bill line by the same cascade; what
    differs is where the money goes. It is not trade revenue: it does not clear, carries no merchant fee and no
    settlement batch, and credits the merchant's prepaid balance (2204) on the day it is reconciled, the channel's
    cost borne by us. A recharge line in break or suspense is held like any channel line (BRK) until it resolves.
    Like clearing, credits are never rewritten: a credited line that a re-issued bill changed or dropped keeps its
    credit and gets a `reversal` (negative) on the day the re-issue became visible (see fct_cleared_lines).
*/
with

recharge_orders as (
    select order_id from {{ ref('stg_internal__payments') }}
    where biz_type = 'RECHARGE'
),

current_states as (
    select
        channel_line_id,
        state_suffix
    from {{ ref('int_recon__trade_line_states') }}
    where is_current
),

current_credits as (
    select
        f.recon_key || coalesce(s.state_suffix, '') as state_id,
        'credit' as entry_kind,
        f.recon_key,
        f.merchant_id,
        f.channel,
        f.row_kind,
        f.bill_date,
        -- reconciled on the day both sides were first visible together, once
        f.paired_on as credited_on,
        f.internal_amount_fen as amount_fen,
        f.channel_fee_fen as channel_cost_fen,
        f.expected_fee_fen as expected_channel_cost_fen,
        f.break_type,
        f.order_id,
        f.refund_id,
        f.channel_serial,
        f.channel_file_version_id,
        f.channel_line_no,
        f.internal_file_version_id,
        f.internal_line_no
    from {{ ref('hist_recon_results') }} as f
    left join current_states as s on f.channel_line_id = s.channel_line_id
    where
        f.recon_stream = 'trade'
        and f.break_type in ('matched', 'fee_mismatch')
        and f.order_id in (select recharge_orders.order_id from recharge_orders)
),

superseded_credits as (
    select
        s.state_id,
        entry.entry_kind,
        s.recon_key,
        s.merchant_id,
        s.channel,
        s.row_kind,
        s.bill_date,
        case when entry.entry_kind = 'credit' then s.paired_on else s.superseded_on end as credited_on,
        entry.entry_sign * s.internal_amount_fen as amount_fen,
        entry.entry_sign * s.channel_fee_fen as channel_cost_fen,
        entry.entry_sign * s.expected_fee_fen as expected_channel_cost_fen,
        s.break_type,
        s.order_id,
        s.refund_id,
        s.channel_serial,
        s.channel_file_version_id,
        s.channel_line_no,
        s.internal_file_version_id,
        s.internal_line_no
    from {{ ref('int_recon__superseded_trade_lines') }} as s
    cross join (
        select
            'credit' as entry_kind,
            1 as entry_sign
        union all
        select
            'reversal' as entry_kind,
            -1 as entry_sign
    ) as entry
    where s.outcome = 'credited'
),

entries as (
    select * from current_credits
    union all
    select * from superseded_credits
)

select
    case when entry_kind = 'reversal' then state_id || '/reversal' else state_id end as credit_id,
    entry_kind,
    recon_key,
    merchant_id,
    channel,
    row_kind,
    bill_date,
    credited_on,
    amount_fen,
    channel_cost_fen,
    expected_channel_cost_fen,
    break_type,
    order_id,
    refund_id,
    channel_serial,
    channel_file_version_id,
    channel_line_no,
    internal_file_version_id,
    internal_line_no
from entries
