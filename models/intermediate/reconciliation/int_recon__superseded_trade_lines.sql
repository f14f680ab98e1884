/*
    One row per superseded state of a trade line (int_recon__trade_line_states): a line a re-issued bill changed or
    dropped, as it was while its version was current, with what the builds of those days made of it. Between
    `state_known_on` and `superseded_on` the line was reconciled like any other: paired by the exact key with our
    record (row kind + our id, n-th with n-th, as pass 1 pairs every trade line), compared, and then cleared
    (matched or fee mismatch), credited to the prepaid balance (an online recharge) or held in unreconciled funds
    (any other line the channel lists as done). Those entries stay where they were posted; clearing, the recharges
    and the journal post their reversal on `superseded_on`, the day the re-issue became visible. A record of ours
    that only became visible on or after that day never met this line.
*/
with

states as (
    select * from {{ ref('int_recon__trade_line_states') }}
    where superseded_on is not null and is_state_last_version and is_visible
),

internal_records as (
    select * from {{ ref('int_recon__internal_records') }}
    where recon_stream = 'trade'
),

recharge_orders as (
    select order_id from {{ ref('stg_internal__payments') }}
    where biz_type = 'RECHARGE'
),

paired as (
    select
        s.*,
        i.internal_record_id,
        i.merchant_id,
        i.amount_fen as internal_amount_fen,
        i.expected_fee_fen,
        i.status as internal_status,
        i.known_on as internal_known_on,
        i.file_version_id as internal_file_version_id,
        i.line_no as internal_line_no
    from states as s
    left join internal_records as i
        on
            s.match_key = i.match_key
            and s.business_key_occurrence = i.match_key_occurrence
            and s.superseded_on > i.known_on
),

-- the same classification as fct_recon_results
compared as (
    select
        *,
        case
            when internal_record_id is not null and amount_fen <> internal_amount_fen then 'amount_mismatch'
            when internal_record_id is not null and status <> internal_status then 'status_mismatch'
            when internal_record_id is not null and fee_fen <> expected_fee_fen then 'fee_mismatch'
            when internal_record_id is not null then 'matched'
            when rows_with_duplicate_key > 1 then 'duplicate'
            else 'channel_only'
        end as break_type,
        case
            when internal_record_id is null then state_known_on
            when internal_known_on < state_known_on then internal_known_on
            else state_known_on
        end as first_seen_on,
        case
            when internal_record_id is not null and internal_known_on > state_known_on then internal_known_on
            when internal_record_id is not null then state_known_on
        end as paired_on
    from paired
)

select
    recon_key,
    recon_key || state_suffix as state_id,
    state_suffix,
    channel,
    channel_merchant_id,
    merchant_id,
    row_kind,
    bill_date,
    order_id,
    refund_id,
    channel_serial,
    amount_fen as channel_amount_fen,
    fee_fen as channel_fee_fen,
    status as channel_status,
    internal_amount_fen,
    expected_fee_fen,
    internal_status,
    break_type,
    case
        when break_type in ('matched', 'fee_mismatch') and order_id in (select r.order_id from recharge_orders as r)
            then 'credited'
        when break_type in ('matched', 'fee_mismatch') then 'cleared'
        -- a line the channel lists as done moved money: the channel owes it to us all the same (BRK)
        when status = 'SUCCESS' then 'held'
        else 'none'
    end as outcome,
    state_known_on,
    first_seen_on,
    paired_on,
    superseded_on,
    file_version_id as channel_file_version_id,
    line_no as channel_line_no,
    internal_file_version_id,
    internal_line_no
from compared
