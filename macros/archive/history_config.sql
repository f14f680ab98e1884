{#- The archive settings of one model from the `tally_history` var: partition column and money columns. -#}
{% macro history_config(model_name) -%}
    {%- set config = var('tally_history').get(model_name) -%}
    {%- if config is none -%}
        {{ exceptions.raise_compiler_error('history_config: ' ~ model_name ~ ' is not in var tally_history') }}
    {%- endif -%}
    {{ return(config) }}
{%- endmacro %}
