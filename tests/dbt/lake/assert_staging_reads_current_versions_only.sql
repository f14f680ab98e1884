-- INV-06: no staged row comes from a superseded, duplicate or rejected file version.
-- (Disposition files are append-only by design: stg_internal__recon_dispositions reads every filed version.)
with

staged as (
    {%- set models = [
        'stg_wechat__trade_bill_lines', 'stg_alipay__trade_bill_lines', 'stg_unionpay__zm_lines',
        'stg_bank__statement_lines', 'stg_bank__payout_result_lines', 'stg_internal__payments',
        'stg_internal__refunds', 'stg_internal__payout_events', 'stg_internal__recharges',
    ] %}
    {%- for m in models %}
        select distinct
            '{{ m }}' as model_name,
            file_version_id
        from {{ ref(m) }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

select
    staged.model_name,
    staged.file_version_id
from staged
left join (
    select file_version_id from {{ ref('stg_lake__file_deliveries') }}
    where file_status = 'current'
) as cur on staged.file_version_id = cur.file_version_id
where cur.file_version_id is null
