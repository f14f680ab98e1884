with

source as (
    select * from {{ source('raw_unionpay', 'unionpay_zm') }}
    -- every landed version, superseded ones included: the current model filters
    where file_version_id in {{ landed_file_versions('unionpay_zm') }}
),

renamed as (
    select
        bill_date as settle_date,
        mer_id as channel_merchant_id,
        case txn_type when '01' then 'payment' when '04' then 'refund' when '31' then 'revoke' else 'other' end
            as row_kind,
        txn_type,
        query_id as channel_serial,
        nullif(orig_qry_id, '') as original_channel_serial,
        -- refunds carry our refund id in orderId and the original order in origOrderId
        case when txn_type = '01' then order_id else nullif(orig_order_id, '') end as order_id,
        case when txn_type = '01' then cast(null as string) else order_id end as refund_id,
        trace_no,
        -- txnTime has no year; queryId starts with the full yyyyMMddHHmmss (Asia/Shanghai local time)
        {{ compact_timestamp('query_id') }} as channel_txn_at,
        case when txn_type = '01' then 1 else -1 end * cast(txn_amt as bigint) as amount_fen,
        {{ signed_fen('mer_charge', positive='D') }} as fee_fen,
        {{ signed_fen('settle_amt', positive='C') }} as settle_fen,
        'SUCCESS' as channel_status,
        'CNY' as currency,
        pay_card_no as card_no_masked,
        file_version_id,
        line_no
    from source
)

select * from renamed
