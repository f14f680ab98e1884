/*
    One row per reconciled trade line of an online recharge: a merchant topping up its prepaid balance through a
    channel. The account system's recharge order pays through the cashier like any payment (it is in our payments
    dump with biz_type RECHARGE), so it is reconciled against the channel bill line by the same cascade; what
    differs is where the money goes. It is not trade revenue: it does not clear, carries no merchant fee and no
    settlement batch, and credits the merchant's prepaid balance (2204) on the day it is reconciled, the channel's
    cost borne by us. A recharge line in break or suspense is held like any channel line (BRK) until it resolves.
*/
with

recharge_orders as (
    select order_id from {{ ref('stg_internal__payments') }}
    where biz_type = 'RECHARGE'
)

select
    recon_key,
    merchant_id,
    channel,
    row_kind,
    bill_date,
    -- reconciled on the day both sides were first visible together, once
    paired_on as credited_on,
    internal_amount_fen as amount_fen,
    channel_fee_fen as channel_cost_fen,
    expected_fee_fen as expected_channel_cost_fen,
    break_type,
    order_id,
    refund_id,
    channel_serial,
    channel_file_version_id,
    channel_line_no,
    internal_file_version_id,
    internal_line_no
from {{ ref('hist_recon_results') }}
where
    recon_stream = 'trade'
    and break_type in ('matched', 'fee_mismatch')
    and order_id in (select recharge_orders.order_id from recharge_orders)
