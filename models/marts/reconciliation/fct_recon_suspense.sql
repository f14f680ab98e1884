-- One row per one-sided line still waiting (存疑) for its counterpart inside the channel's window.
select
    recon_key,
    recon_stream,
    channel,
    row_kind,
    bill_date,
    break_type as pending_break_type,
    first_seen_on,
    suspense_until,
    age_days,
    coalesce(channel_amount_fen, internal_amount_fen) as amount_fen,
    merchant_id,
    channel_merchant_id,
    order_id,
    refund_id,
    payout_id,
    recharge_id,
    channel_serial,
    channel_file_version_id,
    channel_line_no,
    internal_file_version_id,
    internal_line_no,
    as_of_date
from {{ ref('hist_recon_results') }}
where recon_state = 'suspense'
