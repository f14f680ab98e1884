/*
    One row per payout (代付) we sent for a merchant settlement batch, with where the bank says it ended up: the
    latest line of the bank's payout result files for it (SUCCESS, FAILED, PROCESSING, RETURNED), falling back to our
    own latest state when the bank has not reported it yet. A failed or returned payout leaves its batch unpaid
    until a new payout for the same batch succeeds.
*/
with

events as (
    select * from {{ ref('stg_internal__payout_events') }}
    where settlement_batch_id is not null
),

ours as (
    select
        payout_id,
        settlement_batch_id,
        merchant_id,
        amount_fen,
        min(created_at) as submitted_at,
        max(updated_at) as last_updated_at,
        max(dump_date) as last_dump_date
    from events
    group by payout_id, settlement_batch_id, merchant_id, amount_fen
),

our_latest as (
    select
        payout_id,
        status,
        row_number() over (partition by payout_id order by updated_at desc, dump_date desc, line_no desc) as recency
    from events
),

bank as (
    select
        payout_id,
        status,
        result_date,
        amount_fen,
        row_number() over (
            partition by payout_id order by result_date desc, finished_at desc, seq_no desc
        ) as recency
    from {{ ref('stg_bank__payout_result_lines') }}
),

bank_success as (
    select
        payout_id,
        min(result_date) as paid_on
    from {{ ref('stg_bank__payout_result_lines') }}
    where status = 'SUCCESS'
    group by payout_id
)

select
    ours.payout_id,
    ours.settlement_batch_id,
    ours.merchant_id,
    ours.amount_fen,
    ours.submitted_at,
    our_latest.status as our_status,
    bank.status as bank_status,
    bank.result_date as bank_result_date,
    coalesce(bank.status, our_latest.status) as final_status,
    bank_success.paid_on,
    case when coalesce(bank.status, our_latest.status) = 'SUCCESS' then ours.amount_fen else 0 end as paid_fen
from ours
inner join our_latest on ours.payout_id = our_latest.payout_id and our_latest.recency = 1
left join bank on ours.payout_id = bank.payout_id and bank.recency = 1
left join bank_success on ours.payout_id = bank_success.payout_id
