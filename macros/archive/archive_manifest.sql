{#- The archive manifest as a relation: one row per event (written, verified, deleted, restored) of one partition
    of one model, `event_seq` increasing. It lives in the lake (not in the warehouse, which is a cache rebuilt from
    the lake), appended to by `tally archive` / `tally restore` only. Before the first archive run there are no
    files, and the relation is empty with the same columns. -#}
{% macro archive_manifest() -%}
    {{ return(adapter.dispatch('archive_manifest', 'tally')()) }}
{%- endmacro %}

{% macro _empty_archive_manifest() -%}
    (
        select
            cast(null as bigint) as event_seq,
            cast(null as {{ dbt.type_string() }}) as model_name,
            cast(null as {{ dbt.type_string() }}) as partition_column,
            cast(null as date) as partition_value,
            cast(null as {{ dbt.type_string() }}) as state,
            cast(null as bigint) as row_count,
            cast(null as {{ dbt.type_string() }}) as amount_sums,
            cast(null as {{ dbt.type_string() }}) as rows_hash,
            cast(null as {{ dbt.type_string() }}) as file_path,
            cast(null as timestamp) as recorded_at
        where 1 = 0
    )
{%- endmacro %}

{#- Other engines (Spark): archiving runs against the DuckDB warehouse only, so no partition is archived there. -#}
{% macro default__archive_manifest() -%}
    {{ tally._empty_archive_manifest() }}
{%- endmacro %}

{% macro duckdb__archive_manifest() -%}
    {%- set pattern = tally.history_dir() ~ '/_manifest/*.parquet' -%}
    {%- if execute and run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0].values()[0] > 0 -%}
        (
            select
                event_seq, model_name, partition_column, partition_value, state, row_count, amount_sums,
                rows_hash, file_path, recorded_at
            from read_parquet('{{ pattern }}')
        )
    {%- else -%}
        {{ tally._empty_archive_manifest() }}
    {%- endif -%}
{%- endmacro %}
