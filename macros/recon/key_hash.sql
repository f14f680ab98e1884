{#- A 64-bit hash of some columns, for grouping by a number instead of long text. Never a key on its own: two
    values can share a hash, so whatever a hash selects is checked against the values themselves. -#}
{% macro key_hash(columns) -%}
    {{ return(adapter.dispatch('key_hash', 'tally')(columns)) }}
{%- endmacro %}

{% macro default__key_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{% macro spark__key_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}
