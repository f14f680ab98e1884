{#- One seal per business day of `model_name` read from `relation`: row count, money sums and an order-independent
    hash of every column that states the fact (the `seal_exclude` columns of var tally_history describe the state
    of the work as of the build and change as days pass). Used by hist_closed_day_seals (stored once per closed day)
    and by the INV-23 test (recomputed on every build). -#}
{% macro day_seals(model_name, relation) -%}
    {%- set config = tally.history_config(model_name) -%}
    {%- set sealed = [] -%}
    {%- for name, _ in tally.contract_columns(model_name) -%}
        {%- if name not in config['seal_exclude'] -%}{%- do sealed.append(name) -%}{%- endif -%}
    {%- endfor -%}
    select
        '{{ model_name }}' as sealed_model,
        {{ config['partition_by'] }} as business_date,
        count(*) as row_count,
        {{ tally.amount_sums(config['amounts']) }} as amount_sums,
        {{ tally.rows_hash(sealed) }} as rows_hash
    from {{ relation }}
    group by {{ config['partition_by'] }}
{%- endmacro %}
