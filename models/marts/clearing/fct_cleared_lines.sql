/*
    One row per trade line that clears (清分): a reconciled pair whose amount and status agree (matched, or a fee
    mismatch, which is the channel's cost problem and not the merchant's). It clears on the day it was reconciled
    (`paired_on`), so a line held in suspense clears when its counterpart arrives, once. Lines in break do not
    clear, and neither do online recharges (int_account__online_recharges: they credit the prepaid balance). The
    merchant fee is recomputed from the merchant's fee plan: the rate per line half up to the fen, plus
    the fixed fee, at least the minimum; a refund gives back the original fee pro rata (half up).
*/
with

facts as (
    select * from {{ ref('hist_recon_results') }}
    where
        recon_stream = 'trade' and break_type in ('matched', 'fee_mismatch')
        -- an online recharge tops up the merchant's prepaid balance: not trade revenue, it does not clear
        and recon_key not in (select r.recon_key from {{ ref('int_account__online_recharges') }} as r)
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
        facts.*,
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
    from facts
    inner join merchants on facts.merchant_id = merchants.merchant_id
    left join payments on facts.order_id = payments.order_id
    -- the plan in force when the payment was made prices the payment and every refund of it
    inner join plans
        on
            merchants.fee_plan_id = plans.fee_plan_id
            and facts.channel = plans.channel
            and coalesce(payments.dump_date, facts.bill_date) between plans.valid_from and plans.valid_to
)

select
    recon_key,
    merchant_id,
    channel,
    row_kind,
    bill_date,
    paired_on as cleared_on,
    -- one batch per merchant and clearing day, paid T+N business days later (fct_settlement_batches)
    'SB' || merchant_id || replace(cast(paired_on as {{ dbt.type_string() }}), '-', '') as settlement_batch_id,
    internal_amount_fen as amount_fen,
    case
        when row_kind = 'refund'
            then -{{ div_half_up('order_fee_fen * (-internal_amount_fen)', 'order_amount_fen') }}
        else order_fee_fen
    end as merchant_fee_fen,
    channel_fee_fen as channel_cost_fen,
    expected_fee_fen as expected_channel_cost_fen,
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
from priced
