{#
    Seconds from `start_at` to `end_at` (timestamps), null when either is null. dbt's own datediff wraps both sides
    in Spark's assert_not_null, which fails the query on a one-sided fact instead of returning null; on DuckDB it
    is exactly dbt.datediff. Channel and internal times are whole seconds, so the difference is exact.
#}
{% macro seconds_between(start_at, end_at) -%}
    {{ return(adapter.dispatch('seconds_between', 'tally')(start_at, end_at)) }}
{%- endmacro %}

{% macro default__seconds_between(start_at, end_at) -%}
    {{ dbt.datediff(start_at, end_at, 'second') }}
{%- endmacro %}

{% macro spark__seconds_between(start_at, end_at) -%}
    (unix_timestamp({{ end_at }}) - unix_timestamp({{ start_at }}))
{%- endmacro %}
