/*
    One row per reconciliation fact (pair or one-sided line) across all of history: the hot `fct_recon_results`
    (its partitions not archived) and the archived Parquet partitions under
    lake/history/fct_recon_results/bill_date=.../, as one relation. A partition is read from exactly one side:
    from the archive once the manifest says it is verified, from hot otherwise (INV-25).
*/
with

hot as (
    select
        {{ column_list('fct_recon_results', 'recon_results') }}
    from {{ ref('fct_recon_results') }} as recon_results
    -- already excluded by the model itself once rebuilt; this covers the moment between verify and delete
    where recon_results.bill_date not in ({{ archived_partitions('fct_recon_results') }})
),

archived as (
    select * from {{ read_archive('fct_recon_results') }} as archived_partitions
),

final as (
    select * from hot
    union all
    select * from archived
)

select * from final
