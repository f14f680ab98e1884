-- INV-20 for unreconciled funds (2241, a transit account): what a break holds there leaves it when an analyst's
-- accepted disposition says where the money goes (a payable to the payer, a claim on the channel, a write-off).
-- For every fact with an accepted disposition that moves money, the fact's 2241 legs net to zero.
select
    j.source_recon_key,
    f.accepted_disposition,
    cast(sum(j.credit_fen - j.debit_fen) as bigint) as still_held_fen
from {{ ref('hist_journal_lines') }} as j
inner join {{ ref('hist_recon_results') }} as f on j.source_recon_key = f.recon_key
where
    j.account_code = '2241'
    and f.accepted_disposition in ('refund_original_route', 'payout', 'chase_funds', 'ignore_out_of_system')
group by j.source_recon_key, f.accepted_disposition
having sum(j.credit_fen - j.debit_fen) <> 0
