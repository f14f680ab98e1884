{#
    Yuan text -> integer fen, exactly. Landing has already proven the text matches a strict pattern
    (^-?\d+\.\d{2}$, or \.\d{5} for WeChat's fee column, or thousands separators for bank exports), so removing
    the separators and the decimal point is exact integer arithmetic: no binary or decimal rounding can happen.
    `decimals` is how many decimals the text has; digits past the second must be zeros (a data test checks it).
#}
{% macro yuan_to_fen(expr, decimals=2) -%}
    {%- if decimals == 2 -%}
    cast(replace(replace({{ expr }}, ',', ''), '.', '') as bigint)
    {%- else -%}
    cast(replace(substring({{ expr }}, 1, length({{ expr }}) - {{ decimals - 2 }}), '.', '') as bigint)
    {%- endif -%}
{%- endmacro %}
