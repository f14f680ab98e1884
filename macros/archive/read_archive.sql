{#- The archived partitions of `model_name` as one relation with the model's contract columns and types (the
    partition column comes from the hive path). Only partitions the manifest calls archived are read: a partition
    written but not yet verified, or restored, is ignored. Empty (same columns) when nothing was ever archived. -#}
{% macro read_archive(model_name) -%}
    {{ return(adapter.dispatch('read_archive', 'tally')(model_name)) }}
{%- endmacro %}

{% macro _archive_select(model_name, relation) -%}
    {%- set partition_column = tally.history_config(model_name)['partition_by'] -%}
    (
        select
            {%- for name, data_type in tally.contract_columns(model_name) %}
            cast(archived.{{ name }} as {{ data_type }}) as {{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ relation }} as archived
        where archived.{{ partition_column }} in ({{ tally.archived_partitions(model_name) }})
    )
{%- endmacro %}

{#- Other engines (Spark): `tally archive` writes from and to the DuckDB warehouse only, so there is nothing to read
    yet and the hot tables hold every partition. -#}
{% macro default__read_archive(model_name) -%}
    {{ tally._archive_select(model_name, '(select * from ' ~ ref(model_name) ~ ' where 1 = 0)') }}
{%- endmacro %}

{% macro duckdb__read_archive(model_name) -%}
    {%- set partition_column = tally.history_config(model_name)['partition_by'] -%}
    {%- set pattern = tally.history_dir() ~ '/' ~ model_name ~ '/*/*.parquet' -%}
    {%- if execute and run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0].values()[0] > 0 -%}
        {%- set relation = "read_parquet('" ~ pattern ~ "', hive_partitioning = true, hive_types = {'"
            ~ partition_column ~ "': date})" -%}
        {{ tally._archive_select(model_name, relation) }}
    {%- else -%}
        {{ tally.default__read_archive(model_name) }}
    {%- endif -%}
{%- endmacro %}

