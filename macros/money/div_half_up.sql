{#
    Integer division rounded half up, for non-negative BIGINT operands: fees are the channel rate applied per
    line and rounded half up to the fen. Exact integer arithmetic on both engines (DuckDB `//`, Spark `div`).
#}
{% macro div_half_up(numerator, denominator) -%}
    {{ return(adapter.dispatch('div_half_up', 'tally')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__div_half_up(numerator, denominator) -%}
    ((2 * ({{ numerator }}) + ({{ denominator }})) // (2 * ({{ denominator }})))
{%- endmacro %}

{% macro spark__div_half_up(numerator, denominator) -%}
    ((2 * ({{ numerator }}) + ({{ denominator }})) div (2 * ({{ denominator }})))
{%- endmacro %}
