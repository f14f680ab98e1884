/*
    Pass 1 of the matching cascade: the exact key (our order / refund id, payout id + state, recharge code or payout
    id quoted in a bank remark). Occurrence n of a key on one side pairs with occurrence n on the other, so a key
    listed twice by the channel leaves its second line unmatched (a duplicate) instead of multiplying the join.
    One row per matched pair.
*/
with

channel_lines as (
    select
        recon_stream,
        channel_line_id,
        match_key,
        match_key_occurrence as occurrence
    from {{ ref('int_recon__channel_lines') }}
    where match_key is not null
),

internal_records as (
    select
        recon_stream,
        internal_record_id,
        match_key,
        match_key_occurrence as occurrence
    from {{ ref('int_recon__internal_records') }}
    where match_key is not null
),

rules as (
    select * from {{ ref('match_rules') }}
    where pass_no = 1
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
        and c.match_key = i.match_key
        and c.occurrence = i.occurrence
inner join rules on c.recon_stream = rules.recon_stream
