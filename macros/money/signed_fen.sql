{#
    UnionPay amounts: a sign letter then 12 digits of fen, e.g. D000000000077. `positive` names the letter that
    counts as positive for the column being parsed (D for the fee the merchant is charged, C for a settle amount).
#}
{% macro signed_fen(expr, positive='C') -%}
    (case when substring({{ expr }}, 1, 1) = '{{ positive }}' then 1 else -1 end
        * cast(substring({{ expr }}, 2) as bigint))
{%- endmacro %}
