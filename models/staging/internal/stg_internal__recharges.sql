with

source as (
    select * from {{ source('raw_internal', 'internal_recharges') }}
    where file_version_id in {{ current_file_versions('internal_recharges') }}
),

renamed as (
    select
        recharge_id,
        merchant_id,
        cast(amount_fen as bigint) as amount_fen,
        currency,
        status,
        payer_name,
        nullif(payer_account, '') as payer_account,
        nullif(remark_code, '') as remark_code,
        cast(applied_at as timestamp) as applied_at,
        bill_date as dump_date,
        file_version_id,
        line_no
    from source
)

select * from renamed
