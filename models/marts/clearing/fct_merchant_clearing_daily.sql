-- One row per merchant and clearing day: what the day's reconciled trades add to what we owe the merchant.
-- net = gross - refunds - fees (refunds and fees as positive amounts; a refund's fee give-back lowers fees).
select
    merchant_id,
    cleared_on,
    settlement_batch_id,
    sum(case when row_kind = 'payment' then 1 else 0 end) as payments,
    sum(case when row_kind = 'refund' then 1 else 0 end) as refunds,
    coalesce(sum(case when row_kind = 'payment' then amount_fen end), 0) as gross_fen,
    coalesce(sum(case when row_kind = 'refund' then -amount_fen end), 0) as refund_fen,
    sum(merchant_fee_fen) as merchant_fee_fen,
    sum(channel_cost_fen) as channel_cost_fen,
    sum(amount_fen) - sum(merchant_fee_fen) as net_fen
from {{ ref('fct_cleared_lines') }}
group by merchant_id, cleared_on, settlement_batch_id
