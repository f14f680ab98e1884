{#- The contract columns of `model_name`, qualified by `alias`, one per line, for an explicit select list. -#}
{% macro column_list(model_name, alias) -%}
    {%- set names = [] -%}
    {%- for name, _ in tally.contract_columns(model_name) -%}
        {%- do names.append(alias ~ '.' ~ name) -%}
    {%- endfor -%}
    {{ names | join(',\n        ') if names else alias ~ '.*' }}
{%- endmacro %}
