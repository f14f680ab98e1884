-- INV-23: every closed business day of the journal and the reconciliation facts still has the count, money sums and
-- hash it was sealed with (hist_closed_day_seals), recomputed from hot and archive alike. A row is a closed day that
-- changed, lost its rows, or gained rows after it closed. Corrections to a closed day must be entries dated later.
with

stored as (
    select * from {{ ref('hist_closed_day_seals') }}
),

recon_days as (
    {{ day_seals('fct_recon_results', ref('hist_recon_results')) }}
),

journal_days as (
    {{ day_seals('fct_journal_lines', ref('hist_journal_lines')) }}
),

recomputed as (
    select * from recon_days
    union all
    select * from journal_days
),

compared as (
    select
        coalesce(stored.sealed_model, recomputed.sealed_model) as sealed_model,
        coalesce(stored.business_date, recomputed.business_date) as business_date,
        stored.sealed_as_of,
        stored.row_count as sealed_row_count,
        recomputed.row_count as row_count_now,
        stored.amount_sums as sealed_amount_sums,
        recomputed.amount_sums as amount_sums_now,
        stored.rows_hash as sealed_rows_hash,
        recomputed.rows_hash as rows_hash_now
    from stored
    full outer join recomputed
        on stored.sealed_model = recomputed.sealed_model and stored.business_date = recomputed.business_date
)

select * from compared
where
    business_date <= {{ closed_through() }}
    and (
        sealed_row_count is null
        or row_count_now is null
        or sealed_row_count <> row_count_now
        or sealed_amount_sums <> amount_sums_now
        or sealed_rows_hash <> rows_hash_now
    )
