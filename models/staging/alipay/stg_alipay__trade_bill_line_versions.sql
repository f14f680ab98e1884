with

source as (
    select * from {{ source('raw_alipay', 'alipay_trade_bill') }}
    -- every landed version, superseded ones included: the current model filters
    where file_version_id in {{ landed_file_versions('alipay_trade_bill') }}
),

renamed as (
    select
        bill_date,
        case biz_type when '交易' then 'payment' when '退款' then 'refund' end as row_kind,
        trade_no as channel_serial,
        out_trade_no as order_id,
        nullif(refund_request_no, '') as refund_id,
        -- Asia/Shanghai local time; 完成时间 puts the row on its bill day, refunds keep the order's 创建时间
        cast(created_at as timestamp) as order_created_at,
        cast(finished_at as timestamp) as channel_txn_at,
        -- 商家实收 is already negative on refund rows
        {{ yuan_to_fen('receipt_amount') }} as amount_fen,
        {{ yuan_to_fen('order_amount') }} as order_amount_fen,
        -- 服务费 is printed negative when charged: flip it so a charged fee is positive
        -{{ yuan_to_fen('service_fee') }} as fee_fen,
        'SUCCESS' as channel_status,
        'CNY' as currency,
        buyer_account as payer_masked,
        subject,
        file_version_id,
        line_no
    from source
)

select * from renamed
