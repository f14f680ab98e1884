-- INV-15 and INV-21 for settlement: a batch pays its net plus the shortfall carried in from the merchant's previous
-- batch, never less than zero; what is left below zero is carried out, only when the batch pays nothing, and is
-- exactly what the merchant's next batch carries in (the first batch carries nothing in). Recomputed here batch by
-- batch from the one before, independently of the model's running maximum.
with

batches as (
    select
        *,
        lag(carried_out_fen) over (partition by merchant_id order by cleared_on) as previous_carried_out_fen
    from {{ ref('fct_settlement_batches') }}
)

select
    settlement_batch_id,
    merchant_id,
    cleared_on,
    amount_fen,
    carried_in_fen,
    payable_fen,
    carried_out_fen,
    previous_carried_out_fen
from batches
where
    carried_in_fen <> coalesce(previous_carried_out_fen, 0)
    or payable_fen < 0
    or carried_out_fen > 0
    or payable_fen + carried_out_fen <> amount_fen + carried_in_fen
    or (payable_fen > 0 and carried_out_fen <> 0)
