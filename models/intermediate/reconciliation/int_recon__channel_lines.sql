/*
    What the channels and the bank say: every current staged line of every channel file in one shape, one row per
    line. `recon_stream` says which of our records it is reconciled against:
    - trade: WeChat, Alipay and UnionPay bill lines (payments, refunds, revokes) against our payments and refunds;
    - payout_result: the bank's payout result lines against our payout state changes;
    - bank_statement: our settlement account's bookings against our payouts, recharges and the channel settlements
      we expect from the trade bills.
    `match_key` is the exact key of pass 1, `secondary_key` the key of pass 2, `group_key` the key of grouped
    matching. Amounts keep the source's sign (trade: the merchant's point of view; statement: credit - debit).
*/
with

settlement_accounts as (
    select * from {{ ref('settlement_payer_accounts') }}
),

-- WeChat, Alipay and UnionPay bill lines in one shape (int_recon__trade_bill_lines), current versions only
trade_lines as {{ cte_hint('not materialized') }} (
    select
        channel,
        source_format,
        channel_merchant_id,
        bill_date,
        row_kind,
        our_id,
        channel_serial,
        payment_channel_serial,
        order_id,
        refund_id,
        amount_fen,
        fee_fen,
        status,
        txn_at,
        payer_account,
        remark,
        file_version_id,
        line_no
    from {{ ref('int_recon__trade_bill_lines') }}
    where file_status = 'current'
),

trade as {{ cte_hint('not materialized') }} (
    select
        'trade' as recon_stream,
        channel,
        source_format,
        channel_merchant_id,
        bill_date,
        bill_date as due_date,
        row_kind,
        row_kind || ':' || our_id as match_key,
        case
            when row_kind = 'payment'
                then 'serial:' || payment_channel_serial || ':' || cast(amount_fen as {{ dbt.type_string() }})
        end as secondary_key,
        cast(null as {{ dbt.type_string() }}) as group_key,
        row_kind || ':' || our_id as business_key,
        -- the same channel row id twice is a duplicate; the same order id under two serials is two payments
        row_kind || ':' || channel_serial as duplicate_key,
        channel_serial,
        order_id,
        refund_id,
        cast(null as {{ dbt.type_string() }}) as payout_id,
        cast(null as {{ dbt.type_string() }}) as remark_code,
        amount_fen,
        fee_fen,
        status,
        txn_at,
        payer_account,
        cast(null as {{ dbt.type_string() }}) as payer_name,
        remark,
        file_version_id,
        line_no
    from trade_lines
),

payout_result as {{ cte_hint('not materialized') }} (
    select
        'payout_result' as recon_stream,
        'bank' as channel,
        'bank_payout_result' as source_format,
        cast(null as {{ dbt.type_string() }}) as channel_merchant_id,
        result_date as bill_date,
        result_date as due_date,
        'payout' as row_kind,
        'payout:' || payout_id || ':' || status as match_key,
        'payout:' || payout_id as secondary_key,
        cast(null as {{ dbt.type_string() }}) as group_key,
        'payout:' || payout_id || ':' || status as business_key,
        'payout:' || payout_id || ':' || status as duplicate_key,
        bank_serial as channel_serial,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as refund_id,
        payout_id,
        cast(null as {{ dbt.type_string() }}) as remark_code,
        amount_fen,
        cast(null as bigint) as fee_fen,
        status,
        finished_at as txn_at,
        account_no as payer_account,
        account_name_masked as payer_name,
        result_message as remark,
        file_version_id,
        line_no
    from {{ ref('stg_bank__payout_result_lines') }}
),

statement_parsed as (
    select
        s.*,
        a.channel as settling_channel,
        -- our payout ids and recharge codes as quoted in the transfer remark (附言)
        nullif(regexp_extract(coalesce(s.remark, ''), 'PO[0-9]{12}', 0), '') as payout_id,
        nullif(regexp_extract(coalesce(s.remark, ''), 'U[0-9]{8}', 0), '') as remark_code,
        -- a channel settlement remark names the bill date and the channel merchant: "WE结算 20240304 1600012345"
        nullif(regexp_extract(coalesce(s.remark, ''), '([0-9]{8}) ([0-9]+)$', 1), '') as settled_bill_day,
        nullif(regexp_extract(coalesce(s.remark, ''), '([0-9]{8}) ([0-9]+)$', 2), '') as settled_merchant
    from {{ ref('stg_bank__statement_lines') }} as s
    left join settlement_accounts as a on s.counterparty_account = a.payer_account
),

statement_kinds as (
    select
        *,
        case
            -- from a channel's settlement account either way: a bill day that netted negative is collected (a debit)
            when settling_channel is not null then 'channel_settlement'
            when payout_id is not null and debit_fen > 0 then 'payout'
            when payout_id is not null and credit_fen > 0 then 'payout_return'
            when credit_fen > 0 then 'recharge'
            else 'other_debit'
        end as row_kind
    from statement_parsed
),

bank_statement as {{ cte_hint('not materialized') }} (
    select
        'bank_statement' as recon_stream,
        'bank' as channel,
        'bank_statement' as source_format,
        cast(null as {{ dbt.type_string() }}) as channel_merchant_id,
        statement_date as bill_date,
        statement_date as due_date,
        row_kind,
        case
            when row_kind in ('payout', 'payout_return') then row_kind || ':' || payout_id
            when row_kind = 'recharge' and remark_code is not null then 'recharge:' || remark_code
        end as match_key,
        cast(null as {{ dbt.type_string() }}) as secondary_key,
        case
            when row_kind = 'channel_settlement'
                then settling_channel || ':' || settled_merchant || ':' || settled_bill_day
        end as group_key,
        'bank_serial:' || bank_serial as business_key,
        'bank_serial:' || bank_serial as duplicate_key,
        bank_serial as channel_serial,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as refund_id,
        payout_id,
        remark_code,
        amount_fen,
        cast(null as bigint) as fee_fen,
        'SUCCESS' as status,
        txn_at,
        counterparty_account as payer_account,
        counterparty_name as payer_name,
        remark,
        file_version_id,
        line_no
    from statement_kinds
),

unioned as {{ cte_hint('not materialized') }} (
    select * from trade
    union all
    select * from payout_result
    union all
    select * from bank_statement
),

-- read twice (the keys below, the final select) and computed twice rather than held: it is the whole width.
-- The CTEs it is built from carry the same hint, or DuckDB would hold them instead (each is then read twice).
with_ids as {{ cte_hint('not materialized') }} (
    select
        file_version_id || '#' || cast(line_no as {{ dbt.type_string() }}) as channel_line_id,
        *
    from unioned
),

-- what the repeated-key checks read, kept once and narrow
id_keys as {{ cte_hint('materialized') }} (
    select
        channel_line_id,
        recon_stream,
        match_key,
        business_key,
        duplicate_key,
        bill_date,
        file_version_id,
        line_no
    from with_ids
),

match_key_repeats as (
    {{ repeated_key_occurrences('id_keys', 'channel_line_id', 'match_key') }}
),

business_key_repeats as (
    {{ repeated_key_occurrences('id_keys', 'channel_line_id', 'business_key') }}
),

duplicate_key_repeats as (
    {{ repeated_key_occurrences('id_keys', 'channel_line_id', 'duplicate_key') }}
)

select
    with_ids.*,
    coalesce(match_key_repeats.occurrence, 1) as match_key_occurrence,
    coalesce(business_key_repeats.occurrence, 1) as business_key_occurrence,
    coalesce(duplicate_key_repeats.rows_with_key, 1) as rows_with_duplicate_key,
    -- the first as-of date whose build could see the line: the file arrives the morning after its bill date; a line
    -- a re-issued bill repeats unchanged keeps the day it was first visible (int_recon__trade_line_states)
    coalesce(
        states.state_known_on,
        case
            when cast(files.delivered_at as date) > with_ids.bill_date
                then cast({{ dbt.dateadd('day', -1, 'cast(files.delivered_at as date)') }} as date)
            else with_ids.bill_date
        end
    ) as known_on
from with_ids
inner join {{ ref('stg_lake__file_deliveries') }} as files
    on with_ids.file_version_id = files.file_version_id and files.file_status = 'current'
left join {{ ref('int_recon__trade_line_states') }} as states on with_ids.channel_line_id = states.channel_line_id
left join match_key_repeats on with_ids.channel_line_id = match_key_repeats.channel_line_id
left join business_key_repeats on with_ids.channel_line_id = business_key_repeats.channel_line_id
left join duplicate_key_repeats on with_ids.channel_line_id = duplicate_key_repeats.channel_line_id
