/*
    The double-entry journal: one row per leg. Every money movement Tally knows is a journal of two or more legs
    whose debits equal its credits (INV-17):
    - CLR (a cleared trade line): the channel owes us the amount and we owe the merchant it; the merchant pays
      our fee; the channel's cost reduces what it owes us. A refund runs the same legs the other way.
    - BRK (a channel line that moved money but did not clear: a break or a line in suspense): the channel owes us its
      net all the same (it settles its own bill), and the money waits in unreconciled channel funds (挂账).
    - STL (a channel settlement credit on our bank statement, reconciled): the bank account receives what the
      channel owed.
    Amounts are positive fen with a side; `source_*` columns give each leg's lineage to the fact and file line.
*/
with

cleared as (
    select * from {{ ref('fct_cleared_lines') }}
),

uncleared as (
    select * from {{ ref('fct_recon_results') }}
    where
        recon_stream = 'trade' and channel_line_id is not null and channel_status = 'SUCCESS'
        and not (internal_record_id is not null and break_type in ('matched', 'fee_mismatch'))
),

settlements as (
    select * from {{ ref('fct_recon_results') }}
    where
        recon_stream = 'bank_statement' and row_kind = 'channel_settlement' and channel_line_id is not null
        and internal_record_id is not null
),

-- signed postings: positive = debit, negative = credit
postings as (
    select
        'CLR:' || recon_key as journal_id,
        'clearing' as journal_type,
        cleared_on as posted_on,
        1 as leg_no,
        '1122' as account_code,
        channel as sub_account,
        amount_fen as signed_fen,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from cleared
    union all
    select
        'CLR:' || recon_key as journal_id,
        'clearing' as journal_type,
        cleared_on as posted_on,
        2 as leg_no,
        '2202' as account_code,
        merchant_id as sub_account,
        -amount_fen as signed_fen,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from cleared
    union all
    select
        'CLR:' || recon_key as journal_id,
        'clearing' as journal_type,
        cleared_on as posted_on,
        3 as leg_no,
        '2202' as account_code,
        merchant_id as sub_account,
        merchant_fee_fen as signed_fen,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from cleared
    union all
    select
        'CLR:' || recon_key as journal_id,
        'clearing' as journal_type,
        cleared_on as posted_on,
        4 as leg_no,
        '6001' as account_code,
        channel as sub_account,
        -merchant_fee_fen as signed_fen,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from cleared
    union all
    select
        'CLR:' || recon_key as journal_id,
        'clearing' as journal_type,
        cleared_on as posted_on,
        5 as leg_no,
        '6401' as account_code,
        channel as sub_account,
        channel_cost_fen as signed_fen,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from cleared
    union all
    select
        'CLR:' || recon_key as journal_id,
        'clearing' as journal_type,
        cleared_on as posted_on,
        6 as leg_no,
        '1122' as account_code,
        channel as sub_account,
        -channel_cost_fen as signed_fen,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from cleared
    union all
    select
        'BRK:' || recon_key as journal_id,
        'uncleared_channel_line' as journal_type,
        first_seen_on as posted_on,
        1 as leg_no,
        '1122' as account_code,
        channel as sub_account,
        channel_amount_fen - coalesce(channel_fee_fen, 0) as signed_fen,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from uncleared
    union all
    select
        'BRK:' || recon_key as journal_id,
        'uncleared_channel_line' as journal_type,
        first_seen_on as posted_on,
        2 as leg_no,
        '2241' as account_code,
        channel as sub_account,
        -(channel_amount_fen - coalesce(channel_fee_fen, 0)) as signed_fen,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from uncleared
    union all
    select
        'STL:' || recon_key as journal_id,
        'channel_settlement' as journal_type,
        bill_date as posted_on,
        1 as leg_no,
        '1002' as account_code,
        'settlement' as sub_account,
        channel_amount_fen as signed_fen,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from settlements
    union all
    select
        'STL:' || recon_key as journal_id,
        'channel_settlement' as journal_type,
        bill_date as posted_on,
        2 as leg_no,
        '1122' as account_code,
        settled_channel as sub_account,
        -channel_amount_fen as signed_fen,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from settlements
)

select
    postings.journal_id,
    postings.journal_type,
    postings.posted_on,
    postings.leg_no,
    postings.account_code,
    accounts.account_name,
    postings.sub_account,
    case when postings.signed_fen > 0 then 'debit' else 'credit' end as side,
    case when postings.signed_fen > 0 then postings.signed_fen else 0 end as debit_fen,
    case when postings.signed_fen < 0 then -postings.signed_fen else 0 end as credit_fen,
    abs(postings.signed_fen) as amount_fen,
    'CNY' as currency,
    postings.source_recon_key,
    postings.source_file_version_id,
    postings.source_line_no
from postings
inner join {{ ref('chart_of_accounts') }} as accounts on postings.account_code = accounts.account_code
-- a zero leg (no fee, no cost) moves nothing and is left out
where postings.signed_fen <> 0
