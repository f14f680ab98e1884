/*
    One row per merchant settlement batch (结算批次): a merchant's net of one clearing day, due on the T+N-th
    business day after it (merchants.settlement_cycle_days, business_calendar with holidays and make-up workdays).
    Each clearing entry belongs to exactly one batch (fct_cleared_lines.settlement_batch_id). Its payouts, as the
    bank's payout result files report them, say whether it is paid, in transit, or waits for a new payout after a
    failure or a return (requeued).
*/
with

clearing as (
    select * from {{ ref('fct_merchant_clearing_daily') }}
),

merchants as (
    select * from {{ ref('merchants') }}
),

business_days as (
    select calendar_date from {{ ref('business_calendar') }}
    where is_business_day
),

-- the business days after each clearing day, numbered: the N-th is the due date of a T+N batch
following as (
    select
        days.cleared_on,
        business_days.calendar_date,
        row_number() over (partition by days.cleared_on order by business_days.calendar_date) as business_day_no
    from (select distinct cleared_on from clearing) as days
    inner join business_days
        on
            days.cleared_on < business_days.calendar_date
            and business_days.calendar_date <= {{ dbt.dateadd('day', 30, 'days.cleared_on') }}
),

payouts as (
    select
        settlement_batch_id,
        count(*) as payouts,
        cast(sum(paid_fen) as bigint) as paid_fen,
        max(paid_on) as paid_on,
        max(case when final_status = 'PROCESSING' then 1 else 0 end) as has_payout_in_transit
    from {{ ref('int_settlement__batch_payouts') }}
    group by settlement_batch_id
)

select
    clearing.settlement_batch_id,
    clearing.merchant_id,
    clearing.cleared_on,
    merchants.settlement_cycle_days,
    following.calendar_date as due_on,
    clearing.lines as line_count,
    clearing.net_fen as amount_fen,
    coalesce(payouts.payouts, 0) as payouts,
    coalesce(payouts.paid_fen, 0) as paid_fen,
    case when coalesce(payouts.paid_fen, 0) = clearing.net_fen then payouts.paid_on end as paid_on,
    clearing.net_fen - coalesce(payouts.paid_fen, 0) as unpaid_fen,
    case
        when clearing.net_fen <= 0 then 'nothing_to_pay'
        when coalesce(payouts.paid_fen, 0) = clearing.net_fen then 'paid'
        when payouts.has_payout_in_transit = 1 then 'in_transit'
        -- a payout failed or came back (退票): the batch waits for the next one
        when payouts.payouts > 0 then 'requeued'
        when following.calendar_date <= {{ as_of_date() }} then 'due'
        else 'scheduled'
    end as batch_status
from clearing
inner join merchants on clearing.merchant_id = merchants.merchant_id
left join following
    on
        clearing.cleared_on = following.cleared_on
        and merchants.settlement_cycle_days = following.business_day_no
left join payouts on clearing.settlement_batch_id = payouts.settlement_batch_id
