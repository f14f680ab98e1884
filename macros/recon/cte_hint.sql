{#-
    DuckDB materialises a CTE that is referenced more than once. `cte_hint('materialized')` or
    `cte_hint('not materialized')` says which a CTE should be: a narrow table of keys read by several checks is worth
    keeping, a wide union read twice is cheaper to compute again than to hold (at 10M lines it spilled 13 GB).
    Spark has no such hint and needs none (it inlines CTEs).
-#}
{% macro cte_hint(kind) -%}
    {{ return(adapter.dispatch('cte_hint', 'tally')(kind)) }}
{%- endmacro %}

{% macro default__cte_hint(kind) -%}
{%- endmacro %}

{% macro duckdb__cte_hint(kind) -%}
    {{ kind }}
{%- endmacro %}
