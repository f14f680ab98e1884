{#- The last closed business day as of the build: as-of date minus var tally_closing_days. -#}
{% macro closed_through() -%}
    {{ dbt.dateadd('day', -1 * var('tally_closing_days'), tally.as_of_date()) }}
{%- endmacro %}
