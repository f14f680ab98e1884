{#
    The file versions staging may read: the current version of each (format, merchant, bill date). Superseded,
    duplicate and rejected deliveries never reach reconciliation (INV-06). Used as `where file_version_id in (...)`.
#}
{% macro current_file_versions(format_name) -%}
    (
        select file_version_id from {{ ref('stg_lake__file_deliveries') }}
        where file_status = 'current' and format = '{{ format_name }}'
    )
{%- endmacro %}
