{#- The (name, data_type) pairs a model declares in its YAML contract, in declared order. The history models and
    archive checks read archived Parquet through these, so an archived partition is typed exactly like the hot table
    whatever engine reads it. -#}
{% macro contract_columns(model_name) -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ model_name) -%}
    {%- if node is none -%}
        {{ exceptions.raise_compiler_error('contract_columns: no model ' ~ model_name) }}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for name, column in node.columns.items() -%}
        {%- do columns.append((name, column.data_type)) -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}
