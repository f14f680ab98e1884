with

source as (
    select * from {{ source('raw_internal', 'internal_payouts') }}
    where file_version_id in {{ current_file_versions('internal_payouts') }}
),

renamed as (
    select
        payout_id,
        merchant_id,
        cast(amount_fen as bigint) as amount_fen,
        currency,
        status,
        account_no,
        account_name,
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at,
        -- the merchant settlement batch this payout pays (empty in dumps from before the column existed)
        nullif(settlement_batch_id, '') as settlement_batch_id,
        -- SETTLEMENT or WITHDRAWAL (提现 from the prepaid balance); dumps without the column hold settlement payouts
        coalesce(nullif(biz_type, ''), 'SETTLEMENT') as biz_type,
        bill_date as dump_date,
        file_version_id,
        line_no
    from source
)

select * from renamed
