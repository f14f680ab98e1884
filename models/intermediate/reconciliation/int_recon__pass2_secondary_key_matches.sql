/*
    Pass 2: the composite fallback key for lines pass 1 left over: channel serial + amount for payments whose order
    id the channel did not echo; payout id alone for a payout whose state differs between us and the bank (the
    pair becomes a status mismatch). Occurrence-paired like pass 1. One row per matched pair.
*/
with

earlier as (
    select * from {{ ref('int_recon__pass1_key_matches') }}
),

channel_lines as (
    select
        c.recon_stream,
        c.channel_line_id,
        c.secondary_key,
        row_number() over (
            partition by c.recon_stream, c.secondary_key order by c.bill_date, c.file_version_id, c.line_no
        ) as occurrence
    from {{ ref('int_recon__channel_lines') }} as c
    where
        c.secondary_key is not null
        and c.channel_line_id not in (select earlier.channel_line_id from earlier)
),

internal_records as (
    select
        i.recon_stream,
        i.internal_record_id,
        i.secondary_key,
        row_number() over (
            partition by i.recon_stream, i.secondary_key order by i.bill_date, i.file_version_id, i.line_no
        ) as occurrence
    from {{ ref('int_recon__internal_records') }} as i
    where
        i.secondary_key is not null
        and i.internal_record_id not in (select earlier.internal_record_id from earlier)
),

rules as (
    select * from {{ ref('match_rules') }}
    where pass_no = 2
)

select
    c.recon_stream,
    c.channel_line_id,
    i.internal_record_id,
    rules.match_rule,
    rules.pass_no
from channel_lines as c
inner join internal_records as i
    on
        c.recon_stream = i.recon_stream
        and c.secondary_key = i.secondary_key
        and c.occurrence = i.occurrence
inner join rules on c.recon_stream = rules.recon_stream
