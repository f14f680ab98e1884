{#
    Every version of one format that a build may compare: the current one and those it superseded (a re-issued bill
    keeps its earlier versions). Duplicate and rejected deliveries stay out. Only the `_versions` staging models use
    it, so that a line a re-issue repeats unchanged keeps the day it was first visible (int_recon__trade_line_states);
    reconciliation itself reads current versions only (INV-06). Used as `where file_version_id in (...)`.
#}
{% macro landed_file_versions(format_name) -%}
    (
        select file_version_id from {{ ref('stg_lake__file_deliveries') }}
        where file_status in ('current', 'superseded') and format = '{{ format_name }}'
    )
{%- endmacro %}
