with

source as (
    select * from {{ source('raw_internal', 'internal_payments') }}
    where file_version_id in {{ current_file_versions('internal_payments') }}
),

renamed as (
    select
        order_id,
        merchant_id,
        channel,
        nullif(channel_serial, '') as channel_serial,
        cast(amount_fen as bigint) as amount_fen,
        currency,
        status,
        cast(created_at as timestamp) as created_at,
        cast(nullif(paid_at, '') as timestamp) as paid_at,
        payer_id,
        subject,
        -- TRADE or RECHARGE (a merchant's online top-up of its prepaid balance); dumps without the column hold trades
        coalesce(nullif(biz_type, ''), 'TRADE') as biz_type,
        bill_date as dump_date,
        file_version_id,
        line_no
    from source
)

select * from renamed
