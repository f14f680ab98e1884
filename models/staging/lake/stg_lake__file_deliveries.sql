/*
    One row per delivered file, with its derived status:
    - rejected: the file was refused at landing (reason in reject_reason);
    - duplicate: the same bytes (SHA-256) were delivered before; this delivery counts nothing;
    - current / superseded: among the distinct landed files for one (format, merchant, bill date), the latest
      delivery is current, earlier ones are superseded (a re-issued file replaces the old one, both are kept).
    Order is (delivered_at, sha256 / source_path), never landing order, so any landing order gives the same result.
    With `--vars '{as_of: ...}'` only deliveries known on that date count (see is_known_as_of), so statuses are
    what they were then: a file re-issued later is still current as of an earlier date.
*/
with

source as (
    select * from {{ source('lake', 'file_ledger') }}
    where {{ is_known_as_of('bill_date', 'delivered_at') }}
),

firsts as (
    select
        *,
        row_number() over (partition by sha256 order by delivered_at, source_path) = 1 as is_first_delivery
    from source
),

versions as (
    select
        *,
        row_number() over (
            partition by format, merchant_key, bill_date order by delivered_at, sha256
        ) as version_no,
        count(*) over (partition by format, merchant_key, bill_date) as version_count,
        lead(file_version_id) over (
            partition by format, merchant_key, bill_date order by delivered_at, sha256
        ) as superseded_by_file_version_id
    from firsts
    where status = 'landed' and is_first_delivery
),

others as (
    select
        *,
        cast(null as bigint) as version_no,
        cast(null as bigint) as version_count,
        cast(null as string) as superseded_by_file_version_id
    from firsts
    where not (status = 'landed' and is_first_delivery)
),

final as (
    select
        *,
        case when version_no = version_count then 'current' else 'superseded' end as file_status
    from versions
    union all
    select
        *,
        case when status = 'rejected' then 'rejected' else 'duplicate' end as file_status
    from others
)

select
    delivery_id,
    file_version_id,
    sha256,
    source_path,
    size_bytes,
    format,
    channel,
    merchant_key,
    bill_type,
    bill_date,
    delivered_at,
    landed_at,
    file_status,
    reject_reason,
    version_no,
    superseded_by_file_version_id,
    is_empty_day,
    lines_total,
    lines_detail,
    lines_quarantined,
    lines_other,
    ctl_row_count,
    ctl_payment_fen,
    ctl_refund_fen,
    ctl_fee_fen,
    ctl_credit_fen,
    ctl_debit_fen
from final
