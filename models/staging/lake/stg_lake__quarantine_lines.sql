with

source as (
    select * from {{ source('lake', 'quarantine_lines') }}
),

renamed as (
    select
        file_version_id,
        line_no,
        line_span,
        reason_code,
        reason,
        masked_line
    from source
)

select * from renamed
