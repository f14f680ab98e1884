-- INV-13: the merchant fee of every cleared payment is the plan's rate half up to the fen plus the fixed fee, at
-- least the minimum (recomputed here in decimal arithmetic, independently of the model's integer macro); and a
-- matched line's channel cost is the fee the channel reported and the channel cost seed agrees with it.
with

lines as (
    select * from {{ ref('fct_cleared_lines') }}
),

plans as (
    select * from {{ ref('merchant_fee_plans') }}
)

select
    lines.recon_key,
    lines.merchant_fee_fen,
    lines.channel_cost_fen,
    lines.expected_channel_cost_fen
from lines
inner join plans
    on lines.fee_plan_id = plans.fee_plan_id and lines.channel = plans.channel
where
    (
        lines.row_kind = 'payment'
        and lines.merchant_fee_fen <> greatest(
            cast(floor(cast(lines.amount_fen * plans.rate_bp as decimal(38, 4)) / 10000 + 0.5) as bigint)
            + plans.fixed_fen,
            plans.min_fen
        )
    )
    or (lines.break_type = 'matched' and lines.channel_cost_fen <> lines.expected_channel_cost_fen)
