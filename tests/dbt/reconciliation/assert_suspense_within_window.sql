-- INV-11: suspense is a window, not a parking lot. A one-sided line is in suspense exactly while the as-of date
-- is within its channel's window (channel_calendar.suspense_days after the due date), and a break after it;
-- only one-sided lines are ever in suspense.
select
    recon_key,
    break_type,
    recon_state,
    as_of_date,
    suspense_until
from {{ ref('hist_recon_results') }}
where
    (recon_state = 'suspense' and (suspense_until is null or as_of_date > suspense_until))
    or (recon_state = 'suspense' and break_type not in ('channel_only', 'internal_only'))
    or (recon_state = 'break' and suspense_until is not null and as_of_date <= suspense_until)
