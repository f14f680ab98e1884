with

source as (
    select * from {{ source('raw_bank', 'bank_statement') }}
    where file_version_id in {{ current_file_versions('bank_statement') }}
),

renamed as (
    select
        bill_date as statement_date,
        bank_serial,
        -- Asia/Shanghai local time of the transfer; booking can be the next business day
        cast(txn_date || ' ' || txn_time as timestamp) as txn_at,
        cast(booking_date as date) as booking_date,
        coalesce({{ yuan_to_fen("nullif(debit_amount, '')") }}, 0) as debit_fen,
        coalesce({{ yuan_to_fen("nullif(credit_amount, '')") }}, 0) as credit_fen,
        coalesce({{ yuan_to_fen("nullif(credit_amount, '')") }}, 0)
        - coalesce({{ yuan_to_fen("nullif(debit_amount, '')") }}, 0) as amount_fen,
        {{ yuan_to_fen('balance') }} as balance_fen,
        counterparty_name,
        nullif(counterparty_account, '') as counterparty_account,
        counterparty_bank,
        summary,
        nullif(remark, '') as remark,
        file_version_id,
        line_no
    from source
)

select * from renamed
