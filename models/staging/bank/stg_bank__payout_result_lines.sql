with

source as (
    select * from {{ source('raw_bank', 'bank_payout_result') }}
    where file_version_id in {{ current_file_versions('bank_payout_result') }}
),

renamed as (
    select
        bill_date as result_date,
        cast(seq as integer) as seq_no,
        payout_id,
        account_no,
        account_name as account_name_masked,
        cast(amount_fen as bigint) as amount_fen,
        currency,
        case status
            when 'S' then 'SUCCESS'
            when 'F' then 'FAILED'
            when 'P' then 'PROCESSING'
            when 'R' then 'RETURNED'
        end as status,
        bank_code as result_code,
        message as result_message,
        nullif(bank_serial, '') as bank_serial,
        {{ compact_timestamp('finished_at') }} as finished_at,
        file_version_id,
        line_no
    from source
)

select * from renamed
