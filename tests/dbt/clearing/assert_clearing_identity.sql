-- INV-14: per merchant and day, gross - refunds - fees = net; and over all merchants the clearing totals equal the
-- reconciled amounts they came from (Σ gross = Σ matched payment amounts, Σ refunds likewise), online recharges
-- (which do not clear) aside.
with

daily as (
    select * from {{ ref('fct_merchant_clearing_daily') }}
),

identity_breaks as (
    select
        merchant_id,
        cleared_on,
        'gross - refunds - fees <> net' as problem
    from daily
    where gross_fen - refund_fen - merchant_fee_fen <> net_fen
),

facts as (
    select
        sum(case when row_kind = 'payment' then internal_amount_fen else 0 end) as payments_fen,
        sum(case when row_kind = 'refund' then -internal_amount_fen else 0 end) as refunds_fen
    from {{ ref('hist_recon_results') }}
    where
        recon_stream = 'trade' and break_type in ('matched', 'fee_mismatch')
        -- online recharges are reconciled trade lines that credit the prepaid balance instead of clearing
        and order_id not in (
            select p.order_id from {{ ref('stg_internal__payments') }} as p
            where p.biz_type = 'RECHARGE'
        )
),

cleared as (
    select
        sum(gross_fen) as gross_fen,
        sum(refund_fen) as refund_fen
    from daily
)

select
    merchant_id,
    cleared_on,
    problem
from identity_breaks
union all
select
    cast(null as {{ dbt.type_string() }}) as merchant_id,
    cast(null as date) as cleared_on,
    'clearing totals differ from reconciled totals' as problem
from facts
cross join cleared
where facts.payments_fen <> coalesce(cleared.gross_fen, 0) or facts.refunds_fen <> coalesce(cleared.refund_fen, 0)
