/*
    One row per merchant settlement batch (结算批次): a merchant's net of one clearing day, due on the T+N-th
    business day after it (merchants.settlement_cycle_days, business_calendar with holidays and make-up workdays).
    Each clearing entry belongs to exactly one batch (fct_cleared_lines.settlement_batch_id). Its payouts, as the
    bank's payout result files report them, say whether it is paid, in transit, or waits for a new payout after a
    failure or a return (requeued).

    A day whose refunds (or reversals) exceed its payments nets negative. Such a batch pays nothing: the merchant owes
    us the shortfall, and it is carried into the merchant's next batches, which pay only what is left after it
    (payable = net + carried in, never below zero). We carry it rather than take it from the merchant's prepaid
    balance: that balance is the merchant's own money for other uses, withdrawable at any time and often empty, and
    setting it off would need the merchant's consent. The ledger moves the shortfall from the merchant payable to
    a receivable from the merchant (1123) until a later batch recovers it (SCF journals), so the payable never goes
    negative. With S the merchant's running net and M its running maximum (at least 0), a batch pays M - M(previous)
    and carries S - M out: set-based, and it depends on earlier batches only, so a paid batch never changes.
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

-- the carry: S = the merchant's net so far, M = its running maximum (at least 0) = what has been payable so far
running as (
    select
        *,
        cast(sum(net_fen) over (
            partition by merchant_id order by cleared_on rows between unbounded preceding and current row
        ) as bigint) as net_so_far_fen
    from clearing
),

carried as (
    select
        *,
        greatest(
            max(net_so_far_fen) over (
                partition by merchant_id order by cleared_on rows between unbounded preceding and current row
            ),
            0
        ) as payable_so_far_fen,
        coalesce(greatest(
            max(net_so_far_fen) over (
                partition by merchant_id order by cleared_on rows between unbounded preceding and 1 preceding
            ),
            0
        ), 0) as payable_before_fen
    from running
),

shares as (
    select
        *,
        net_so_far_fen - net_fen - payable_before_fen as carried_in_fen,
        payable_so_far_fen - payable_before_fen as payable_fen,
        net_so_far_fen - payable_so_far_fen as carried_out_fen
    from carried
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
    shares.settlement_batch_id,
    shares.merchant_id,
    shares.cleared_on,
    merchants.settlement_cycle_days,
    following.calendar_date as due_on,
    shares.lines as line_count,
    shares.net_fen as amount_fen,
    shares.carried_in_fen,
    shares.payable_fen,
    shares.carried_out_fen,
    coalesce(payouts.payouts, 0) as payouts,
    coalesce(payouts.paid_fen, 0) as paid_fen,
    case when coalesce(payouts.paid_fen, 0) = shares.payable_fen then payouts.paid_on end as paid_on,
    shares.payable_fen - coalesce(payouts.paid_fen, 0) as unpaid_fen,
    case
        -- a shortfall the batch could not cover goes on to the next batch
        when shares.payable_fen = 0 and shares.carried_out_fen < 0 then 'carried_forward'
        when shares.payable_fen = 0 then 'nothing_to_pay'
        when coalesce(payouts.paid_fen, 0) = shares.payable_fen then 'paid'
        when payouts.has_payout_in_transit = 1 then 'in_transit'
        -- a payout failed or came back (退票): the batch waits for the next one
        when payouts.payouts > 0 then 'requeued'
        when following.calendar_date <= {{ as_of_date() }} then 'due'
        else 'scheduled'
    end as batch_status
from shares
inner join merchants on shares.merchant_id = merchants.merchant_id
left join following
    on
        shares.cleared_on = following.cleared_on
        and merchants.settlement_cycle_days = following.business_day_no
left join payouts on shares.settlement_batch_id = payouts.settlement_batch_id
