/*
    One row per delivered file: where it came from, its bytes' hash, its status (current, superseded by a re-issue,
    duplicate, rejected), its line counts and control totals. The marts name the file version of each line they
    come from (`*_file_version_id`); this is where a BI tool on the serving file follows that to the file itself.
*/
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
from {{ ref('stg_lake__file_deliveries') }}
