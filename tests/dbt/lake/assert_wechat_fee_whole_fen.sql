-- WeChat prints fees with 5 decimals; staging keeps whole fen, so the last three digits must be zeros.
select
    file_version_id,
    line_no,
    fee_sub_fen_digits
from {{ ref('stg_wechat__trade_bill_lines') }}
where fee_sub_fen_digits <> '000'
