-- INV-13: the merchant fee of every cleared line follows the fee plan in force when the payment was made, recomputed
-- here in decimal arithmetic, independently of the model's integer macro: a payment pays the rate half up to the fen
-- plus the fixed fee, at least the minimum; a refund gives back that fee times the refunded share, half up. And a
-- matched line's channel cost is the fee the channel reported, which the channel cost seed agrees with. A reversal
-- carries its clearing's amounts negated, so it is checked with its sign turned back.
with

lines as (
    select
        cleared_line_id,
        recon_key,
        row_kind,
        break_type,
        fee_plan_id,
        channel,
        order_id,
        sign_back * amount_fen as amount_fen,
        sign_back * merchant_fee_fen as merchant_fee_fen,
        sign_back * channel_cost_fen as channel_cost_fen,
        sign_back * expected_channel_cost_fen as expected_channel_cost_fen
    from (
        select
            *,
            case when entry_kind = 'reversal' then -1 else 1 end as sign_back
        from {{ ref('fct_cleared_lines') }}
    ) as entries
),

payments as (
    select
        order_id,
        amount_fen,
        dump_date
    from {{ ref('stg_internal__payments') }}
),

plans as (
    select * from {{ ref('merchant_fee_plans') }}
),

recomputed as (
    select
        lines.cleared_line_id,
        lines.recon_key,
        lines.row_kind,
        lines.break_type,
        lines.amount_fen,
        lines.merchant_fee_fen,
        lines.channel_cost_fen,
        lines.expected_channel_cost_fen,
        payments.amount_fen as order_amount_fen,
        greatest(
            cast(floor(cast(payments.amount_fen * plans.rate_bp as decimal(38, 4)) / 10000 + 0.5) as bigint)
            + plans.fixed_fen,
            plans.min_fen
        ) as order_fee_fen
    from lines
    inner join payments on lines.order_id = payments.order_id
    inner join plans
        on
            lines.fee_plan_id = plans.fee_plan_id
            and lines.channel = plans.channel
            and payments.dump_date between plans.valid_from and plans.valid_to
)

select
    cleared_line_id,
    recon_key,
    row_kind,
    merchant_fee_fen,
    order_fee_fen,
    channel_cost_fen,
    expected_channel_cost_fen
from recomputed
where
    (row_kind = 'payment' and merchant_fee_fen <> order_fee_fen)
    or (
        row_kind = 'refund'
        and -merchant_fee_fen <> cast(
            floor(cast(order_fee_fen * (-amount_fen) as decimal(38, 4)) / order_amount_fen + 0.5) as bigint
        )
    )
    or (break_type = 'matched' and channel_cost_fen <> expected_channel_cost_fen)
