/*
    The double-entry journal: one row per leg. Every money movement Tally knows is a journal whose debits equal its
    credits (INV-17). A journal is made of movements, each one amount from one account to another (two legs):
    - CLR (a cleared trade line): the channel owes us the amount and we owe the merchant it; the merchant pays our
      fee; the channel's cost reduces what it owes us. A refund's negative amounts run the same movements backwards.
    - BRK (a channel line that moved money but did not clear: a break or a line in suspense): the channel owes us its
      net all the same (it settles its own bill); the money waits in unreconciled channel funds (挂账).
    - OPN: the bank account's balance before the first statement Tally has, from that statement.
    - Every line of our bank statement moves the bank account: STL a channel settlement (out of the channel
      receivable), PDB a payout leaving (out of payouts in transit), PRT a payout returned (退票, back to the
      merchant), RCG an offline recharge (to the merchant's prepaid balance); a line that did not reconcile goes to
      unreconciled funds instead.
    - PFZ freezes a payout's amount when we request it (merchant payable -> payouts in transit); PFL unfreezes it
      when it fails.
    Amounts are positive fen with a side; `source_*` columns give each leg's lineage to the fact and file line.
*/
with

facts as (
    select * from {{ ref('hist_recon_results') }}
),

cleared as (
    select * from {{ ref('fct_cleared_lines') }}
),

statement_lines as (
    select * from facts
    where recon_stream = 'bank_statement' and channel_line_id is not null
),

opening as (
    select
        s.statement_date,
        s.balance_fen - s.amount_fen as opening_fen,
        s.file_version_id,
        s.line_no,
        row_number() over (order by s.statement_date, s.line_no) as n
    from {{ ref('stg_bank__statement_lines') }} as s
),

payout_events as (
    select
        *,
        row_number() over (partition by payout_id order by bill_date, internal_txn_at, internal_line_no) as n
    from facts
    where recon_stream = 'payout_result' and internal_record_id is not null
),

-- one row per movement: `amount_fen` goes from credit_account to debit_account (negative runs it backwards)
movements as (
    select
        'CLR:' || recon_key as journal_id,
        'clearing' as journal_type,
        cleared_on as posted_on,
        1 as movement_no,
        '1122' as debit_account,
        channel as debit_sub,
        '2202' as credit_account,
        merchant_id as credit_sub,
        amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        bill_date as channel_bill_date,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from cleared
    union all
    select
        'CLR:' || recon_key as journal_id,
        'clearing' as journal_type,
        cleared_on as posted_on,
        2 as movement_no,
        '2202' as debit_account,
        merchant_id as debit_sub,
        '6001' as credit_account,
        channel as credit_sub,
        merchant_fee_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        bill_date as channel_bill_date,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from cleared
    union all
    select
        'CLR:' || recon_key as journal_id,
        'clearing' as journal_type,
        cleared_on as posted_on,
        3 as movement_no,
        '6401' as debit_account,
        channel as debit_sub,
        '1122' as credit_account,
        channel as credit_sub,
        channel_cost_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        bill_date as channel_bill_date,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from cleared
    union all
    select
        'BRK:' || recon_key as journal_id,
        'uncleared_channel_line' as journal_type,
        first_seen_on as posted_on,
        1 as movement_no,
        '1122' as debit_account,
        channel as debit_sub,
        '2241' as credit_account,
        channel as credit_sub,
        channel_amount_fen - coalesce(channel_fee_fen, 0) as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        bill_date as channel_bill_date,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from facts
    where
        recon_stream = 'trade' and channel_line_id is not null and channel_status = 'SUCCESS'
        and not (internal_record_id is not null and break_type in ('matched', 'fee_mismatch'))
    union all
    select
        'OPN:' || file_version_id as journal_id,
        'opening_balance' as journal_type,
        statement_date as posted_on,
        1 as movement_no,
        '1002' as debit_account,
        'settlement' as debit_sub,
        '3001' as credit_account,
        'settlement' as credit_sub,
        opening_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        cast(null as date) as channel_bill_date,
        'bank_statement|opening:' || file_version_id as source_recon_key,
        file_version_id as source_file_version_id,
        line_no as source_line_no
    from opening
    where n = 1
    union all
    -- every statement line moves the bank account; the other side depends on what it reconciled to
    select
        case
            when break_type <> 'matched' then 'UNR:'
            when row_kind = 'channel_settlement' then 'STL:'
            when row_kind = 'payout' then 'PDB:'
            when row_kind = 'payout_return' then 'PRT:'
            when row_kind = 'recharge' then 'RCG:'
            else 'UNR:'
        end || recon_key as journal_id,
        case
            when break_type <> 'matched' then 'unreconciled_bank_line'
            when row_kind = 'channel_settlement' then 'channel_settlement'
            when row_kind = 'payout' then 'payout_debit'
            when row_kind = 'payout_return' then 'payout_return'
            when row_kind = 'recharge' then 'recharge'
            else 'unreconciled_bank_line'
        end as journal_type,
        bill_date as posted_on,
        1 as movement_no,
        '1002' as debit_account,
        'settlement' as debit_sub,
        case
            when break_type <> 'matched' then '2241'
            when row_kind = 'channel_settlement' then '1122'
            when row_kind = 'payout' then '2203'
            when row_kind = 'payout_return' then '2202'
            when row_kind = 'recharge' then '2204'
            else '2241'
        end as credit_account,
        case
            when break_type <> 'matched' then 'bank'
            when row_kind = 'channel_settlement' then settled_channel
            else merchant_id
        end as credit_sub,
        -- credit - debit: a payout debit is negative and runs the movement backwards
        channel_amount_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        case when row_kind = 'channel_settlement' and break_type = 'matched' then settled_bill_date end
            as channel_bill_date,
        recon_key as source_recon_key,
        channel_file_version_id as source_file_version_id,
        channel_line_no as source_line_no
    from statement_lines
    union all
    select
        'PFZ:' || payout_id as journal_id,
        'payout_freeze' as journal_type,
        bill_date as posted_on,
        1 as movement_no,
        '2202' as debit_account,
        merchant_id as debit_sub,
        '2203' as credit_account,
        merchant_id as credit_sub,
        internal_amount_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        cast(null as date) as channel_bill_date,
        recon_key as source_recon_key,
        internal_file_version_id as source_file_version_id,
        internal_line_no as source_line_no
    from payout_events
    where n = 1
    union all
    select
        'PFL:' || payout_id as journal_id,
        'payout_failed' as journal_type,
        bill_date as posted_on,
        1 as movement_no,
        '2203' as debit_account,
        merchant_id as debit_sub,
        '2202' as credit_account,
        merchant_id as credit_sub,
        internal_amount_fen as amount_fen,
        -- the channel bill day a channel receivable leg belongs to (INV-20 ages it)
        cast(null as date) as channel_bill_date,
        recon_key as source_recon_key,
        internal_file_version_id as source_file_version_id,
        internal_line_no as source_line_no
    from payout_events
    where internal_status = 'FAILED'
),

legs as (
    select
        journal_id,
        journal_type,
        posted_on,
        2 * movement_no - 1 as leg_no,
        debit_account as account_code,
        debit_sub as sub_account,
        amount_fen as signed_fen,
        channel_bill_date,
        source_recon_key,
        source_file_version_id,
        source_line_no
    from movements
    union all
    select
        journal_id,
        journal_type,
        posted_on,
        2 * movement_no as leg_no,
        credit_account as account_code,
        credit_sub as sub_account,
        -amount_fen as signed_fen,
        channel_bill_date,
        source_recon_key,
        source_file_version_id,
        source_line_no
    from movements
)

select
    legs.journal_id,
    legs.journal_type,
    legs.posted_on,
    cast(legs.leg_no as integer) as leg_no,
    legs.account_code,
    accounts.account_name,
    legs.sub_account,
    case when legs.signed_fen > 0 then 'debit' else 'credit' end as side,
    case when legs.signed_fen > 0 then legs.signed_fen else 0 end as debit_fen,
    case when legs.signed_fen < 0 then -legs.signed_fen else 0 end as credit_fen,
    abs(legs.signed_fen) as amount_fen,
    'CNY' as currency,
    case when legs.account_code = '1122' then legs.channel_bill_date end as channel_bill_date,
    legs.source_recon_key,
    legs.source_file_version_id,
    legs.source_line_no
from legs
inner join {{ ref('chart_of_accounts') }} as accounts on legs.account_code = accounts.account_code
-- a movement of zero (no fee, no cost) moves nothing and is left out
where
    legs.signed_fen <> 0
    -- days moved to the history archive (tally archive) stay out of the hot table, also when it is rebuilt;
    -- hist_journal_lines reads them from the archive
    and legs.posted_on not in ({{ archived_partitions('fct_journal_lines') }})
