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
    coalesce(sum(channel_amount_fen), 0) as channel_amount_fen,
    coalesce(sum(internal_amount_fen), 0) as internal_amount_fen,
    sum(case when break_type = 'matched' then 1 else 0 end) as matched,
    cast(sum(case when break_type = 'matched' then 1 else 0 end) as double) / count(*) as match_rate,
    sum(case when recon_state = 'break' then 1 else 0 end) as breaks,
    sum(case when recon_state = 'break' and accepted_disposition is null then 1 else 0 end) as open_breaks,
    sum(case when recon_state = 'break' and break_type = 'amount_mismatch' then 1 else 0 end) as amount_mismatches,
    sum(case when recon_state = 'break' and break_type = 'fee_mismatch' then 1 else 0 end) as fee_mismatches,
    sum(case when recon_state = 'break' and break_type = 'status_mismatch' then 1 else 0 end) as status_mismatches,
    sum(case when recon_state = 'break' and break_type = 'internal_only' then 1 else 0 end) as internal_only,
    sum(case when recon_state = 'break' and break_type = 'channel_only' then 1 else 0 end) as channel_only,
    sum(case when recon_state = 'break' and break_type = 'duplicate' then 1 else 0 end) as duplicates,
    sum(case when recon_state = 'break' and break_type = 'ambiguous' then 1 else 0 end) as ambiguous,
    coalesce(sum(case when recon_state = 'break' then abs(amount_delta_fen) end), 0) as abs_amount_delta_fen,
    sum(case when recon_state = 'suspense' then 1 else 0 end) as in_suspense,
    sum(case when recon_state = 'suspense' and age_days = 0 then 1 else 0 end) as suspense_age_0d,
    sum(case when recon_state = 'suspense' and age_days = 1 then 1 else 0 end) as suspense_age_1d,
    sum(case when recon_state = 'suspense' and age_days >= 2 then 1 else 0 end) as suspense_age_2d_plus
from facts
group by recon_stream, channel, bill_date
