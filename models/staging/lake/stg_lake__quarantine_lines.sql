with

source as (
    select * from {{ source('lake', 'quarantine_lines') }}
    -- leave out lines of files delivered after the build's as_of date; lines pointing at no delivery at all stay
    -- visible, so the lineage test (INV-03) still sees them
    where file_version_id not in (
        select ledger.file_version_id from {{ source('lake', 'file_ledger') }} as ledger
        except
        select known.file_version_id from {{ ref('stg_lake__file_deliveries') }} as known
    )
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
