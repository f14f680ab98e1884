-- INV-02: per landed file version, lines counted from the bytes = detail lines staged + lines quarantined
-- + header/summary/comment lines. Checked against the raw Parquet of every format, not the ledger's own counts.
with

landed as (
    select
        file_version_id,
        lines_total,
        lines_other
    from {{ ref('stg_lake__file_deliveries') }}
    where file_status in ('current', 'superseded')
),

raw_lines as (
    {%- set raw = [
        ('raw_wechat', 'wechat_trade_bill'), ('raw_alipay', 'alipay_trade_bill'), ('raw_unionpay', 'unionpay_zm'),
        ('raw_bank', 'bank_statement'), ('raw_bank', 'bank_payout_result'),
        ('raw_internal', 'internal_payments'), ('raw_internal', 'internal_refunds'),
        ('raw_internal', 'internal_payouts'), ('raw_internal', 'internal_recharges'),
        ('raw_internal', 'internal_dispositions'),
    ] %}
    {%- for src, tbl in raw %}
        select
            file_version_id,
            line_span
        from {{ source(src, tbl) }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

staged as (
    select
        file_version_id,
        sum(line_span) as detail_lines
    from raw_lines
    group by file_version_id
),

quarantined as (
    select
        file_version_id,
        sum(line_span) as quarantined_lines
    from {{ ref('stg_lake__quarantine_lines') }}
    group by file_version_id
)

select
    landed.file_version_id,
    landed.lines_total,
    coalesce(staged.detail_lines, 0) as detail_lines,
    coalesce(quarantined.quarantined_lines, 0) as quarantined_lines,
    landed.lines_other
from landed
left join staged on landed.file_version_id = staged.file_version_id
left join quarantined on landed.file_version_id = quarantined.file_version_id
where
    landed.lines_total
    <> coalesce(staged.detail_lines, 0) + coalesce(quarantined.quarantined_lines, 0) + landed.lines_other
