-- INV-12: every break carries a proposed disposition from the accepted set, an accepted disposition (if any) is
-- from that set, and no break is without an age.
select
    f.recon_key,
    f.break_type,
    f.proposed_disposition,
    f.accepted_disposition
from {{ ref('hist_recon_results') }} as f
left join {{ ref('disposition_codes') }} as proposed on f.proposed_disposition = proposed.disposition
left join {{ ref('disposition_codes') }} as accepted on f.accepted_disposition = accepted.disposition
where
    (f.recon_state = 'break' and (proposed.disposition is null or f.age_days is null or f.break_since is null))
    or (f.accepted_disposition is not null and accepted.disposition is null)
