/*
    Pass 5, grouped matching: a channel settlement credit on our bank statement against the net of all that
    channel's bill lines for one merchant and bill date (int_recon__expected_channel_settlements), by the bill date
    and channel merchant the credit's remark names. One bank line settles many channel lines; a different amount
    makes the pair an amount mismatch. One row per matched pair.
*/
with

channel_lines as (
    select
        recon_stream,
        channel_line_id,
        group_key,
        row_number() over (
            partition by recon_stream, group_key order by bill_date, file_version_id, line_no
        ) as occurrence
    from {{ ref('int_recon__channel_lines') }}
    where group_key is not null
),

internal_records as (
    select
        recon_stream,
        internal_record_id,
        group_key
    from {{ ref('int_recon__internal_records') }}
    where group_key is not null
),

rules as (
    select * from {{ ref('match_rules') }}
    where match_rule = 'settlement_group'
)

select
    c.recon_stream,
    c.channel_line_id,
    i.internal_record_id,
    rules.match_rule,
    rules.pass_no
from channel_lines as c
inner join internal_records as i
    on c.recon_stream = i.recon_stream and c.group_key = i.group_key
inner join rules on c.recon_stream = rules.recon_stream
-- a second credit for the same group is left over (a duplicate or a channel-only credit), never paired twice
where c.occurrence = 1
