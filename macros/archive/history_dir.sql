{#- Root of the history (archive) partitions: `<tally_data_dir>/lake/history`. Each archived model has a folder of
    hive partitions (`<model>/<partition column>=YYYY-MM-DD/part-0.parquet`); `_manifest/` holds the append-only
    archive manifest, one Parquet file per event. -#}
{% macro history_dir() -%}
    {{ var('tally_data_dir') }}/lake/history
{%- endmacro %}
