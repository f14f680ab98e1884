{#
    One row per all-digit token in a text column: `select token from ...`. Tokens are maximal runs of letters and
    digits, so digits inside a hex hash or an id like ORD000123 are not mistaken for a card number.
    Engine-specific because DuckDB unnests and Spark explodes.
#}
{% macro digit_tokens(relation, column) -%}
    {{ return(adapter.dispatch('digit_tokens', 'tally')(relation, column)) }}
{%- endmacro %}

{% macro default__digit_tokens(relation, column) -%}
    select token from (
        select unnest(regexp_extract_all({{ column }}, '[0-9A-Za-z]+')) as token from {{ relation }}
    ) as t
    where regexp_full_match(token, '[0-9]+')
{%- endmacro %}

{% macro spark__digit_tokens(relation, column) -%}
    select token from (
        select explode(regexp_extract_all({{ column }}, '([0-9A-Za-z]+)', 1)) as token from {{ relation }}
    ) as t
    where token rlike '^[0-9]+$'
{%- endmacro %}
