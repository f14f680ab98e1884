{#
    True when a regular expression matches anywhere in the text. DuckDB spells it regexp_matches, Spark rlike.
#}
{% macro regexp_found(expr, pattern) -%}
    {{ return(adapter.dispatch('regexp_found', 'tally')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regexp_found(expr, pattern) -%}
    regexp_matches({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro spark__regexp_found(expr, pattern) -%}
    ({{ expr }} rlike '{{ pattern }}')
{%- endmacro %}
