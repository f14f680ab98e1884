-- INV-07 (our side): every in-scope record of our dumps, and every channel settlement we expect, is in exactly
-- one reconciliation fact of each stream it belongs to. A payout state change belongs to payout_result, and when
-- it moved money (SUCCESS, RETURNED) to bank_statement too.
with

in_scope as (
    select
        'trade' as recon_stream,
        file_version_id || '#' || cast(line_no as {{ dbt.type_string() }}) as record_id
    from {{ ref('stg_internal__payments') }}
    union all
    select
        'trade' as recon_stream,
        file_version_id || '#' || cast(line_no as {{ dbt.type_string() }}) as record_id
    from {{ ref('stg_internal__refunds') }}
    union all
    select
        'payout_result' as recon_stream,
        file_version_id || '#' || cast(line_no as {{ dbt.type_string() }}) as record_id
    from {{ ref('stg_internal__payout_events') }}
    union all
    select
        'bank_statement' as recon_stream,
        file_version_id || '#' || cast(line_no as {{ dbt.type_string() }}) as record_id
    from {{ ref('stg_internal__payout_events') }}
    where status in ('SUCCESS', 'RETURNED')
    union all
    select
        'bank_statement' as recon_stream,
        file_version_id || '#' || cast(line_no as {{ dbt.type_string() }}) as record_id
    from {{ ref('stg_internal__recharges') }}
    union all
    select
        'bank_statement' as recon_stream,
        'settlement:' || group_key as record_id
    from {{ ref('int_recon__expected_channel_settlements') }}
),

expected as (
    select
        recon_stream,
        recon_stream || ':' || record_id as internal_record_id
    from in_scope
),

facts as (
    select
        recon_stream,
        internal_record_id,
        count(*) as fact_rows
    from {{ ref('hist_recon_results') }}
    where internal_record_id is not null
    group by recon_stream, internal_record_id
)

select
    coalesce(expected.recon_stream, facts.recon_stream) as recon_stream,
    coalesce(expected.internal_record_id, facts.internal_record_id) as internal_record_id,
    coalesce(facts.fact_rows, 0) as fact_rows,
    expected.internal_record_id is not null as is_in_scope
from expected
full outer join facts
    on expected.recon_stream = facts.recon_stream and expected.internal_record_id = facts.internal_record_id
where expected.internal_record_id is null or coalesce(facts.fact_rows, 0) <> 1
