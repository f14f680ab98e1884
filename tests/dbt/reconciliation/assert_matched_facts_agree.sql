-- INV-09: a fact called matched agrees exactly: both sides present, same amount, same status, and the channel's
-- fee equals the fee the channel cost seed gives (where a fee applies).
select
    recon_key,
    channel_amount_fen,
    internal_amount_fen,
    channel_status,
    internal_status,
    channel_fee_fen,
    expected_fee_fen
from {{ ref('hist_recon_results') }}
where
    break_type = 'matched'
    and (
        channel_line_id is null
        or internal_record_id is null
        or channel_amount_fen <> internal_amount_fen
        or channel_status <> internal_status
        or coalesce(channel_fee_fen, expected_fee_fen, 0) <> coalesce(expected_fee_fen, channel_fee_fen, 0)
        or recon_state <> 'matched'
    )
