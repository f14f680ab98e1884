with

source as (
    select * from {{ source('raw_wechat', 'wechat_trade_bill') }}
    -- every landed version, superseded ones included: the current model filters
    where file_version_id in {{ landed_file_versions('wechat_trade_bill') }}
),

renamed as (
    select
        bill_date,
        mch_id as channel_merchant_id,
        case trade_state
            when 'SUCCESS' then 'payment'
            when 'REFUND' then 'refund'
            when 'REVOKED' then 'revoke'
        end as row_kind,
        transaction_id as channel_serial,
        nullif(refund_id, '0') as channel_refund_id,
        out_trade_no as order_id,
        nullif(out_refund_no, '0') as refund_id,
        -- Asia/Shanghai local time: pay-success time for payments, refund-accepted time for refunds
        cast(trade_time as timestamp) as channel_txn_at,
        case trade_state
            when 'REFUND' then -{{ yuan_to_fen('refund_amount') }}
            when 'REVOKED' then -{{ yuan_to_fen('settlement_amount') }}
            else {{ yuan_to_fen('settlement_amount') }}
        end as amount_fen,
        -- the fee the merchant is charged; negative when a refund gives it back
        {{ yuan_to_fen('fee', 5) }} as fee_fen,
        substring(fee, length(fee) - 2) as fee_sub_fen_digits,
        case when trade_state = 'REFUND' then refund_status else trade_state end as channel_status,
        currency,
        rate as fee_rate_text,
        openid as payer_id,
        body as subject,
        file_version_id,
        line_no
    from source
)

select * from renamed
