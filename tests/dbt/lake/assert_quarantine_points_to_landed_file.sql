-- INV-03: every quarantined row belongs to a landed file version (never to a rejected or unknown one).
select
    q.file_version_id,
    q.line_no
from {{ ref('stg_lake__quarantine_lines') }} as q
left join (
    select distinct file_version_id from {{ ref('stg_lake__file_deliveries') }}
    where file_status in ('current', 'superseded')
) as f on q.file_version_id = f.file_version_id
where f.file_version_id is null
