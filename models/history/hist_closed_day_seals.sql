/*
    One row per sealed model and closed business day (INV-23): the day's row count, money sums and order-independent
    hash, stored the first time a build sees the day closed (var tally_closing_days before the as-of date) and never
    changed after: append-only, and `--full-refresh` does not rebuild it. The test
    assert_closed_days_match_seals recomputes every closed day from the hist_ models and compares. A correction to a
    sealed day must arrive as entries dated later, never as a change to the day.
*/
{{ config(materialized='incremental', full_refresh=false) }}

with

recon_days as (
    {{ day_seals('fct_recon_results', ref('hist_recon_results')) }}
),

journal_days as (
    {{ day_seals('fct_journal_lines', ref('hist_journal_lines')) }}
),

days as (
    select * from recon_days
    union all
    select * from journal_days
),

closed as (
    select
        days.sealed_model,
        days.business_date,
        days.row_count,
        days.amount_sums,
        days.rows_hash,
        {{ as_of_date() }} as sealed_as_of
    from days
    where days.business_date <= {{ closed_through() }}
),

final as (
    select closed.*
    from closed
    {% if is_incremental() -%}
        -- a day already sealed keeps its first seal
        left join {{ this }} as sealed
            on closed.sealed_model = sealed.sealed_model and closed.business_date = sealed.business_date
        where sealed.sealed_model is null
    {%- endif %}
)

select * from final
