{#
    The business date a build reconciles. `dbt build --vars '{as_of: 2024-03-05}'` rebuilds that day; without the
    var it is the latest bill date landed. Ages and suspense windows are counted to this date.
#}
{% macro as_of_date() -%}
    {%- if var('as_of', none) -%}
        cast('{{ var("as_of") }}' as date)
    {%- else -%}
        -- an analyst's disposition file is dated when it is filed, not a business day of the channels
        (
            select max(bill_date) from {{ source('lake', 'file_ledger') }}
            where status = 'landed' and format <> 'internal_dispositions'
        )
    {%- endif -%}
{%- endmacro %}
