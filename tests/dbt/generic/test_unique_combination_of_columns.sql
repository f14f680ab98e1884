{#
    The grain test: no two rows share the same values of `columns` (dbt_utils' test, written here because
    dbt packages cannot be installed).
#}
{% test unique_combination_of_columns(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as n_rows
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}
