-- INV-12: an accepted disposition never points at a matched fact (nothing to dispose) and never at a key that is
-- not a fact at all (a typo would silently dispose nothing).
with

latest as (
    select
        recon_key,
        disposition,
        row_number() over (partition by recon_key order by decided_at desc, file_version_id desc, line_no desc)
            as recency
    from {{ ref('stg_internal__recon_dispositions') }}
)

select
    latest.recon_key,
    latest.disposition,
    facts.break_type
from latest
left join {{ ref('hist_recon_results') }} as facts on latest.recon_key = facts.recon_key
where latest.recency = 1 and (facts.recon_key is null or facts.break_type = 'matched')
