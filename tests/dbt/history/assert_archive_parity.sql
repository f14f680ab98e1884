-- INV-25: every archived partition (manifest state verified or deleted) reads back from its Parquet with the row
-- count, money sums and row hash the hot table had when it was written ('written' event) and that the archive
-- verified ('verified' event); and once the manifest says its hot rows are deleted, none are left in (or rebuilt
-- into) the hot table. Duplicate keys across hot and archive are caught by the hist_ models' grain tests.
{% for model_name, config in var('tally_history').items() %}
    {%- set partition_column = config['partition_by'] -%}
    {%- set columns = [] -%}
    {%- for name, _ in contract_columns(model_name) -%}{%- do columns.append(name) -%}{%- endfor -%}
    select
        '{{ model_name }}' as model_name,
        archived.partition_value,
        latest.state as manifest_state,
        written.row_count as hot_row_count_when_written,
        verified.row_count as verified_row_count,
        parquet.row_count as parquet_row_count,
        written.amount_sums as hot_amount_sums_when_written,
        verified.amount_sums as verified_amount_sums,
        parquet.amount_sums as parquet_amount_sums,
        written.rows_hash as hot_rows_hash_when_written,
        verified.rows_hash as verified_rows_hash,
        parquet.rows_hash as parquet_rows_hash,
        hot.row_count as rows_still_hot
    from ({{ archived_partitions(model_name) }}) as archived
    inner join (
        select
            m.partition_value,
            m.state,
            row_number() over (partition by m.partition_value order by m.event_seq desc) as recency
        from {{ archive_manifest() }} as m
        where m.model_name = '{{ model_name }}'
    ) as latest on archived.partition_value = latest.partition_value and latest.recency = 1
    left join (
        select
            m.partition_value,
            m.state,
            m.row_count,
            m.amount_sums,
            m.rows_hash,
            row_number() over (partition by m.partition_value, m.state order by m.event_seq desc) as recency
        from {{ archive_manifest() }} as m
        where m.model_name = '{{ model_name }}'
    ) as written
        on archived.partition_value = written.partition_value and written.state = 'written' and written.recency = 1
    left join (
        select
            m.partition_value,
            m.state,
            m.row_count,
            m.amount_sums,
            m.rows_hash,
            row_number() over (partition by m.partition_value, m.state order by m.event_seq desc) as recency
        from {{ archive_manifest() }} as m
        where m.model_name = '{{ model_name }}'
    ) as verified
        on archived.partition_value = verified.partition_value and verified.state = 'verified' and verified.recency = 1
    left join (
        select
            a.{{ partition_column }} as partition_value,
            count(*) as row_count,
            {{ amount_sums(config['amounts']) }} as amount_sums,
            {{ rows_hash(columns) }} as rows_hash
        from {{ read_archive(model_name) }} as a
        group by a.{{ partition_column }}
    ) as parquet on archived.partition_value = parquet.partition_value
    left join (
        select
            h.{{ partition_column }} as partition_value,
            count(*) as row_count
        from {{ ref(model_name) }} as h
        group by h.{{ partition_column }}
    ) as hot on archived.partition_value = hot.partition_value
    where
        parquet.row_count is null
        or written.row_count is null
        or verified.row_count is null
        or written.row_count <> parquet.row_count
        or verified.row_count <> parquet.row_count
        or written.amount_sums <> parquet.amount_sums
        or verified.amount_sums <> parquet.amount_sums
        or written.rows_hash <> parquet.rows_hash
        or verified.rows_hash <> parquet.rows_hash
        or (latest.state = 'deleted' and hot.row_count > 0)
    {% if not loop.last %}
        union all
    {% endif %}
{%- endfor %}
