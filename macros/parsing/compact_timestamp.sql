{#
    'yyyyMMddHHmmss' text -> timestamp, engine-neutral: rebuild the ISO form and cast it.
#}
{% macro compact_timestamp(expr) -%}
    cast(
        substring({{ expr }}, 1, 4) || '-' || substring({{ expr }}, 5, 2) || '-' || substring({{ expr }}, 7, 2)
        || ' ' || substring({{ expr }}, 9, 2) || ':' || substring({{ expr }}, 11, 2) || ':' || substring({{ expr }}, 13, 2)
        as timestamp
    )
{%- endmacro %}
