{#
    Which catalog a model is written to. On DuckDB the staging and intermediate models (`+database: work` in
    dbt_project.yml) go to a second file beside the warehouse (profiles.yml `attach`), so the warehouse file holds
    only what is served and publish can copy it whole instead of rewriting every mart. Spark has one catalog.
#}
{% macro generate_database_name(custom_database_name=none, node=none) -%}
    {{ return(adapter.dispatch('model_database_name', 'tally')(custom_database_name, node)) }}
{%- endmacro %}

{% macro default__model_database_name(custom_database_name, node) -%}
    {{ return(dbt.default__generate_database_name(none, node)) }}
{%- endmacro %}

{% macro duckdb__model_database_name(custom_database_name, node) -%}
    {{ return(dbt.default__generate_database_name(custom_database_name, node)) }}
{%- endmacro %}
