{#- The sums of money columns as one comparable text, `col=Σ;col=Σ` in the given order (BIGINT fen, 0 when there
    are no rows). The archive manifest and the seals store it; `tally archive` writes the same text. -#}
{% macro amount_sums(columns) -%}
    {%- for column in columns -%}
        '{{ column }}=' || cast(cast(coalesce(sum({{ column }}), 0) as bigint) as {{ dbt.type_string() }})
        {{- " || ';' || " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
