{#
    For the rows of `relation` whose `key_column` value repeats within its stream: the row id, its occurrence
    number (in bill date, file and line order) and how many rows share the key. Rows with a unique key are not
    returned (their occurrence is 1), so the window sorts only the few repeated keys instead of every row.
#}
{% macro repeated_key_occurrences(relation, id_column, key_column) -%}
    select
        t.{{ id_column }},
        row_number() over (
            partition by t.recon_stream, t.{{ key_column }} order by t.bill_date, t.file_version_id, t.line_no
        ) as occurrence,
        count(*) over (partition by t.recon_stream, t.{{ key_column }}) as rows_with_key
    from {{ relation }} as t
    inner join (
        select
            recon_stream,
            {{ key_column }}
        from {{ relation }}
        where {{ key_column }} is not null
        group by recon_stream, {{ key_column }}
        having count(*) > 1
    ) as repeated
        on t.recon_stream = repeated.recon_stream and t.{{ key_column }} = repeated.{{ key_column }}
{%- endmacro %}
