{#
    For the rows of `relation` whose `key_column` value repeats within its stream: the row id, its occurrence
    number (in bill date, file and line order) and how many rows share the key. Rows with a unique key are not
    returned (their occurrence is 1), so the window sorts only the few repeated keys instead of every row.
    The repeated keys are found by grouping a 64-bit hash of the key, which is cheaper than grouping the text of
    millions of mostly unique keys. A hash two different keys share only makes their rows candidates: the window
    counts the key itself, so such a row gets occurrence 1 of 1, as if it had not been returned.
#}
{% macro repeated_key_occurrences(relation, id_column, key_column) -%}
    select
        t.{{ id_column }},
        row_number() over (
            partition by t.recon_stream, t.{{ key_column }} order by t.bill_date, t.file_version_id, t.line_no
        ) as occurrence,
        count(*) over (partition by t.recon_stream, t.{{ key_column }}) as rows_with_key
    from {{ relation }} as t
    where
        t.{{ key_column }} is not null
        and {{ tally.key_hash(['t.recon_stream', 't.' ~ key_column]) }} in (
            select {{ tally.key_hash(['recon_stream', key_column]) }} as key_hash
            from {{ relation }}
            where {{ key_column }} is not null
            group by {{ tally.key_hash(['recon_stream', key_column]) }}
            having count(*) > 1
        )
{%- endmacro %}
