-- INV-22: two-way traceability. Every cleared line, every channel line that moved money without clearing and every
-- reconciled channel settlement has its journal; every journal leg points at a reconciliation fact that exists.
with

sources as (
    select 'CLR:' || recon_key as journal_id from {{ ref('fct_cleared_lines') }}
    union all
    select 'BRK:' || recon_key as journal_id from {{ ref('fct_recon_results') }}
    where
        recon_stream = 'trade' and channel_line_id is not null and channel_status = 'SUCCESS'
        and not (internal_record_id is not null and break_type in ('matched', 'fee_mismatch'))
        and channel_amount_fen - coalesce(channel_fee_fen, 0) <> 0
    union all
    select 'STL:' || recon_key as journal_id from {{ ref('fct_recon_results') }}
    where
        recon_stream = 'bank_statement' and row_kind = 'channel_settlement'
        and channel_line_id is not null and internal_record_id is not null
),

journals as (
    select distinct
        journal_id,
        source_recon_key
    from {{ ref('fct_journal_lines') }}
)

select
    coalesce(sources.journal_id, journals.journal_id) as journal_id,
    sources.journal_id is null as journal_without_source,
    journals.journal_id is null as source_without_journal
from sources
full outer join journals on sources.journal_id = journals.journal_id
where
    sources.journal_id is null
    or journals.journal_id is null
    or journals.source_recon_key not in (select f.recon_key from {{ ref('fct_recon_results') }} as f)
