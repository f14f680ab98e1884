-- One row per merchant and clearing day: what the day's clearing entries add to what we owe the merchant.
-- net = gross - refunds - fees (refunds and fees as positive amounts; a refund's fee give-back lowers fees). A
-- reversal (a cleared line a re-issued bill changed) counts against its kind: payments and refunds are net counts.
with

entries as (
    select
        *,
        case when entry_kind = 'reversal' then -1 else 1 end as entry_sign
    from {{ ref('fct_cleared_lines') }}
)

select
    merchant_id,
    cleared_on,
    settlement_batch_id,
    cast(count(*) as bigint) as lines,
    cast(sum(case when row_kind = 'payment' then entry_sign else 0 end) as bigint) as payments,
    cast(sum(case when row_kind = 'refund' then entry_sign else 0 end) as bigint) as refunds,
    cast(sum(case when entry_kind = 'reversal' then 1 else 0 end) as bigint) as reversals,
    cast(coalesce(sum(case when row_kind = 'payment' then amount_fen end), 0) as bigint) as gross_fen,
    cast(coalesce(sum(case when row_kind = 'refund' then -amount_fen end), 0) as bigint) as refund_fen,
    cast(sum(merchant_fee_fen) as bigint) as merchant_fee_fen,
    cast(sum(channel_cost_fen) as bigint) as channel_cost_fen,
    cast(sum(amount_fen) - sum(merchant_fee_fen) as bigint) as net_fen
from entries
group by merchant_id, cleared_on, settlement_batch_id
