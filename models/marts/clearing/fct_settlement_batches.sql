/*
    One row per merchant settlement batch (结算批次): a merchant's net of one clearing day, due on the T+N-th
    business day after it (merchants.settlement_cycle_days, business_calendar with holidays and make-up workdays).
    Each cleared line belongs to exactly one batch (fct_cleared_lines.settlement_batch_id).
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
)

select
    clearing.settlement_batch_id,
    clearing.merchant_id,
    clearing.cleared_on,
    merchants.settlement_cycle_days,
    following.calendar_date as due_on,
    clearing.payments + clearing.refunds as line_count,
    clearing.net_fen as amount_fen,
    case
        when clearing.net_fen <= 0 then 'nothing_to_pay'
        when following.calendar_date <= {{ as_of_date() }} then 'due'
        else 'scheduled'
    end as batch_status
from clearing
inner join merchants on clearing.merchant_id = merchants.merchant_id
left join following
    on
        clearing.cleared_on = following.cleared_on
        and merchants.settlement_cycle_days = following.business_day_no
