/*
    What we say and expect: every in-scope record of our dumps in one shape, one row per record and stream.
    A payout state change is reconciled twice (against the bank's payout result file, and its money against our
    account statement), so it appears once in each of those streams. The channel settlements we expect from the
    trade bills join the bank_statement stream as our side of the grouped match.
    `expected_fee_fen` is the channel cost from `channel_costs`: the rate per line rounded half up to the fen, and a
    refund returns the original fee pro rata (rounded half up).
*/
with

costs as (
    select * from {{ ref('channel_costs') }}
),

payments as (
    select
        p.*,
        {{ div_half_up('p.amount_fen * c.rate_bp', '10000') }} as expected_fee_fen
    from {{ ref('stg_internal__payments') }} as p
    left join costs as c
        on p.channel = c.channel and p.dump_date between c.valid_from and c.valid_to
),

refunds as (
    select
        r.*,
        -- the fee given back: the original fee times the refunded share, half up (refund amounts are negative)
        -{{ div_half_up('p.expected_fee_fen * (-r.amount_fen)', 'p.amount_fen') }} as expected_fee_fen
    from {{ ref('stg_internal__refunds') }} as r
    left join payments as p on r.order_id = p.order_id
),

trade as {{ cte_hint('not materialized') }} (
    select
        'trade' as recon_stream,
        channel,
        'internal_payments' as source_format,
        merchant_id,
        dump_date as bill_date,
        dump_date as due_date,
        'payment' as row_kind,
        'payment:' || order_id as match_key,
        'serial:' || channel_serial || ':' || cast(amount_fen as {{ dbt.type_string() }}) as secondary_key,
        cast(null as {{ dbt.type_string() }}) as group_key,
        'payment:' || order_id as business_key,
        'payment:' || order_id as duplicate_key,
        channel_serial,
        order_id,
        cast(null as {{ dbt.type_string() }}) as refund_id,
        cast(null as {{ dbt.type_string() }}) as payout_id,
        cast(null as {{ dbt.type_string() }}) as recharge_id,
        cast(null as {{ dbt.type_string() }}) as remark_code,
        amount_fen,
        expected_fee_fen,
        status,
        coalesce(paid_at, created_at) as txn_at,
        payer_id as payer_account,
        cast(null as {{ dbt.type_string() }}) as payer_name,
        cast(null as bigint) as line_count,
        file_version_id,
        line_no,
        cast(null as date) as known_on
    from payments
    union all
    select
        'trade' as recon_stream,
        channel,
        'internal_refunds' as source_format,
        merchant_id,
        dump_date as bill_date,
        dump_date as due_date,
        'refund' as row_kind,
        'refund:' || refund_id as match_key,
        cast(null as {{ dbt.type_string() }}) as secondary_key,
        cast(null as {{ dbt.type_string() }}) as group_key,
        'refund:' || refund_id as business_key,
        'refund:' || refund_id as duplicate_key,
        cast(null as {{ dbt.type_string() }}) as channel_serial,
        order_id,
        refund_id,
        cast(null as {{ dbt.type_string() }}) as payout_id,
        cast(null as {{ dbt.type_string() }}) as recharge_id,
        cast(null as {{ dbt.type_string() }}) as remark_code,
        amount_fen,
        expected_fee_fen,
        status,
        coalesce(succeeded_at, requested_at) as txn_at,
        cast(null as {{ dbt.type_string() }}) as payer_account,
        cast(null as {{ dbt.type_string() }}) as payer_name,
        cast(null as bigint) as line_count,
        file_version_id,
        line_no,
        cast(null as date) as known_on
    from refunds
),

payout_events as (
    select * from {{ ref('stg_internal__payout_events') }}
),

payouts as {{ cte_hint('not materialized') }} (
    select
        'payout_result' as recon_stream,
        'bank' as channel,
        'internal_payouts' as source_format,
        merchant_id,
        dump_date as bill_date,
        dump_date as due_date,
        'payout' as row_kind,
        'payout:' || payout_id || ':' || status as match_key,
        'payout:' || payout_id as secondary_key,
        cast(null as {{ dbt.type_string() }}) as group_key,
        'payout:' || payout_id || ':' || status as business_key,
        'payout:' || payout_id || ':' || status as duplicate_key,
        cast(null as {{ dbt.type_string() }}) as channel_serial,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as refund_id,
        payout_id,
        cast(null as {{ dbt.type_string() }}) as recharge_id,
        cast(null as {{ dbt.type_string() }}) as remark_code,
        amount_fen,
        cast(null as bigint) as expected_fee_fen,
        status,
        updated_at as txn_at,
        account_no as payer_account,
        account_name as payer_name,
        cast(null as bigint) as line_count,
        file_version_id,
        line_no,
        cast(null as date) as known_on
    from payout_events
    union all
    -- the money side: a successful payout debits our account, a returned one (退票) credits it back
    select
        'bank_statement' as recon_stream,
        'bank' as channel,
        'internal_payouts' as source_format,
        merchant_id,
        dump_date as bill_date,
        dump_date as due_date,
        case when status = 'RETURNED' then 'payout_return' else 'payout' end as row_kind,
        case when status = 'RETURNED' then 'payout_return:' else 'payout:' end || payout_id as match_key,
        cast(null as {{ dbt.type_string() }}) as secondary_key,
        cast(null as {{ dbt.type_string() }}) as group_key,
        case when status = 'RETURNED' then 'payout_return:' else 'payout:' end || payout_id as business_key,
        case when status = 'RETURNED' then 'payout_return:' else 'payout:' end || payout_id as duplicate_key,
        cast(null as {{ dbt.type_string() }}) as channel_serial,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as refund_id,
        payout_id,
        cast(null as {{ dbt.type_string() }}) as recharge_id,
        cast(null as {{ dbt.type_string() }}) as remark_code,
        case when status = 'RETURNED' then amount_fen else -amount_fen end as amount_fen,
        cast(null as bigint) as expected_fee_fen,
        'SUCCESS' as status,
        updated_at as txn_at,
        account_no as payer_account,
        account_name as payer_name,
        cast(null as bigint) as line_count,
        file_version_id,
        line_no,
        cast(null as date) as known_on
    from payout_events
    where status in ('SUCCESS', 'RETURNED')
),

recharges as {{ cte_hint('not materialized') }} (
    select
        'bank_statement' as recon_stream,
        'bank' as channel,
        'internal_recharges' as source_format,
        merchant_id,
        dump_date as bill_date,
        dump_date as due_date,
        'recharge' as row_kind,
        'recharge:' || remark_code as match_key,
        cast(null as {{ dbt.type_string() }}) as secondary_key,
        cast(null as {{ dbt.type_string() }}) as group_key,
        'recharge:' || recharge_id as business_key,
        'recharge:' || recharge_id as duplicate_key,
        cast(null as {{ dbt.type_string() }}) as channel_serial,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as refund_id,
        cast(null as {{ dbt.type_string() }}) as payout_id,
        recharge_id,
        remark_code,
        amount_fen,
        cast(null as bigint) as expected_fee_fen,
        -- an application waits for its credit: the credit arriving is what PENDING expects, not a disagreement
        case when status in ('PENDING', 'SUCCESS') then 'SUCCESS' else status end as status,
        applied_at as txn_at,
        payer_account,
        payer_name,
        cast(null as bigint) as line_count,
        file_version_id,
        line_no,
        cast(null as date) as known_on
    from {{ ref('stg_internal__recharges') }}
),

settlements as {{ cte_hint('not materialized') }} (
    select
        'bank_statement' as recon_stream,
        -- the money arrives on our bank account; the settling channel is in the group key
        'bank' as channel,
        'expected_channel_settlement' as source_format,
        cast(null as {{ dbt.type_string() }}) as merchant_id,
        bill_date,
        due_date,
        'channel_settlement' as row_kind,
        cast(null as {{ dbt.type_string() }}) as match_key,
        cast(null as {{ dbt.type_string() }}) as secondary_key,
        group_key,
        'settlement:' || group_key as business_key,
        'settlement:' || group_key as duplicate_key,
        cast(null as {{ dbt.type_string() }}) as channel_serial,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_string() }}) as refund_id,
        cast(null as {{ dbt.type_string() }}) as payout_id,
        cast(null as {{ dbt.type_string() }}) as recharge_id,
        cast(null as {{ dbt.type_string() }}) as remark_code,
        net_fen as amount_fen,
        cast(null as bigint) as expected_fee_fen,
        'SUCCESS' as status,
        cast(null as timestamp) as txn_at,
        cast(null as {{ dbt.type_string() }}) as payer_account,
        cast(null as {{ dbt.type_string() }}) as payer_name,
        line_count,
        cast(null as {{ dbt.type_string() }}) as file_version_id,
        cast(null as bigint) as line_no,
        known_on
    from {{ ref('int_recon__expected_channel_settlements') }}
),

unioned as {{ cte_hint('not materialized') }} (
    select * from trade
    union all
    select * from payouts
    union all
    select * from recharges
    union all
    select * from settlements
),

-- read twice (the keys below, the final select) and computed twice rather than held: it is the whole width.
-- The CTEs it is built from carry the same hint, or DuckDB would hold them instead (each is then read twice).
with_ids as {{ cte_hint('not materialized') }} (
    select
        -- a payout state change is in two streams, so the stream is part of the id
        unioned.recon_stream || ':' || coalesce(
            unioned.file_version_id || '#' || cast(unioned.line_no as {{ dbt.type_string() }}), unioned.business_key
        ) as internal_record_id,
        unioned.recon_stream,
        unioned.channel,
        unioned.source_format,
        unioned.merchant_id,
        unioned.bill_date,
        unioned.due_date,
        unioned.row_kind,
        unioned.match_key,
        unioned.secondary_key,
        unioned.group_key,
        unioned.business_key,
        unioned.duplicate_key,
        unioned.channel_serial,
        unioned.order_id,
        unioned.refund_id,
        unioned.payout_id,
        unioned.recharge_id,
        unioned.remark_code,
        unioned.amount_fen,
        unioned.expected_fee_fen,
        unioned.status,
        unioned.txn_at,
        unioned.payer_account,
        unioned.payer_name,
        unioned.line_count,
        unioned.file_version_id,
        unioned.line_no,
        -- the first as-of date whose build could see the record: dumps arrive the morning after their date
        case
            when unioned.known_on is not null then unioned.known_on
            when cast(files.delivered_at as date) > unioned.bill_date
                then cast({{ dbt.dateadd('day', -1, 'cast(files.delivered_at as date)') }} as date)
            else unioned.bill_date
        end as known_on
    from unioned
    left join {{ ref('stg_lake__file_deliveries') }} as files
        on unioned.file_version_id = files.file_version_id and files.file_status = 'current'
),

-- what the repeated-key checks read: computed for each of them, not held. Held, it ran DuckDB out of memory at 50M
-- trades (int_recon__channel_lines, whose held copy passed there, keeps it).
id_keys as {{ cte_hint('not materialized') }} (
    select
        internal_record_id,
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
    {{ repeated_key_occurrences('id_keys', 'internal_record_id', 'match_key') }}
),

business_key_repeats as (
    {{ repeated_key_occurrences('id_keys', 'internal_record_id', 'business_key') }}
),

duplicate_key_repeats as (
    {{ repeated_key_occurrences('id_keys', 'internal_record_id', 'duplicate_key') }}
)

select
    with_ids.*,
    coalesce(match_key_repeats.occurrence, 1) as match_key_occurrence,
    coalesce(business_key_repeats.occurrence, 1) as business_key_occurrence,
    coalesce(duplicate_key_repeats.rows_with_key, 1) as rows_with_duplicate_key
from with_ids
left join match_key_repeats on with_ids.internal_record_id = match_key_repeats.internal_record_id
left join business_key_repeats on with_ids.internal_record_id = business_key_repeats.internal_record_id
left join duplicate_key_repeats on with_ids.internal_record_id = duplicate_key_repeats.internal_record_id
