/*
    One row per reconciled pair or one-sided line: every current channel line and every in-scope record of ours is
    in exactly one row of its stream (INV-07). Each row says what was compared, what differs and by how much, the
    rule that paired it, whether an unmatched line still waits in suspense (存疑) or is a break, how old it is, the
    proposed disposition and the disposition an analyst accepted, if any.
*/
with

as_of as (
    select {{ as_of_date() }} as as_of_date
),

calendar as (
    select * from {{ ref('channel_calendar') }}
),

channel_lines_keyed as (
    select
        *,
        business_key || case
            when business_key_occurrence > 1 then '#' || cast(business_key_occurrence as {{ dbt.type_string() }}) else
                ''
        end as unique_business_key
    from {{ ref('int_recon__channel_lines') }}
),

internal_records_keyed as (
    select
        *,
        business_key || case
            when business_key_occurrence > 1 then '#' || cast(business_key_occurrence as {{ dbt.type_string() }}) else
                ''
        end as unique_business_key
    from {{ ref('int_recon__internal_records') }}
),

pairs as (
    select * from {{ ref('int_recon__matched_pairs') }}
),

ambiguous as (
    select
        channel_line_id,
        internal_record_id
    from {{ ref('int_recon__pass3_payer_account_matches') }}
    where is_ambiguous
    union all
    select
        channel_line_id,
        internal_record_id
    from {{ ref('int_recon__pass4_payer_name_matches') }}
    where is_ambiguous
),

-- Each channel line with the pass that paired it, then one full outer join with our records on the paired id:
-- a pair meets its record, an unpaired line or record stays one-sided (its null id matches nothing). Each wide
-- table is read once, so neither is materialised twice.
channel_lines_paired as (
    select
        c.*,
        p.recon_stream as pair_recon_stream,
        p.match_rule,
        p.pass_no,
        p.internal_record_id as paired_internal_record_id
    from channel_lines_keyed as c
    left join pairs as p on c.channel_line_id = p.channel_line_id
),

joined as (
    select
        coalesce(c.pair_recon_stream, c.recon_stream, i.recon_stream) as recon_stream,
        c.match_rule,
        c.pass_no,
        c.channel_line_id,
        i.internal_record_id,
        (c.channel_line_id is not null and i.internal_record_id is not null) as is_pair,
        coalesce(c.channel, i.channel) as channel,
        coalesce(c.row_kind, i.row_kind) as row_kind,
        coalesce(c.bill_date, i.bill_date) as bill_date,
        coalesce(c.due_date, i.due_date) as due_date,
        i.merchant_id,
        c.channel_merchant_id,
        coalesce(c.order_id, i.order_id) as order_id,
        coalesce(c.refund_id, i.refund_id) as refund_id,
        coalesce(c.payout_id, i.payout_id) as payout_id,
        i.recharge_id,
        coalesce(c.channel_serial, i.channel_serial) as channel_serial,
        c.amount_fen as channel_amount_fen,
        i.amount_fen as internal_amount_fen,
        c.fee_fen as channel_fee_fen,
        i.expected_fee_fen,
        c.status as channel_status,
        i.status as internal_status,
        c.txn_at as channel_txn_at,
        i.txn_at as internal_txn_at,
        i.line_count as settled_line_count,
        -- the channel a settlement credit comes from (the first part of its group key)
        split_part(i.group_key, ':', 1) as settled_channel,
        case when i.group_key is not null then i.bill_date end as settled_bill_date,
        c.file_version_id as channel_file_version_id,
        c.line_no as channel_line_no,
        i.file_version_id as internal_file_version_id,
        i.line_no as internal_line_no,
        c.rows_with_duplicate_key as channel_rows_with_key,
        i.rows_with_duplicate_key as internal_rows_with_key,
        case
            when c.known_on is null then i.known_on
            when i.known_on is null or c.known_on < i.known_on then c.known_on
            else i.known_on
        end as first_seen_on,
        case
            when c.known_on is null then i.known_on
            when i.known_on is null or c.known_on > i.known_on then c.known_on
            else i.known_on
        end as both_seen_on,
        -- stable across runs and file re-issues: what an analyst's disposition points at
        coalesce(c.pair_recon_stream, c.recon_stream, i.recon_stream) || '|'
        || coalesce(c.unique_business_key, i.unique_business_key) as recon_key,
        (
            c.channel_line_id in (select a.channel_line_id from ambiguous as a)
            or i.internal_record_id in (select a.internal_record_id from ambiguous as a)
        ) as is_ambiguous
    from channel_lines_paired as c
    full outer join internal_records_keyed as i on c.paired_internal_record_id = i.internal_record_id
),

compared as (
    select
        *,
        channel_amount_fen - internal_amount_fen as amount_delta_fen,
        channel_fee_fen - expected_fee_fen as fee_delta_fen,
        {{ seconds_between('internal_txn_at', 'channel_txn_at') }} as time_gap_seconds, -- noqa: LT05
        case
            when is_pair and channel_amount_fen <> internal_amount_fen then 'amount_mismatch'
            when is_pair and channel_status <> internal_status then 'status_mismatch'
            when is_pair and channel_fee_fen <> expected_fee_fen then 'fee_mismatch'
            when is_pair then 'matched'
            when is_ambiguous then 'ambiguous'
            -- one-sided: a second line with the same row id on the same side is a duplicate, not new money
            when channel_line_id is not null and channel_rows_with_key > 1 then 'duplicate'
            when internal_record_id is not null and internal_rows_with_key > 1 then 'duplicate'
            when channel_line_id is not null then 'channel_only'
            else 'internal_only'
        end as break_type,
        nullif(concat_ws(
            ',',
            case when channel_amount_fen <> internal_amount_fen then 'amount' end,
            case when channel_status <> internal_status then 'status' end,
            case when channel_fee_fen <> expected_fee_fen then 'fee' end
        ), '') as differing_fields
    from joined
),

timed as (
    select
        compared.*,
        as_of.as_of_date,
        case
            when compared.break_type in ('channel_only', 'internal_only')
                then cast({{ dbt.dateadd('day', 'calendar.suspense_days', 'compared.due_date') }} as date)
        end as suspense_until,
        cast({{ dbt.datediff('compared.bill_date', 'as_of.as_of_date', 'day') }} as bigint) as age_days, -- noqa: LT05
        calendar.refund_route_days
    from compared
    cross join as_of
    left join calendar on compared.recon_stream = calendar.recon_stream and compared.channel = calendar.channel
),

stated as (
    select
        *,
        case
            when break_type = 'matched' then 'matched'
            when suspense_until is not null and as_of_date <= suspense_until then 'suspense'
            else 'break'
        end as recon_state
    from timed
),

proposals as (
    select * from {{ ref('break_dispositions') }}
),

decisions as (
    select
        recon_key,
        disposition,
        decided_by,
        decided_at,
        note,
        row_number() over (partition by recon_key order by decided_at desc, file_version_id desc, line_no desc)
            as recency
    from {{ ref('stg_internal__recon_dispositions') }}
    -- decisions made after the as-of date were not known then
    where decided_at < (select {{ dbt.dateadd('day', 1, 'as_of.as_of_date') }} from as_of)
),

final as (
    select
        stated.recon_key,
        stated.recon_stream,
        stated.channel,
        stated.row_kind,
        stated.bill_date,
        stated.as_of_date,
        stated.break_type,
        stated.recon_state,
        stated.match_rule,
        stated.pass_no as match_pass,
        stated.differing_fields,
        stated.channel_amount_fen,
        stated.internal_amount_fen,
        stated.amount_delta_fen,
        stated.channel_fee_fen,
        stated.expected_fee_fen,
        stated.fee_delta_fen,
        stated.channel_status,
        stated.internal_status,
        stated.channel_txn_at,
        stated.internal_txn_at,
        stated.time_gap_seconds,
        stated.merchant_id,
        stated.channel_merchant_id,
        stated.order_id,
        stated.refund_id,
        stated.payout_id,
        stated.recharge_id,
        stated.channel_serial,
        stated.settled_line_count,
        stated.settled_channel,
        stated.settled_bill_date,
        stated.first_seen_on,
        -- the as-of date both sides were first visible together: the day a pair is reconciled (and clears)
        case
            when stated.channel_line_id is not null and stated.internal_record_id is not null
                then stated.both_seen_on
        end as paired_on,
        stated.suspense_until,
        case
            when stated.recon_state <> 'break' then cast(null as date)
            when stated.suspense_until is not null
                then cast({{ dbt.dateadd('day', 1, 'stated.suspense_until') }} as date)
            else stated.both_seen_on
        end as break_since,
        stated.age_days,
        case
            when stated.recon_state <> 'break' then cast(null as {{ dbt.type_string() }})
            -- a 长款 older than the original route accepts refunds is paid out by transfer instead
            when
                stated.recon_stream = 'trade' and stated.break_type = 'channel_only'
                and stated.age_days > stated.refund_route_days
                then 'payout'
            else coalesce(own_kind.proposed_disposition, any_kind.proposed_disposition)
        end as proposed_disposition,
        decisions.disposition as accepted_disposition,
        decisions.decided_by,
        decisions.decided_at,
        decisions.note as disposition_note,
        stated.channel_line_id,
        stated.channel_file_version_id,
        stated.channel_line_no,
        stated.internal_record_id,
        stated.internal_file_version_id,
        stated.internal_line_no
    from stated
    left join proposals as own_kind
        on
            stated.recon_stream = own_kind.recon_stream
            and stated.row_kind = own_kind.row_kind
            and stated.break_type = own_kind.break_type
    left join proposals as any_kind
        on
            stated.recon_stream = any_kind.recon_stream
            and any_kind.row_kind = 'any'
            and stated.break_type = any_kind.break_type
    left join decisions on stated.recon_key = decisions.recon_key and decisions.recency = 1
)

select * from final
-- partitions moved to the history archive (tally archive) stay out of the hot table, also when it is rebuilt;
-- hist_recon_results reads them from the archive
where bill_date not in ({{ archived_partitions('fct_recon_results') }})
