with

source as (
    select * from {{ source('raw_internal', 'internal_dispositions') }}
    -- append-only: every filed file counts, also a second one for the same day (which the ledger calls the newer
    -- version); the latest decision per recon_key wins downstream. Exact duplicates count once.
    where file_version_id in (
        select filed.file_version_id from {{ ref('stg_lake__file_deliveries') }} as filed
        where filed.format = 'internal_dispositions' and filed.file_status in ('current', 'superseded')
    )
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
