{#
    One fuzzy pass of the matching cascade, for lines with no usable key (offline recharges on the bank
    statement): same stream, same row kind, same amount, the same `channel_key` / `internal_key` value, and the
    channel line inside the rule's time window around our record (seconds from the match_rules seed).
    A pair is matched only when each side has exactly one candidate; when two candidates qualify equally the
    pass refuses and returns the candidate pairs with `is_ambiguous` (those lines go no further down the cascade).
    `earlier` lists the pass models already run; their lines (matched or ambiguous) are not candidates here.
#}
{% macro fuzzy_match_pass(match_rule, channel_key, internal_key, earlier) -%}
with

rules as (
    select * from {{ ref('match_rules') }}
    where match_rule = '{{ match_rule }}'
),

taken_channel as (
    {%- for model in earlier %}
    select channel_line_id from {{ ref(model) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

taken_internal as (
    {%- for model in earlier %}
    select internal_record_id from {{ ref(model) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

channel_lines as (
    select
        c.*,
        {{ channel_key }} as fuzzy_key
    from {{ ref('int_recon__channel_lines') }} as c
    inner join rules on c.recon_stream = rules.recon_stream
    where c.channel_line_id not in (select t.channel_line_id from taken_channel as t)
),

internal_records as (
    select
        i.*,
        {{ internal_key }} as fuzzy_key
    from {{ ref('int_recon__internal_records') }} as i
    inner join rules on i.recon_stream = rules.recon_stream
    where i.internal_record_id not in (select t.internal_record_id from taken_internal as t)
),

candidates as (
    select
        c.recon_stream,
        c.channel_line_id,
        i.internal_record_id
    from channel_lines as c
    inner join internal_records as i
        on
            c.recon_stream = i.recon_stream
            and c.row_kind = i.row_kind
            and c.amount_fen = i.amount_fen
            and c.fuzzy_key = i.fuzzy_key
    inner join rules on c.recon_stream = rules.recon_stream
    where
        {{ seconds_between('i.txn_at', 'c.txn_at') }}
        between -rules.time_before_seconds and rules.time_after_seconds
),

counted as (
    select
        *,
        count(*) over (partition by channel_line_id) as candidates_of_channel_line,
        count(*) over (partition by internal_record_id) as candidates_of_internal_record
    from candidates
)

select
    counted.recon_stream,
    counted.channel_line_id,
    counted.internal_record_id,
    rules.match_rule,
    rules.pass_no,
    (counted.candidates_of_channel_line > 1 or counted.candidates_of_internal_record > 1) as is_ambiguous
from counted
inner join rules on counted.recon_stream = rules.recon_stream
{%- endmacro %}
