{#- A query returning the partition values of `model_name` that are archived now: the latest manifest event of the
    partition is `verified` (the Parquet matches what was hot; the hot rows may not be deleted yet) or `deleted`.
    From `verified` on, history reads the partition from the archive and never from hot, so a crash between
    verifying and deleting can never show a row twice. A `restored` partition is hot again. -#}
{% macro archived_partitions(model_name) -%}
    select last_event.partition_value
    from (
        select
            m.partition_value,
            m.state,
            row_number() over (partition by m.partition_value order by m.event_seq desc) as recency
        from {{ tally.archive_manifest() }} as m
        where m.model_name = '{{ model_name }}'
    ) as last_event
    where
        last_event.recency = 1
        and last_event.state in ('verified', 'deleted')
        and last_event.partition_value is not null
{%- endmacro %}
