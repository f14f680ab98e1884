{#- An order-independent hash of a set of rows: the sum of a 64-bit hash of each row's columns, as text. Used by
    the archive (Parquet vs hot) and the seals of closed days; `tally archive` computes the same expression. -#}
{% macro rows_hash(columns) -%}
    {{ return(adapter.dispatch('rows_hash', 'tally')(columns)) }}
{%- endmacro %}

{% macro default__rows_hash(columns) -%}
    cast(coalesce(sum(hash({{ columns | join(', ') }})), 0) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro spark__rows_hash(columns) -%}
    cast(coalesce(sum(cast(xxhash64({{ columns | join(', ') }}) as decimal(38, 0))), 0) as string)
{%- endmacro %}
