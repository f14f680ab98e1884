/*
    One row per stream, channel and bill date: what BI charts every morning. Lines and amounts per side, how many
    facts matched (and the match rate), breaks per type, breaks still open, and suspense by age.
*/
with

facts as (
    select
        *,
        case when recon_state = 'break' then break_type end as break_kind,
        case when recon_state = 'break' and accepted_disposition is null then 1 else 0 end as is_open_break,
        case when recon_state = 'suspense' then age_days end as suspense_age
    from {{ ref('hist_recon_results') }}
)

select
    recon_stream,
    channel,
    bill_date,
    max(as_of_date) as as_of_date,
    count(*) as facts,
    count(channel_line_id) as channel_lines,
    count(internal_record_id) as internal_records,
    cast(coalesce(sum(channel_amount_fen), 0) as bigint) as channel_amount_fen,
    cast(coalesce(sum(internal_amount_fen), 0) as bigint) as internal_amount_fen,
    count(case when break_type = 'matched' then 1 end) as matched,
    -- a ratio, not money: six decimals are plenty for a chart
    cast(cast(count(case when break_type = 'matched' then 1 end) as decimal(18, 6)) / count(*) as decimal(9, 6))
        as match_rate,
    count(break_kind) as breaks,
    cast(sum(is_open_break) as bigint) as open_breaks,
    count(case when break_kind = 'amount_mismatch' then 1 end) as amount_mismatches,
    count(case when break_kind = 'fee_mismatch' then 1 end) as fee_mismatches,
    count(case when break_kind = 'status_mismatch' then 1 end) as status_mismatches,
    count(case when break_kind = 'internal_only' then 1 end) as internal_only,
    count(case when break_kind = 'channel_only' then 1 end) as channel_only,
    count(case when break_kind = 'duplicate' then 1 end) as duplicates,
    count(case when break_kind = 'ambiguous' then 1 end) as ambiguous,
    cast(coalesce(sum(case when break_kind is not null then abs(amount_delta_fen) end), 0) as bigint)
        as abs_amount_delta_fen,
    count(suspense_age) as in_suspense,
    count(case when suspense_age = 0 then 1 end) as suspense_age_0d,
    count(case when suspense_age = 1 then 1 end) as suspense_age_1d,
    count(case when suspense_age >= 2 then 1 end) as suspense_age_2d_plus
from facts
group by recon_stream, channel, bill_date
