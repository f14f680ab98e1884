with

source as (
    select * from {{ source('raw_internal', 'internal_refunds') }}
    where file_version_id in {{ current_file_versions('internal_refunds') }}
),

renamed as (
    select
        refund_id,
        order_id,
        merchant_id,
        channel,
        -- a refund moves money away from the merchant: negative from the merchant's point of view
        -cast(amount_fen as bigint) as amount_fen,
        currency,
        status,
        cast(requested_at as timestamp) as requested_at,
        cast(nullif(succeeded_at, '') as timestamp) as succeeded_at,
        cast(refund_no as integer) as refund_no,
        bill_date as dump_date,
        file_version_id,
        line_no
    from source
)

select * from renamed
