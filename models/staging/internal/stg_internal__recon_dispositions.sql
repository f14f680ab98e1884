with

source as (
    select * from {{ source('raw_internal', 'internal_dispositions') }}
    where file_version_id in {{ current_file_versions('internal_dispositions') }}
),

renamed as (
    select
        recon_key,
        disposition,
        decided_by,
        -- Asia/Shanghai local time of the decision
        cast(decided_at as timestamp) as decided_at,
        note,
        bill_date as filed_on,
        file_version_id,
        line_no
    from source
)

select * from renamed
