-- INV-15: each cleared line is in exactly one settlement batch, the batch amount is the sum of its lines, and every
-- batch has a due date (T+N business days; a missing date means the business calendar ran out).
with

lines as (
    select
        settlement_batch_id,
        count(*) as line_count,
        sum(amount_fen - merchant_fee_fen) as net_fen
    from {{ ref('fct_cleared_lines') }}
    group by settlement_batch_id
),

batches as (
    select * from {{ ref('fct_settlement_batches') }}
)

select
    coalesce(lines.settlement_batch_id, batches.settlement_batch_id) as settlement_batch_id,
    lines.line_count,
    batches.line_count as batch_line_count,
    lines.net_fen,
    batches.amount_fen,
    batches.due_on
from lines
full outer join batches on lines.settlement_batch_id = batches.settlement_batch_id
where
    lines.settlement_batch_id is null
    or batches.settlement_batch_id is null
    or lines.line_count <> batches.line_count
    or lines.net_fen <> batches.amount_fen
    or batches.due_on is null
