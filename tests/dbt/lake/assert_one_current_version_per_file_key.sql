-- INV-01: each (format, merchant, bill date) has at most one current file version.
select
    format,
    merchant_key,
    bill_date,
    count(*) as current_versions
from {{ ref('stg_lake__file_deliveries') }}
where file_status = 'current'
group by format, merchant_key, bill_date
having count(*) > 1
