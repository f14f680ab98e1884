{#
    Make every lake source readable by `source()` on engines that cannot read a file path in its place. Run from
    `on-run-start`. On DuckDB this is a no-op: dbt-duckdb reads each source through its `meta.external_location`
    (`read_parquet(...)`) directly. On Spark, source() renders as `<source>.<table>`, so each source becomes an
    external table over the same Parquet directory that location names (its glob stripped), with the columns its
    YAML declares: Spark skips the lake's `_schema.parquet` files (a leading `_` is hidden), so it cannot infer a
    schema for a directory nothing has landed in yet. Hive-partitioned sources (`bill_date=...` directories) are
    partitioned by `bill_date` and their partitions recovered on every run, so files landed since are seen.
    Tables are dropped and re-created each run because TALLY_DATA_DIR can point at another lake; dropping an
    external table never touches its files.
#}
{% macro register_lake_sources() -%}
    {{ return(adapter.dispatch('register_lake_sources', 'tally')()) }}
{%- endmacro %}

{% macro default__register_lake_sources() -%}
    {{ return('') }}
{%- endmacro %}

{% macro spark__register_lake_sources() -%}
    {%- if execute -%}
        {%- for node in graph.sources.values() if node.package_name == 'tally' -%}
            {%- set location = node.meta.get('external_location') or node.source_meta.get('external_location') -%}
            {%- if not location -%}
                {{ exceptions.raise_compiler_error(
                    'source ' ~ node.source_name ~ '.' ~ node.name ~ ' has no meta.external_location') }}
            {%- endif -%}
            {%- set found = modules.re.match("read_parquet\('([^']+)'", location) -%}
            {%- if not found -%}
                {{ exceptions.raise_compiler_error(
                    'source ' ~ node.source_name ~ '.' ~ node.name ~ ': expected read_parquet(...), got ' ~ location) }}
            {%- endif -%}
            {#- 'lake/raw/{name}/*/*.parquet' -> 'lake/raw/<table>': the directory the glob walks -#}
            {%- set directory = modules.re.sub("(/[^/]*[*][^/]*)+$", "", found.group(1).replace('{name}', node.name)) -%}
            {%- set partitioned = 'hive_partitioning = true' in location -%}
            {%- if not node.columns -%}
                {{ exceptions.raise_compiler_error(
                    'source ' ~ node.source_name ~ '.' ~ node.name ~ ' declares no columns; Spark needs them') }}
            {%- endif -%}
            {%- set relation = node.schema ~ '.' ~ node.identifier -%}
            {%- call statement('register_' ~ node.unique_id) -%}
                create database if not exists {{ node.schema }}
            {%- endcall -%}
            {%- call statement('register_' ~ node.unique_id) -%}
                drop table if exists {{ relation }}
            {%- endcall -%}
            {%- call statement('register_' ~ node.unique_id) -%}
                create table {{ relation }} (
                    {%- for column in node.columns.values() %}
                    {{ column.name }} {{ column.data_type }}{{ ',' if not loop.last }}
                    {%- endfor %}
                )
                using parquet
                {%- if partitioned %}
                partitioned by (bill_date)
                {%- endif %}
                location '{{ directory }}'
            {%- endcall -%}
            {%- if partitioned -%}
                {%- call statement('register_' ~ node.unique_id) -%}
                    alter table {{ relation }} recover partitions
                {%- endcall -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}
