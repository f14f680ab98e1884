/*
    One row per stream, channel and bill date: what BI charts every morning. Lines and amounts per side, how many
    facts matched (and the match rate), breaks per type, breaks still open, and suspense by age.
*/
with

facts as (
    select * from {{ ref('fct_recon_results') }}
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
    cast(sum(case when break_type = 'matched' then 1 else 0 end) as bigint) as matched,
    cast(sum(case when break_type = 'matched' then 1 else 0 end) as double) / count(*) as match_rate,
    cast(sum(case when recon_state = 'break' then 1 else 0 end) as bigint) as breaks,
    cast(sum(case when recon_state = 'break' and accepted_disposition is null then 1 else 0 end) as bigint) as open_breaks,
    cast(sum(case when recon_state = 'break' and break_type = 'amount_mismatch' then 1 else 0 end) as bigint) as amount_mismatches,
    cast(sum(case when recon_state = 'break' and break_type = 'fee_mismatch' then 1 else 0 end) as bigint) as fee_mismatches,
    cast(sum(case when recon_state = 'break' and break_type = 'status_mismatch' then 1 else 0 end) as bigint) as status_mismatches,
    cast(sum(case when recon_state = 'break' and break_type = 'internal_only' then 1 else 0 end) as bigint) as internal_only,
    cast(sum(case when recon_state = 'break' and break_type = 'channel_only' then 1 else 0 end) as bigint) as channel_only,
    cast(sum(case when recon_state = 'break' and break_type = 'duplicate' then 1 else 0 end) as bigint) as duplicates,
    cast(sum(case when recon_state = 'break' and break_type = 'ambiguous' then 1 else 0 end) as bigint) as ambiguous,
    cast(coalesce(sum(case when recon_state = 'break' then abs(amount_delta_fen) end), 0) as bigint) as abs_amount_delta_fen,
    cast(sum(case when recon_state = 'suspense' then 1 else 0 end) as bigint) as in_suspense,
    cast(sum(case when recon_state = 'suspense' and age_days = 0 then 1 else 0 end) as bigint) as suspense_age_0d,
    cast(sum(case when recon_state = 'suspense' and age_days = 1 then 1 else 0 end) as bigint) as suspense_age_1d,
    cast(sum(case when recon_state = 'suspense' and age_days >= 2 then 1 else 0 end) as bigint) as suspense_age_2d_plus
from facts
group by recon_stream, channel, bill_date
