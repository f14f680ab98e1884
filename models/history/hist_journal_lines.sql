/*
    One row per journal leg across all of history: the hot `fct_journal_lines` (its partitions not
    archived) and the archived Parquet partitions under lake/history/fct_journal_lines/posted_on=.../, as one
    relation. A partition is read from exactly one side: from the archive once the manifest says it is verified,
    from hot otherwise (INV-25).
*/
with

hot as (
    select
        {{ column_list('fct_journal_lines', 'journal_lines') }}
    from {{ ref('fct_journal_lines') }} as journal_lines
    -- already excluded by the model itself once rebuilt; this covers the moment between verify and delete
    where journal_lines.posted_on not in ({{ archived_partitions('fct_journal_lines') }})
),

archived as (
    select * from {{ read_archive('fct_journal_lines') }} as archived_partitions
),

final as (
    select * from hot
    union all
    select * from archived
)

select * from final
