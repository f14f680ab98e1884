/*
    What a re-issued trade bill changed, line by line. One row per line of every version of a bill that was
    delivered more than once (a channel re-issued it); bills delivered once are not here, their lines are visible
    from their one delivery.

    A line's state is its content (every column but its file version and line number). A state is visible from the
    first version that lists it, for as long as each later version lists it again: `state_known_on` is the first
    as-of date whose build saw it, and `superseded_on` the as-of date of the first version that no longer lists it
    (changed or dropped), null while the current version still does. So a re-issue leaves the lines it did not change
    where they were (they cleared on their day, in their batch), and only a changed or new line is visible from the
    re-issue. The n-th identical line of a version is the n-th of the next (`content_occurrence`), so a line listed
    twice stays two lines.

    `recon_key` is the fact a state stands for (`trade|` + row kind + our id, `#n` for the n-th line with that key in
    the version, as in fct_recon_results; a key repeated across different bills is not expected). A recon key can
    have several states over time (cleared, then changed by a re-issue): `state_suffix` names each after the first
    (`@yyyymmdd` of the day it became visible), so the entries each state posts get ids of their own.
*/
{%- set file_key = ['format', 'merchant_key', 'bill_date'] -%}
{%- set content = [
    'channel', 'channel_merchant_id', 'row_kind', 'our_id', 'channel_serial', 'payment_channel_serial', 'order_id',
    'refund_id', 'amount_fen', 'fee_fen', 'status', 'txn_at', 'payer_account', 'remark',
] %}

with

versions as (
    select
        file_version_id,
        format,
        merchant_key,
        bill_date,
        version_no,
        -- as in int_recon__trade_bill_lines: a file is first visible the day before the morning it arrived
        case
            when cast(delivered_at as date) > bill_date
                then cast({{ dbt.dateadd('day', -1, 'cast(delivered_at as date)') }} as date)
            else bill_date
        end as known_on,
        count(*) over (partition by format, merchant_key, bill_date) as version_count
    from {{ ref('stg_lake__file_deliveries') }}
    where
        file_status in ('current', 'superseded')
        and format in ('wechat_trade_bill', 'alipay_trade_bill', 'unionpay_zm')
),

-- the day each version of a re-issued bill became visible, and the day the next one did
reissued as (
    select
        *,
        lead(known_on) over (partition by format, merchant_key, bill_date order by version_no) as next_known_on
    from versions
    where version_count > 1
),

lines as (
    select
        l.channel,
        l.source_format,
        l.channel_merchant_id,
        l.bill_date,
        l.row_kind,
        l.our_id,
        l.channel_serial,
        l.payment_channel_serial,
        l.order_id,
        l.refund_id,
        l.amount_fen,
        l.fee_fen,
        l.status,
        l.txn_at,
        l.payer_account,
        l.remark,
        l.file_version_id,
        l.line_no,
        l.file_status,
        r.format,
        r.merchant_key,
        r.version_no,
        r.known_on as version_known_on,
        r.next_known_on
    from {{ ref('int_recon__trade_bill_lines') }} as l
    inner join reissued as r on l.file_version_id = r.file_version_id
),

occurrences as (
    select
        *,
        row_number() over (partition by file_version_id, {{ content | join(', ') }} order by line_no)
            as content_occurrence,
        row_number() over (partition by file_version_id, row_kind, our_id order by line_no) as business_key_occurrence,
        count(*) over (partition by file_version_id, row_kind, channel_serial) as rows_with_duplicate_key
    from lines
),

-- consecutive versions listing the same line form one state (gaps and islands over version_no)
islands as (
    select
        *,
        version_no - row_number() over (
            partition by {{ (file_key + content) | join(', ') }}, content_occurrence order by version_no
        ) as island_no
    from occurrences
),

states as (
    select
        *,
        min(version_known_on) over (
            partition by {{ (file_key + content) | join(', ') }}, content_occurrence, island_no
        ) as state_known_on,
        max(version_no) over (
            partition by {{ (file_key + content) | join(', ') }}, content_occurrence, island_no
        ) as state_last_version_no
    from islands
),

ended as (
    select
        *,
        -- the next version after the state's last one no longer lists it
        max(case when version_no = state_last_version_no then next_known_on end) over (
            partition by {{ (file_key + content) | join(', ') }}, content_occurrence, island_no
        ) as superseded_on,
        'trade|' || row_kind || ':' || our_id || case
            when business_key_occurrence > 1 then '#' || cast(business_key_occurrence as {{ dbt.type_string() }})
            else ''
        end as recon_key
    from states
),

-- a state superseded on the day it became visible (two versions delivered the same day) was never seen by any build
visible as (
    select
        *,
        superseded_on is null or state_known_on < superseded_on as is_visible
    from ended
),

named as (
    select
        *,
        min(case when is_visible then state_known_on end) over (partition by recon_key) as recon_key_first_known_on
    from visible
)

select
    file_version_id || '#' || cast(line_no as {{ dbt.type_string() }}) as channel_line_id,
    recon_key,
    case
        when state_known_on = recon_key_first_known_on then ''
        else '@' || replace(cast(state_known_on as {{ dbt.type_string() }}), '-', '')
    end as state_suffix,
    state_known_on,
    superseded_on,
    is_visible,
    file_status = 'current' as is_current,
    -- the line that ends its state: the one a superseded state's entries are traced to
    version_no = state_last_version_no as is_state_last_version,
    channel,
    source_format,
    format,
    merchant_key,
    version_no,
    channel_merchant_id,
    bill_date,
    row_kind,
    our_id,
    channel_serial,
    order_id,
    refund_id,
    amount_fen,
    fee_fen,
    status,
    txn_at,
    row_kind || ':' || our_id as match_key,
    business_key_occurrence,
    rows_with_duplicate_key,
    file_version_id,
    line_no
from named
