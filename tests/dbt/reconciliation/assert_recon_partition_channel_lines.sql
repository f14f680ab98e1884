-- INV-07 (channel side): every current staged channel line is in exactly one reconciliation fact of its stream.
-- Rows returned are lines missing from the facts (fact_rows = 0) or counted more than once (fact_rows > 1).
with

staged as (
    {%- set sources = [
        ('trade', 'stg_wechat__trade_bill_lines'), ('trade', 'stg_alipay__trade_bill_lines'),
        ('trade', 'stg_unionpay__zm_lines'), ('payout_result', 'stg_bank__payout_result_lines'),
        ('bank_statement', 'stg_bank__statement_lines'),
    ] %}
    {%- for stream, model in sources %}
        select
            '{{ stream }}' as recon_stream,
            file_version_id || '#' || cast(line_no as {{ dbt.type_string() }}) as channel_line_id
        from {{ ref(model) }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

facts as (
    select
        recon_stream,
        channel_line_id,
        count(*) as fact_rows
    from {{ ref('hist_recon_results') }}
    where channel_line_id is not null
    group by recon_stream, channel_line_id
)

select
    coalesce(staged.recon_stream, facts.recon_stream) as recon_stream,
    coalesce(staged.channel_line_id, facts.channel_line_id) as channel_line_id,
    coalesce(facts.fact_rows, 0) as fact_rows,
    staged.channel_line_id is not null as is_staged
from staged
full outer join facts
    on staged.recon_stream = facts.recon_stream and staged.channel_line_id = facts.channel_line_id
where staged.channel_line_id is null or coalesce(facts.fact_rows, 0) <> 1
