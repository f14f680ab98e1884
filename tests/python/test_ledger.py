"""Clearing, settlement and the double-entry ledger: fault injection for the clearing and ledger data tests
(INV-13..15, INV-17..22, INV-24 and the bank balance assertion), business checks on a clean closing build, and the
merchant clearing ground truth.

One anomaly-rich world is simulated, landed and built (models and seeds) once per module, as of its closing date. It
starts on 2024-02-08, so its clearing days run into the Spring Festival holiday (2024-02-10..17) and the T+N
settlement batches fall due across it, on the Sunday make-up workday 2024-02-18 and after. Every dbt run gets its own
target path and warehouse copy under pytest's tmp dirs; dbt's logs go to a tmp dir too.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from conftest import Build, closing_build, data_test_statuses, dbt_vars, query, recon_world_params
from tally.land import land
from tally.pipeline import PROJECT_DIR, dbt
from tally.score import score
from tally.simulate import merchant_directory
from tally.warehouse import connect as connect_warehouse

LEDGER_WORLD = dataclasses.replace(recon_world_params(1), start_date=dt.date(2024, 2, 8))
SEEDS_DIR = PROJECT_DIR / "seeds"
# the clearing and ledger data tests (INV-13..15, INV-17..22, INV-24); the generic tests of the marts' yml are not
# selected
SELECT = ["--select", "path:tests/dbt/clearing", "path:tests/dbt/ledger"]
# INV-13, INV-14, INV-15 (batches, lines cleared at most once, shortfalls carried forward), INV-17..INV-22 (INV-22 as
# two tests: traceability, and clearing journals adding up to their cleared lines), INV-24, the bank balance assertion
# and INV-20 for unreconciled funds (dispositions)
N_TESTS = 15


def _seed(name: str) -> list[dict[str, str]]:
    with open(SEEDS_DIR / f"{name}.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _business_days() -> dict[dt.date, bool]:
    """The business calendar seed, read here from the CSV (not from the warehouse)."""
    rows = _seed("business_calendar")
    return {dt.date.fromisoformat(r["calendar_date"]): r["is_business_day"] == "true" for r in rows}


def _rows(warehouse: Path, sql: str, params: list | None = None) -> list[dict]:
    con = connect_warehouse(warehouse)
    try:
        rel = con.execute(sql, params or [])
        cols = [d[0] for d in rel.description]
        return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def ledger_build(tmp_path_factory: pytest.TempPathFactory, dbt_logs_in_tmp) -> Build:
    """The world simulated, landed in full and built (models and seeds) as of its closing date. The data tests are
    not run by the build: the clearing and ledger ones run in the `untouched` fault-injection case."""
    return closing_build(tmp_path_factory.mktemp("ledger"), LEDGER_WORLD)


# ---------------------------------------------------------------------------------------------------------------
# 1. Fault injection: corrupt one row of a built table, run the clearing and ledger data tests (no rebuild)
# ---------------------------------------------------------------------------------------------------------------


def _journal(where: str) -> str:
    return f"(select min(journal_id) from main.fct_journal_lines where {where})"


def _cleared(where: str) -> str:
    return f"(select min(recon_key) from main.fct_cleared_lines where {where})"


# statement debits reconciled to a settlement payout (PDB): `{}` is what to select from them
_PAID_PAYOUTS = ("select {} from main.fct_recon_results where recon_stream = 'bank_statement' and row_kind = 'payout' "
                 "and break_type = 'matched' and recon_key in (select source_recon_key from main.fct_journal_lines "
                 "where journal_type = 'payout_debit')")



@dataclasses.dataclass(frozen=True)
class Corruption:
    sql: str  # must touch exactly `rows` rows
    fails: set[str]  # tests that must report fail (or error): no more, no fewer
    warns: set[str] = dataclasses.field(default_factory=set)  # tests of severity warn that must report warn
    rows: int = 1


# The built marts are tables: corrupting one does not change the tables derived from it (rpt_trial_balance,
# fct_account_balances_daily, fct_merchant_clearing_daily, fct_settlement_batches keep the values they were built
# with), so a test comparing a table with the one it was derived from fails along with the invariant itself.
CORRUPTIONS = {
    "untouched": Corruption("", set()),
    # INV-17: a clearing journal's receivable leg one fen too big; its balance rows no longer match the journal, and
    # it no longer adds up to its cleared lines (INV-22)
    "journal_leg_amount_changed": Corruption(
        "update main.fct_journal_lines set debit_fen = debit_fen + 1, amount_fen = amount_fen + 1 "
        "where leg_no = 1 and journal_id = " + _journal("journal_type = 'clearing' and leg_no = 1 and side = 'debit'"),
        {"assert_every_journal_balances", "assert_balances_equal_entries",
         "assert_clearing_journals_tie_to_cleared_lines"},
        # the receivable of that line's bill day no longer nets to zero either
        {"assert_channel_receivable_settles"},
    ),
    # INV-17: a settlement journal loses its receivable leg: one leg left, unbalanced
    "journal_leg_deleted": Corruption(
        "delete from main.fct_journal_lines where leg_no = 2 and journal_id = "
        + _journal("journal_type = 'channel_settlement'"),
        {"assert_every_journal_balances", "assert_balances_equal_entries"},
        {"assert_channel_receivable_settles"},
    ),
    # a clearing journal's fee revenue leg booked to an account the chart does not know: the journal still balances,
    # so the fee revenue balance drifts from its entries (the chart relationship test of the model's yml is not
    # selected), and the journal's fee revenue no longer adds up to its cleared lines' fees (INV-22)
    "journal_leg_unknown_account": Corruption(
        "update main.fct_journal_lines set account_code = '9999' "
        "where account_code = '6001' and journal_id = "
        + _journal("journal_type = 'clearing' and account_code = '6001'"),
        {"assert_balances_equal_entries", "assert_clearing_journals_tie_to_cleared_lines"},
    ),
    # INV-18: one day's debits in the trial balance one fen off
    "trial_balance_day_changed": Corruption(
        "update main.rpt_trial_balance set debit_fen = debit_fen + 1 "
        "where posted_on = (select min(posted_on) from main.rpt_trial_balance)",
        {"assert_trial_balance"},
    ),
    # INV-19: a stored closing balance drifts from the journal
    "balance_drifted": Corruption(
        "update main.fct_account_balances_daily set closing_balance_fen = closing_balance_fen + 1 "
        "where account_code = '6001' and sub_account = 'alipay' and balance_date = (select min(balance_date) "
        "from main.fct_account_balances_daily where account_code = '6001' and sub_account = 'alipay')",
        {"assert_balances_equal_entries"},
    ),
    # INV-21: a merchant payable closing a day below zero (and no longer the sum of its entries)
    "merchant_payable_negative": Corruption(
        "update main.fct_account_balances_daily set closing_balance_fen = -closing_balance_fen "
        "where account_code = '2202' and sub_account = 'M0001' and balance_date = (select min(balance_date) "
        "from main.fct_account_balances_daily where account_code = '2202' and sub_account = 'M0001')",
        {"assert_no_negative_balances_where_forbidden", "assert_balances_equal_entries"},
    ),
    # INV-20 (warn): a channel never settled one bill day: that day's settlement journal is gone, so the day's
    # receivable stays open past the window (and the statement line has no journal: INV-22; the stored balances
    # still include it: INV-19)
    "bill_day_never_settled": Corruption(
        "delete from main.fct_journal_lines where journal_id = " + _journal("journal_type = 'channel_settlement'"),
        {"assert_balances_equal_entries", "assert_journals_trace_to_sources"}, {"assert_channel_receivable_settles"},
        rows=2,  # both legs
    ),
    # INV-20 (warn): a settlement booked against the wrong bill day: both days stay open, nothing else changes
    "settlement_booked_to_wrong_day": Corruption(
        "update main.fct_journal_lines set channel_bill_date = channel_bill_date - 1 "
        "where account_code = '1122' and journal_id = " + _journal("journal_type = 'channel_settlement'"),
        set(), {"assert_channel_receivable_settles"},
    ),
    # INV-22: the legs of one journal point at different facts (a settlement's receivable leg at a recharge)
    "journal_legs_mixed_sources": Corruption(
        "update main.fct_journal_lines set source_recon_key = (select min(source_recon_key) "
        "from main.fct_journal_lines where journal_type = 'recharge') "
        "where leg_no = 2 and journal_id = " + _journal("journal_type = 'channel_settlement'"),
        {"assert_journals_trace_to_sources"},
    ),
    # the bank balance assertion: the ledger's bank account off the statement's printed balance on the last day
    "bank_balance_drifted": Corruption(
        "update main.fct_account_balances_daily set closing_balance_fen = closing_balance_fen + 1 "
        "where account_code = '1002' and balance_date = (select max(balance_date) "
        "from main.fct_account_balances_daily where account_code = '1002')",
        {"assert_bank_account_agrees_with_statement", "assert_balances_equal_entries"},
    ),
    # INV-22: a settlement journal's leg points at a fact that does not exist
    "journal_source_points_nowhere": Corruption(
        "update main.fct_journal_lines set source_recon_key = 'bank_statement|bank_serial:NOWHERE' "
        "where leg_no = 1 and journal_id = " + _journal("journal_type = 'channel_settlement'"),
        {"assert_journals_trace_to_sources"},
    ),
    # INV-22: a cleared line whose journal was never posted: the line names a journal that does not exist, and the
    # journal it was posted in no longer adds up to its lines
    "cleared_line_without_journal": Corruption(
        "update main.fct_cleared_lines set journal_id = journal_id || ':unposted' "
        "where recon_key = " + _cleared("row_kind = 'payment'"),
        {"assert_journals_trace_to_sources", "assert_clearing_journals_tie_to_cleared_lines"},
    ),
    # INV-22: a clearing journal lost: its cleared lines have no journal; the stored balances still include it, and
    # the channel receivable of its bill day no longer returns to zero
    "clearing_journal_missing": Corruption(
        "delete from main.fct_journal_lines where journal_id = "
        + _journal("journal_type = 'clearing' and account_code = '6401'"),
        {"assert_journals_trace_to_sources", "assert_clearing_journals_tie_to_cleared_lines",
         "assert_balances_equal_entries"},
        {"assert_channel_receivable_settles"},
        rows=6,  # three movements: amount, our fee, the channel's cost
    ),
    # INV-13: a payment's merchant fee off the plan by a fen; its batch no longer adds up either (INV-15), nor does
    # its clearing journal (INV-22)
    "cleared_fee_changed": Corruption(
        "update main.fct_cleared_lines set merchant_fee_fen = merchant_fee_fen + 1 "
        "where recon_key = " + _cleared("row_kind = 'payment'"),
        {"assert_merchant_fees_follow_fee_plans", "assert_each_cleared_line_in_one_batch",
         "assert_clearing_journals_tie_to_cleared_lines"},
    ),
    # INV-13: a refund gives back a fen too much fee; its batch and its clearing journal no longer add up either
    "refund_fee_back_changed": Corruption(
        "update main.fct_cleared_lines set merchant_fee_fen = merchant_fee_fen - 1 "
        "where recon_key = " + _cleared("row_kind = 'refund'"),
        {"assert_merchant_fees_follow_fee_plans", "assert_each_cleared_line_in_one_batch",
         "assert_clearing_journals_tie_to_cleared_lines"},
    ),
    # INV-14: a merchant's daily net is not gross - refunds - fees
    "merchant_net_changed": Corruption(
        "update main.fct_merchant_clearing_daily set net_fen = net_fen + 1 "
        "where settlement_batch_id = (select min(settlement_batch_id) from main.fct_merchant_clearing_daily)",
        {"assert_clearing_identity"},
    ),
    # INV-21: a merchant's prepaid balance (2204) closing a day below zero (and no longer the sum of its entries)
    "prepaid_balance_negative": Corruption(
        "update main.fct_account_balances_daily set closing_balance_fen = -closing_balance_fen - 1 "
        "where account_code = '2204' and sub_account = 'M0001' and balance_date = (select min(balance_date) "
        "from main.fct_account_balances_daily where account_code = '2204' and sub_account = 'M0001')",
        {"assert_no_negative_balances_where_forbidden", "assert_balances_equal_entries"},
    ),
    # INV-22: an online recharge reconciled but never booked to the prepaid balance: the fact has no journal, the
    # stored balances still include it, and the channel receivable of its bill day no longer returns to zero
    "online_recharge_without_journal": Corruption(
        "delete from main.fct_journal_lines where journal_id = "
        + _journal("journal_type = 'online_recharge' and account_code = '6401'"),
        {"assert_journals_trace_to_sources", "assert_balances_equal_entries"}, {"assert_channel_receivable_settles"},
        rows=4,  # two movements: the recharge and the channel's cost
    ),
    # INV-22: a withdrawal whose freeze was never booked; the bank's debit (or the unfreeze) then resolves a freeze
    # that does not exist (INV-24)
    "withdrawal_freeze_missing": Corruption(
        "delete from main.fct_journal_lines where journal_id = " + _journal("journal_type = 'withdrawal_freeze'"),
        {"assert_journals_trace_to_sources", "assert_balances_equal_entries", "assert_freezes_resolve_at_most_once"},
        rows=2,
    ),
    # INV-22: a withdrawal the bank refused but whose balance was never unfrozen
    "withdrawal_failure_not_unfrozen": Corruption(
        "delete from main.fct_journal_lines where journal_id = " + _journal("journal_type = 'withdrawal_failed'"),
        {"assert_journals_trace_to_sources", "assert_balances_equal_entries"},
        rows=2,
    ),
    # INV-24: our statement's debit for one settlement payout is traced to another payout (a mis-paired bank line):
    # that payout is now debited twice, resolved more than once; the journal itself is untouched
    "payout_resolved_twice": Corruption(
        "update main.fct_recon_results set payout_id = (" + _PAID_PAYOUTS.format("max(payout_id)") + ") "
        "where recon_key = (" + _PAID_PAYOUTS.format("min(recon_key)") + " and payout_id <> ("
        + _PAID_PAYOUTS.format("max(payout_id)") + "))",
        {"assert_freezes_resolve_at_most_once"},
    ),
    # INV-15 (never twice): a cleared payment cleared again under a new id while its first clearing stands; its batch
    # and its clearing journal no longer add up either
    "line_cleared_twice": Corruption(
        "insert into main.fct_cleared_lines select * replace (cleared_line_id || '@20240301' as cleared_line_id) "
        "from main.fct_cleared_lines where cleared_line_id = " + _cleared("row_kind = 'payment'").replace(
            "min(recon_key)", "min(cleared_line_id)"),
        {"assert_lines_clear_at_most_once", "assert_each_cleared_line_in_one_batch",
         "assert_clearing_journals_tie_to_cleared_lines"},
    ),
    # INV-15 (never twice) without a key: two cleared payments lost the fact they clear. Compared with each other as
    # one fact, the second cleared while the first was still cleared
    "cleared_lines_without_fact": Corruption(
        "update main.fct_cleared_lines set recon_key = null where cleared_line_id in (select cleared_line_id "
        "from main.fct_cleared_lines where entry_kind = 'clearing' and row_kind = 'payment' "
        "order by cleared_line_id limit 2)",
        {"assert_lines_clear_at_most_once"},  # not_null on the key reports it too, outside this selection
        rows=2,
    ),
    # INV-15 (carry): a batch pays a fen more than its net and what it carried in allow
    "batch_pays_past_its_carry": Corruption(
        "update main.fct_settlement_batches set payable_fen = payable_fen + 1 "
        "where settlement_batch_id = (select min(settlement_batch_id) from main.fct_settlement_batches)",
        {"assert_batches_carry_shortfalls_forward"},
    ),
    # INV-15: a cleared line moved into another merchant's batch: both batches' counts and amounts are off
    "cleared_line_moved_batch": Corruption(
        "update main.fct_cleared_lines set settlement_batch_id = (select max(settlement_batch_id) "
        "from main.fct_settlement_batches) "
        "where recon_key = " + _cleared("merchant_id = 'M0001'"),
        {"assert_each_cleared_line_in_one_batch"},
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_clearing_and_ledger_invariants_catch_corrupted_tables(ledger_build: Build, tmp_path: Path, case: str):
    """Failures are the tests reporting `fail` or `error`; INV-20 has severity warn and reports `warn` when it finds
    rows (dbt then exits 0), so warnings are asserted separately."""
    c = CORRUPTIONS[case]
    b = ledger_build.copy(tmp_path / "warehouse")
    if c.sql:
        con = connect_warehouse(b.warehouse, read_only=False)
        try:
            assert con.execute(c.sql).fetchall() == [(c.rows,)], f"the corruption must touch exactly {c.rows} row(s)"
        finally:
            con.close()
    target = tmp_path / "target"
    args = ["test", *SELECT, *dbt_vars(b.as_of)]
    if c.fails:
        with pytest.raises(RuntimeError):
            dbt(args, b.data, b.warehouse, target_path=target, quiet=True)
    else:
        dbt(args, b.data, b.warehouse, target_path=target, quiet=True)
    statuses = data_test_statuses(target)
    assert len(statuses) == N_TESTS, sorted(statuses)
    assert set(statuses.values()) <= {"pass", "warn", "fail", "error"}
    assert {t for t, s in statuses.items() if s in ("fail", "error")} == c.fails
    assert {t for t, s in statuses.items() if s == "warn"} == c.warns


# ---------------------------------------------------------------------------------------------------------------
# 2. Business checks on the clean closing build, computed here from the built tables and the seeds' CSVs
# ---------------------------------------------------------------------------------------------------------------


def _balances_at(warehouse: Path, account: str, as_of: dt.date) -> dict[str, int]:
    """Sub-account -> the account's balance at as_of: its last closing balance on or before that day."""
    rows = query(warehouse, """select sub_account, balance_date, closing_balance_fen
                               from main.fct_account_balances_daily
                               where account_code = ? and balance_date <= ?""", [account, as_of])
    last: dict[str, tuple[dt.date, int]] = {}
    for sub, day, bal in rows:
        if sub not in last or day > last[sub][0]:
            last[sub] = (day, bal)
    return {sub: bal for sub, (_, bal) in last.items()}


def _legs_net(warehouse: Path, account: str, as_of: dt.date) -> dict[str, int]:
    """Sub-account -> debits minus credits of the account's journal legs up to as_of."""
    net: dict[str, int] = collections.defaultdict(int)
    for sub, debit, credit in query(warehouse, """select sub_account, debit_fen, credit_fen from main.fct_journal_lines
                                                  where account_code = ? and posted_on <= ?""", [account, as_of]):
        net[sub] += debit - credit
    return dict(net)


def _settlement_credits(warehouse: Path) -> list[dict]:
    """Our bank statement's credits from the channels' settlement accounts (seed settlement_payer_accounts)."""
    payers = {r["payer_account"]: r["channel"] for r in _seed("settlement_payer_accounts")}
    rows = _rows(warehouse, """select bank_serial, statement_date, credit_fen, debit_fen, counterparty_account
                               from main_staging.stg_bank__statement_lines""")
    out = [dict(r, channel=payers[r["counterparty_account"]]) for r in rows if r["counterparty_account"] in payers]
    assert out and all(r["debit_fen"] == 0 and r["credit_fen"] > 0 for r in out)
    return out


def test_channel_receivable_closes_at_zero_per_channel(ledger_build: Build):
    b = ledger_build
    # what each channel's own bills say it owes us (amount less its fee, lines it lists as done) ...
    owed: dict[str, int] = collections.defaultdict(int)
    for channel, amount, fee in query(b.warehouse, """select channel, amount_fen, fee_fen
                                                      from main_intermediate.int_recon__channel_lines
                                                      where recon_stream = 'trade' and status = 'SUCCESS'"""):
        owed[channel] += amount - (fee or 0)
    # ... and what it paid into our bank account
    paid: dict[str, int] = collections.defaultdict(int)
    for r in _settlement_credits(b.warehouse):
        paid[r["channel"]] += r["credit_fen"]
    assert set(owed) == set(paid) == {"wechat", "alipay", "unionpay"}
    assert {ch: owed[ch] - paid[ch] for ch in owed} == dict.fromkeys(owed, 0)
    # the ledger's transit account agrees: back to zero per channel, by its stored balance and by its legs
    assert _balances_at(b.warehouse, "1122", b.as_of) == dict.fromkeys(owed, 0)
    assert _legs_net(b.warehouse, "1122", b.as_of) == dict.fromkeys(owed, 0)
    # and it was not zero all along: it carried what a channel owed until the settlement arrived
    assert query(b.warehouse, """select count(*) from main.fct_account_balances_daily
                                 where account_code = '1122' and closing_balance_fen <> 0""")[0][0] > 0


def test_bank_account_holds_the_reconciled_settlement_credits_and_the_statement_balance(ledger_build: Build):
    """The bank account (1002) books every line of our statement, from the opening balance on: what the channel
    settlement journals put in it is exactly the reconciled settlement credits, and its balance at the end of each
    statement day is what the bank printed on that day's last line."""
    b = ledger_build
    credits = _settlement_credits(b.warehouse)
    reconciled = {r["channel_serial"]: r for r in _rows(b.warehouse, """
        select channel_serial, channel_amount_fen, bill_date, settled_channel from main.fct_recon_results
        where recon_stream = 'bank_statement' and row_kind = 'channel_settlement' and break_type = 'matched'""")}
    # in this world every channel settlement credit on the statement is reconciled, to the fen and channel
    assert {r["bank_serial"] for r in credits} == set(reconciled)
    for r in credits:
        f = reconciled[r["bank_serial"]]
        assert (f["channel_amount_fen"], f["bill_date"], f["settled_channel"]) == (
            r["credit_fen"], r["statement_date"], r["channel"])
    total = sum(f["channel_amount_fen"] for f in reconciled.values())
    assert total > 0
    received: dict[str, int] = collections.defaultdict(int)
    for journal_id, account, sub, debit, credit in query(b.warehouse, """
            select journal_id, account_code, sub_account, debit_fen, credit_fen from main.fct_journal_lines
            where journal_type = 'channel_settlement'"""):
        assert journal_id.startswith("STL:")
        received[account if account == "1002" else f"{account}:{sub}"] += debit - credit
    per_channel = collections.Counter()
    for r in credits:
        per_channel[r["channel"]] += r["credit_fen"]
    assert dict(received) == {"1002": total, **{f"1122:{ch}": -fen for ch, fen in per_channel.items()}}

    # the whole statement, line by line: opening balance plus every line's amount, and the printed balances
    lines = _rows(b.warehouse, """select statement_date, line_no, credit_fen, debit_fen, balance_fen
                                  from main_staging.stg_bank__statement_lines order by statement_date, line_no""")
    balance = lines[0]["balance_fen"] - lines[0]["credit_fen"] + lines[0]["debit_fen"]
    day_end: dict[dt.date, int] = {}
    for line in lines:
        balance += line["credit_fen"] - line["debit_fen"]
        assert balance == line["balance_fen"], line
        day_end[line["statement_date"]] = balance
    ledger = dict(query(b.warehouse, """select balance_date, closing_balance_fen from main.fct_account_balances_daily
                                        where account_code = '1002' and sub_account = 'settlement'"""))
    assert ledger == day_end
    assert _balances_at(b.warehouse, "1002", b.as_of) == {"settlement": balance}
    assert _legs_net(b.warehouse, "1002", b.as_of) == {"settlement": balance}


def test_merchant_payable_is_the_settlement_batches_not_yet_paid(ledger_build: Build):
    """The merchant payable (2202) is credited with each batch's lines and debited when a payout goes out (frozen in
    2203 until the bank confirms; a failed or returned payout puts it back): per merchant, what is payable plus what
    is in transit is what the batches pay less what their payouts paid. A shortfall a negative batch carries forward
    is owed by the merchant (1123), not a negative payable."""
    b = ledger_build
    payable = _balances_at(b.warehouse, "2202", b.as_of)
    in_transit = _balances_at(b.warehouse, "2203", b.as_of)
    owed = _balances_at(b.warehouse, "1123", b.as_of)
    net: dict[str, int] = collections.defaultdict(int)
    amount: dict[str, int] = collections.defaultdict(int)
    paid: dict[str, int] = collections.defaultdict(int)
    for merchant, fen, payable_fen, paid_fen in query(
            b.warehouse, "select merchant_id, amount_fen, payable_fen, paid_fen from main.fct_settlement_batches"):
        net[merchant] += fen
        amount[merchant] += payable_fen
        paid[merchant] += paid_fen
    merchants = {m["merchant_id"] for m in merchant_directory(LEDGER_WORLD.merchants)}
    assert set(payable) == set(amount) == merchants
    assert set(in_transit.values()) <= {0}, "at the closing date every payout has its final result"
    assert sum(paid.values()) > 0, "no batch was paid in this world: the payout side is not exercised"
    assert sum(payable.values()) == sum(amount.values()) - sum(paid.values())
    assert payable == {m: amount[m] - paid[m] for m in merchants}
    assert {m: payable[m] - owed.get(m, 0) for m in merchants} == {m: net[m] - paid[m] for m in merchants}
    # what the simulator computed each merchant is owed and was paid, independently of the warehouse
    truth = collections.Counter()
    with open(b.world / "ground_truth" / "merchant_clearing.csv", encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            truth[r["merchant_id"]] += int(r["net_fen"])
    with open(b.world / "ground_truth" / "settlement_batches.csv", encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            truth[r["merchant_id"]] -= int(r["paid_fen"])
    assert {m: payable[m] - owed.get(m, 0) for m in merchants} == dict(truth)


def test_settlement_batches_fall_due_n_business_days_after_clearing(ledger_build: Build):
    b = ledger_build
    calendar = _business_days()
    cycle = {r["merchant_id"]: int(r["settlement_cycle_days"]) for r in _seed("merchants")}
    batches = _rows(b.warehouse, "select settlement_batch_id, merchant_id, cleared_on, due_on, batch_status "
                                 "from main.fct_settlement_batches order by settlement_batch_id")
    assert len(batches) == LEDGER_WORLD.merchants * LEDGER_WORLD.days
    for batch in batches:
        cleared_on, due_on = batch["cleared_on"], batch["due_on"]
        assert due_on is not None and calendar[due_on], batch
        days = [cleared_on + dt.timedelta(days=i) for i in range(1, (due_on - cleared_on).days + 1)]
        assert sum(calendar[d] for d in days) == cycle[batch["merchant_id"]], batch
    due = {(r["merchant_id"], r["cleared_on"]): r["due_on"] for r in batches}
    # the holiday in the dates: T+1 from Friday 2024-02-09 is the make-up Sunday after the Spring Festival, T+2
    # the Monday after it; a line cleared on the holiday Saturday is due then as well
    assert due["M0001", dt.date(2024, 2, 9)] == dt.date(2024, 2, 18)
    assert due["M0002", dt.date(2024, 2, 9)] == dt.date(2024, 2, 19)
    assert due["M0003", dt.date(2024, 2, 10)] == dt.date(2024, 2, 18)
    assert due["M0001", dt.date(2024, 2, 8)] == dt.date(2024, 2, 9)
    # as of the closing date (2024-02-18) the T+2 batches due on the 19th are still to come
    assert b.as_of == dt.date(2024, 2, 18)
    status = {(r["merchant_id"], r["cleared_on"]): r["batch_status"] for r in batches}
    assert status["M0002", dt.date(2024, 2, 9)] == "scheduled" and status["M0001", dt.date(2024, 2, 9)] == "due"


# The State Council's 2024 schedule (国办发明电〔2023〕7号): days off, and the weekend days worked instead (调休).
HOLIDAYS_2024 = [
    ("2024-01-01", "2024-01-01"), ("2024-02-10", "2024-02-17"), ("2024-04-04", "2024-04-06"),
    ("2024-05-01", "2024-05-05"), ("2024-06-10", "2024-06-10"), ("2024-09-15", "2024-09-17"),
    ("2024-10-01", "2024-10-07"),
]
MAKEUP_WORKDAYS_2024 = ["2024-02-04", "2024-02-18", "2024-04-07", "2024-04-28", "2024-05-11", "2024-09-14",
                        "2024-09-29", "2024-10-12"]


def test_business_calendar_has_the_2024_holidays_and_makeup_workdays(ledger_build: Build):
    calendar = _business_days()
    assert calendar[dt.date(2024, 2, 12)] is False  # Spring Festival
    assert calendar[dt.date(2024, 2, 18)] is True and dt.date(2024, 2, 18).weekday() == 6  # a Sunday, worked
    holidays = {dt.date.fromisoformat(a) + dt.timedelta(days=i) for a, z in HOLIDAYS_2024
                for i in range((dt.date.fromisoformat(z) - dt.date.fromisoformat(a)).days + 1)}
    makeup = {dt.date.fromisoformat(d) for d in MAKEUP_WORKDAYS_2024}
    days_2024 = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(366)]
    assert set(days_2024) <= set(calendar), "the calendar must cover every day of 2024"
    expected = {d: d in makeup or (d.weekday() < 5 and d not in holidays) for d in days_2024}
    assert {d: calendar[d] for d in days_2024} == expected
    assert sum(expected.values()) == 251  # 2024 had 251 working days
    # the calendar has no gaps to the end, and the warehouse's seed table is this CSV
    first, last = min(calendar), max(calendar)
    assert len(calendar) == (last - first).days + 1 and last >= dt.date(2025, 12, 31)
    built = dict(query(ledger_build.warehouse,
                       "select calendar_date, is_business_day from main_seeds.business_calendar"))
    assert built == calendar


# ---------------------------------------------------------------------------------------------------------------
# 3. The merchant clearing against the simulator's ground truth
# ---------------------------------------------------------------------------------------------------------------


def test_clearing_matches_ground_truth_for_every_merchant(ledger_build: Build):
    s = score(ledger_build.world, ledger_build.warehouse)
    merchants = [m["merchant_id"] for m in merchant_directory(LEDGER_WORLD.merchants)]
    assert sorted(m for m, _, _ in s.clearing) == merchants
    assert all(w is not None and t[0] > 0 for _, t, w in s.clearing), s.clearing
    assert s.clearing_misses == [], s.report()
    assert s.perfect, s.report()


def _copy_world(world: Path, dest: Path) -> Path:
    """The parts of a world score() reads: world.json and the ground truth."""
    dest.mkdir(parents=True)
    shutil.copyfile(world / "world.json", dest / "world.json")
    shutil.copytree(world / "ground_truth", dest / "ground_truth")
    return dest


@pytest.mark.parametrize("side", ["warehouse", "ground_truth"])
def test_clearing_score_catches_a_difference_of_one_fen(ledger_build: Build, tmp_path: Path, side: str):
    world, warehouse = ledger_build.world, ledger_build.warehouse
    if side == "warehouse":
        # M0002's fees of one clearing day a fen higher, its net a fen lower
        warehouse = ledger_build.copy(tmp_path / "warehouse").warehouse
        con = connect_warehouse(warehouse, read_only=False)
        try:
            assert con.execute(
                """update main.fct_merchant_clearing_daily set merchant_fee_fen = merchant_fee_fen + 1,
                   net_fen = net_fen - 1 where merchant_id = 'M0002'
                   and cleared_on = (select min(cleared_on) from main.fct_merchant_clearing_daily)"""
            ).fetchall() == [(1,)]
        finally:
            con.close()
    else:
        # the ground truth says M0002 grossed a fen more (and nets a fen more)
        world = _copy_world(world, tmp_path / "world")
        path = world / "ground_truth" / "merchant_clearing.csv"
        lines = path.read_text(encoding="utf-8").splitlines()
        cols = lines[0].split(",")
        for i, line in enumerate(lines[1:], 1):
            values = line.split(",")
            if values[0] == "M0002":
                for col in ("gross_fen", "net_fen"):
                    values[cols.index(col)] = str(int(values[cols.index(col)]) + 1)
                lines[i] = ",".join(values)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    s = score(world, warehouse)
    assert [m for m, t, w in s.clearing if t != w] == ["M0002"]
    assert len(s.clearing_misses) == 1 and s.clearing_misses[0].startswith("clearing M0002: ")
    assert not s.perfect
    assert not s.misses and not s.false_breaks  # only the clearing moved


# ---------------------------------------------------------------------------------------------------------------
# 4. Account system events: online recharges and withdrawals move the prepaid balance (2204)
# ---------------------------------------------------------------------------------------------------------------


def _journal_legs(warehouse: Path, where: str) -> dict[str, list[tuple]]:
    """journal_id -> its legs as (account, sub-account, debit, credit), for the journals the filter selects."""
    out: dict[str, list[tuple]] = collections.defaultdict(list)
    for jid, account, sub, debit, credit in query(warehouse, f"""
            select journal_id, account_code, sub_account, debit_fen, credit_fen from main.fct_journal_lines
            where {where} order by journal_id, leg_no"""):
        out[jid].append((account, sub, debit, credit))
    return dict(out)


def test_online_recharges_credit_the_prepaid_balance_and_do_not_clear(ledger_build: Build):
    b = ledger_build
    recharges = {r["order_id"]: r for r in _rows(b.warehouse, """
        select order_id, merchant_id, channel, amount_fen from main_staging.stg_internal__payments
        where biz_type = 'RECHARGE'""")}
    assert recharges, "the world has no online recharge"
    facts = {r["recon_key"]: r for r in _rows(b.warehouse, """
        select recon_key, order_id, break_type, channel_fee_fen from main.fct_recon_results
        where recon_stream = 'trade' and row_kind = 'payment'""") if r["order_id"] in recharges}
    # reconciled against the channel's bill line by the same cascade, and none of them clears
    assert {f["break_type"] for f in facts.values()} <= {"matched", "fee_mismatch"}
    assert not query(b.warehouse, "select recon_key from main.fct_cleared_lines where order_id in "
                                  f"({', '.join(repr(o) for o in recharges)})")
    # each one is an RCO journal: the channel owes us the amount, the merchant's prepaid balance gets it, the channel's
    # cost is ours; nothing goes to the merchant payable or fee revenue
    legs = _journal_legs(b.warehouse, "journal_type = 'online_recharge'")
    assert set(legs) == {f"RCO:{k}" for k in facts}
    for key, f in facts.items():
        r = recharges[f["order_id"]]
        want = [("1122", r["channel"], r["amount_fen"], 0), ("2204", r["merchant_id"], 0, r["amount_fen"])]
        if f["channel_fee_fen"]:
            want += [("6401", r["channel"], f["channel_fee_fen"], 0), ("1122", r["channel"], 0, f["channel_fee_fen"])]
        assert legs[f"RCO:{key}"] == want, key


def test_withdrawals_freeze_then_debit_unfreeze_or_return_and_never_overdraw(ledger_build: Build):
    b = ledger_build
    events = _rows(b.warehouse, """select payout_id, merchant_id, amount_fen, status, settlement_batch_id
                                   from main_staging.stg_internal__payout_events where biz_type = 'WITHDRAWAL'""")
    final: dict[str, str] = {}
    for e in events:
        assert e["settlement_batch_id"] is None
        final[e["payout_id"]] = "RETURNED" if "RETURNED" in (final.get(e["payout_id"]), e["status"]) else e["status"]
    assert {"SUCCESS", "FAILED", "RETURNED"} <= set(final.values()), final
    # withdrawals are not settlement payouts: no batch counts them as paid
    assert not query(b.warehouse, "select payout_id from main_intermediate.int_settlement__batch_payouts "
                                  f"where payout_id in ({', '.join(repr(p) for p in final)})")
    amount = {e["payout_id"]: (e["merchant_id"], e["amount_fen"]) for e in events}
    freezes = _journal_legs(b.warehouse, "journal_type = 'withdrawal_freeze'")
    assert set(freezes) == {f"WFZ:{p}" for p in final}
    for pid, (merchant, fen) in amount.items():
        assert freezes[f"WFZ:{pid}"] == [("2204", merchant, fen, 0), ("2203", merchant, 0, fen)]
    failed = _journal_legs(b.warehouse, "journal_type = 'withdrawal_failed'")
    assert {j.split(":")[1] for j in failed} == {p for p, s in final.items() if s == "FAILED"}
    for jid, legs in failed.items():
        merchant, fen = amount[jid.split(":")[1]]
        assert legs == [("2203", merchant, fen, 0), ("2204", merchant, 0, fen)]
    # the bank's debits and returns are journaled from our statement's lines
    debits = _journal_legs(b.warehouse, "journal_type = 'withdrawal_debit'")
    returns = _journal_legs(b.warehouse, "journal_type = 'withdrawal_return'")
    assert len(debits) == sum(s in ("SUCCESS", "RETURNED") for s in final.values())
    assert len(returns) == sum(s == "RETURNED" for s in final.values()) >= 1
    for legs in debits.values():
        assert [(a, d > 0) for a, _, d, _ in legs] == [("1002", False), ("2203", True)]
    for legs in returns.values():
        assert [(a, d > 0) for a, _, d, _ in legs] == [("1002", True), ("2204", False)]
    # nothing stays frozen once the bank has answered, and no merchant's prepaid balance ever closed a day below zero
    assert set(_balances_at(b.warehouse, "2203", b.as_of).values()) == {0}
    assert query(b.warehouse, "select min(closing_balance_fen) from main.fct_account_balances_daily "
                              "where account_code = '2204'")[0][0] >= 0
    # the prepaid balances agree with what the simulator credited and paid, per merchant, to the fen
    s = score(b.world, b.warehouse)
    assert s.prepaid and all(t == w for _, t, w in s.prepaid), s.report()
    assert sum(t[5] for _, t, _ in s.prepaid) > 0, "no withdrawal was paid in this world"


# ---------------------------------------------------------------------------------------------------------------
# 5. Disposition entries: an accepted disposition moves the break's money out of unreconciled funds (2241)
# ---------------------------------------------------------------------------------------------------------------

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DSP_SELECT = [*SELECT, "assert_dispositions_not_on_matched_facts"]


def _file_dispositions(root: Path, filed_on: dt.date, rows: list[tuple[str, str, dt.datetime]]) -> Path:
    """internal_dispositions_<date>.csv under root/<date>/internal, delivered an hour after the last decision."""
    d = root / filed_on.isoformat()
    path = d / "internal" / f"internal_dispositions_{filed_on:%Y%m%d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["recon_key,disposition,decided_by,decided_at,note"]
    lines += [f"{k},{disp},li.wei,{at:%Y-%m-%d %H:%M:%S},decided in a test" for k, disp, at in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stamp = (max(at for _, _, at in rows) + dt.timedelta(hours=1)).replace(tzinfo=SHANGHAI).timestamp()
    os.utime(path, (stamp, stamp))
    return d


def _held_in_2241(warehouse: Path) -> dict[str, int]:
    """recon_key -> what its legs hold in unreconciled funds (credits - debits), non-zero ones only."""
    held = collections.Counter()
    for key, debit, credit in query(warehouse, """select source_recon_key, debit_fen, credit_fen
                                                  from main.fct_journal_lines where account_code = '2241'"""):
        held[key] += credit - debit
    return {k: v for k, v in held.items() if v}


@pytest.fixture(scope="module")
def disposed_build(ledger_build: Build, tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, dict]:
    """The ledger world with one disposition file landed: for a 长款 trade line (refund by the original route), a
    duplicate channel row (ignore out of system: a write-off), an unclaimed bank credit (refund), a fee mismatch
    (chase funds) and an amount mismatch (manual review). Rebuilt from the dispositions on, data tests not run."""
    b = ledger_build
    facts = _rows(b.warehouse, """select recon_key, recon_stream, row_kind, break_type, recon_state, channel,
                                  channel_amount_fen, channel_fee_fen, fee_delta_fen from main.fct_recon_results
                                  where recon_state = 'break' order by recon_key""")

    def first(stream: str, break_type: str, row_kind: str | None = None) -> dict:
        return next(f for f in facts if f["recon_stream"] == stream and f["break_type"] == break_type
                    and row_kind in (None, f["row_kind"]) and f["channel_amount_fen"] is not None
                    and f["channel_amount_fen"] - (f["channel_fee_fen"] or 0) != 0)

    chosen = {
        "refund_original_route": first("trade", "channel_only"),
        "ignore_out_of_system": first("trade", "duplicate"),
        "chase_funds": first("trade", "fee_mismatch"),
        "manual_review": first("trade", "amount_mismatch"),
        "payout": first("bank_statement", "channel_only", "recharge"),
    }
    decided_at = dt.datetime.combine(b.as_of - dt.timedelta(days=1), dt.time(15, 0))
    src = _file_dispositions(tmp_path_factory.mktemp("dispositions"), decided_at.date(),
                             [(f["recon_key"], disp, decided_at) for disp, f in chosen.items()])
    root = tmp_path_factory.mktemp("disposed")
    shutil.copytree(b.data / "lake", root / "data" / "lake")
    assert [r.status for r in land([src], root / "data" / "lake", out=None)] == ["landed"]
    built = dataclasses.replace(b.copy(root / "warehouse"), data=root / "data")
    # the staging views are re-pointed at the copied lake (its file ledger now lists the disposition file); the
    # tables that do not depend on dispositions are as the closing build made them
    dbt(["run", "--select", "path:models/staging", "stg_internal__recon_dispositions+", *dbt_vars(b.as_of)],
        built.data, built.warehouse, target_path=root / "target", quiet=True)
    return built, chosen


def test_accepted_dispositions_move_the_breaks_money_out_of_unreconciled_funds(
    ledger_build: Build, disposed_build: tuple[Build, dict], tmp_path: Path
):
    b, chosen = disposed_build
    held_before = _held_in_2241(ledger_build.warehouse)
    held_after = _held_in_2241(b.warehouse)
    dsp = _journal_legs(b.warehouse, "journal_id like 'DSP:%'")
    decided_on = b.as_of - dt.timedelta(days=1)
    assert query(b.warehouse, "select distinct posted_on from main.fct_journal_lines where journal_id like 'DSP:%'"
                 ) == [(decided_on,)]

    # a 长款 trade line: what the channel paid us for it becomes a payable to the payer, to be refunded
    f = chosen["refund_original_route"]
    net = f["channel_amount_fen"] - (f["channel_fee_fen"] or 0)
    assert held_before[f["recon_key"]] == net
    assert dsp[f"DSP:{f['recon_key']}"] == [("2241", f["channel"], net, 0), ("2205", f["channel"], 0, net)]
    # an unclaimed bank credit, to be paid back by transfer: the bank line's money, held under 'bank'
    f = chosen["payout"]
    assert held_before[f["recon_key"]] == f["channel_amount_fen"] > 0
    assert dsp[f"DSP:{f['recon_key']}"] == [("2241", "bank", f["channel_amount_fen"], 0),
                                            ("2205", "bank", 0, f["channel_amount_fen"])]
    # a duplicate row nobody is owed: written off to non-operating income
    f = chosen["ignore_out_of_system"]
    net = f["channel_amount_fen"] - (f["channel_fee_fen"] or 0)
    assert held_before[f["recon_key"]] == net
    account = "6301" if net > 0 else "6711"
    assert dsp[f"DSP:{f['recon_key']}"] == ([("2241", f["channel"], net, 0), (account, f["channel"], 0, net)]
                                            if net > 0 else
                                            [("2241", f["channel"], 0, -net), (account, f["channel"], -net, 0)])
    # a fee over contract (the line cleared, nothing in 2241): the excess becomes a claim on the channel
    f = chosen["chase_funds"]
    assert f["recon_key"] not in held_before and f["fee_delta_fen"] > 0
    assert dsp[f"DSP:{f['recon_key']}"] == [("1221", f["channel"], f["fee_delta_fen"], 0),
                                            ("6401", f["channel"], 0, f["fee_delta_fen"])]
    # manual review moves nothing until someone decides
    f = chosen["manual_review"]
    assert f"DSP:{f['recon_key']}" not in dsp
    assert held_after[f["recon_key"]] == held_before[f["recon_key"]] != 0
    assert len(dsp) == 4

    # the disposed breaks hold nothing in 2241 any more; every other break holds what it held
    disposed = {chosen[d]["recon_key"] for d in ("refund_original_route", "payout", "ignore_out_of_system")}
    assert held_after == {k: v for k, v in held_before.items() if k not in disposed}
    # lineage: each DSP leg points at the fact and at the disposition file's line that decided it
    lineage = query(b.warehouse, """
        select distinct j.source_recon_key, d.recon_key, d.disposition, d.line_no
        from main.fct_journal_lines as j
        inner join main_staging.stg_internal__recon_dispositions as d
            on d.file_version_id = j.source_file_version_id and d.line_no = j.source_line_no
        where j.journal_id like 'DSP:%'""")
    assert {(k, disp) for k, _, disp, _ in lineage} == {(f["recon_key"], d) for d, f in chosen.items()
                                                        if d != "manual_review"}
    assert all(k == k2 for k, k2, _, _ in lineage)

    # and the clearing and ledger invariants still hold
    target = tmp_path / "target"
    dbt(["test", "--select", *DSP_SELECT, *dbt_vars(b.as_of)], b.data, b.warehouse, target_path=target, quiet=True)
    statuses = data_test_statuses(target)
    assert len(statuses) == N_TESTS + 1
    assert {t for t, s in statuses.items() if s != "pass"} == set()


@pytest.mark.parametrize("case", ["dsp_journal_missing", "dsp_leg_to_wrong_break"])
def test_disposition_invariants_catch_corrupted_journals(disposed_build: tuple[Build, dict], tmp_path: Path,
                                                         case: str):
    b, chosen = disposed_build
    b = b.copy(tmp_path / "warehouse")
    key = chosen["refund_original_route"]["recon_key"]
    other = chosen["payout"]["recon_key"]
    sql, rows, fails = {
        # the refund decision never booked: its break still holds its money (INV-20 for 2241), the decision has no
        # journal (INV-22), and the stored balances still include it (INV-19)
        "dsp_journal_missing": (f"delete from main.fct_journal_lines where journal_id = 'DSP:{key}'", 2,
                                {"assert_disposed_breaks_leave_unreconciled_funds",
                                 "assert_journals_trace_to_sources", "assert_balances_equal_entries"}),
        # the refund's 2241 leg points at another disposed break: one break is emptied twice, the other not at all
        "dsp_leg_to_wrong_break": (f"update main.fct_journal_lines set source_recon_key = '{other}' "
                                   f"where journal_id = 'DSP:{key}' and account_code = '2241'", 1,
                                   {"assert_disposed_breaks_leave_unreconciled_funds",
                                    "assert_journals_trace_to_sources"}),
    }[case]
    con = connect_warehouse(b.warehouse, read_only=False)
    try:
        assert con.execute(sql).fetchall() == [(rows,)]
    finally:
        con.close()
    target = tmp_path / "target"
    with pytest.raises(RuntimeError):
        dbt(["test", "--select", *DSP_SELECT, *dbt_vars(b.as_of)], b.data, b.warehouse, target_path=target,
            quiet=True)
    statuses = data_test_statuses(target)
    assert {t for t, s in statuses.items() if s in ("fail", "error")} == fails
