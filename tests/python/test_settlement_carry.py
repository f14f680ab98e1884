"""Settlement of days that net negative: a merchant's refunds on a day exceed its payments, after the batches before
were paid. Such a batch pays nothing and its shortfall is carried into the merchant's next batches (the receivable
from the merchant, 1123, holds it meanwhile), so the merchant payable (2202) never closes a day below zero (INV-21),
and the simulator, which pays batches by the same rule, agrees on every batch to the fen.

A 6-day world with 2 merchants, 8 payments a day and 40 % of payments refunded later (seed 8): both merchants have
negative days, one of them two in a row; built as of its closing date, models only (the data tests run in the test).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from conftest import Build, closing_build, data_test_statuses, dbt_vars, query
from tally.pipeline import dbt
from tally.score import score
from tally.simulate import WorldParams

CARRY_WORLD = WorldParams(seed=8, days=6, merchants=2, daily_volume=8, rate_refund=0.4)


@pytest.fixture(scope="module")
def carry_build(tmp_path_factory: pytest.TempPathFactory, dbt_logs_in_tmp) -> Build:
    return closing_build(tmp_path_factory.mktemp("carry"), CARRY_WORLD)


@dataclasses.dataclass
class Batch:
    batch_id: str
    merchant_id: str
    cleared_on: dt.date
    amount_fen: int
    carried_in_fen: int
    payable_fen: int
    carried_out_fen: int
    paid_fen: int
    batch_status: str


def _batches(build: Build) -> list[Batch]:
    return [Batch(*r) for r in query(build.warehouse, """
        select settlement_batch_id, merchant_id, cleared_on, amount_fen, carried_in_fen, payable_fen, carried_out_fen,
               paid_fen, batch_status
        from main.fct_settlement_batches order by merchant_id, cleared_on""")]


def _daily_closing(build: Build, account: str) -> dict[str, list[tuple[dt.date, int]]]:
    """Sub-account -> (day, closing balance on the account's normal side), summed here from the journal's legs."""
    sign = -1 if account.startswith("2") else 1  # liabilities close on the credit side
    moves: dict[str, dict[dt.date, int]] = collections.defaultdict(lambda: collections.defaultdict(int))
    for sub, day, debit, credit in query(build.warehouse, """select sub_account, posted_on, debit_fen, credit_fen
                                                             from main.fct_journal_lines where account_code = ?""",
                                         [account]):
        moves[sub][day] += sign * (debit - credit)
    out = {}
    for sub, days in moves.items():
        balance, rows = 0, []
        for day in sorted(days):
            balance += days[day]
            rows.append((day, balance))
        out[sub] = rows
    return out


def test_a_negative_batch_carries_its_shortfall_and_the_payable_never_goes_negative(carry_build: Build,
                                                                                     tmp_path: Path):
    b = carry_build
    batches = _batches(b)
    negative = [x for x in batches if x.amount_fen < 0]
    assert {x.merchant_id for x in negative} == {"M0001", "M0002"}, "the world must have negative days"

    # the rule, recomputed batch by batch: net + what was carried in is paid if positive, else carried on
    carry: dict[str, int] = collections.defaultdict(int)
    for x in batches:
        balance = carry[x.merchant_id] + x.amount_fen
        want = (carry[x.merchant_id], max(balance, 0), min(balance, 0))
        assert (x.carried_in_fen, x.payable_fen, x.carried_out_fen) == want, x
        carry[x.merchant_id] = min(balance, 0)
        if x.amount_fen < 0:
            assert x.batch_status == "carried_forward" and x.paid_fen == 0, x
    # a shortfall carried through a whole batch (that batch paid nothing) and then recovered by a later one
    assert any(x.carried_in_fen < 0 and x.payable_fen == 0 and x.amount_fen > 0 for x in batches)
    assert any(x.carried_in_fen < 0 and x.payable_fen > 0 for x in batches)

    # the payouts our dump sent pay the batch's payable amount, never its negative or pre-carry net
    payable = {x.batch_id: x.payable_fen for x in batches}
    sent = query(b.warehouse, """select distinct payout_id, settlement_batch_id, amount_fen
                                 from main_staging.stg_internal__payout_events where biz_type = 'SETTLEMENT'""")
    assert sent and all(payable[batch] == fen > 0 for _, batch, fen in sent)

    # INV-21, from the journal's legs: the merchant payable never closes a day below zero, and it went there before
    # (a negative day right after a paid batch); the receivable from the merchant holds the shortfall meanwhile
    payable_days = _daily_closing(b, "2202")
    assert set(payable_days) == {"M0001", "M0002"}
    assert all(bal >= 0 for rows in payable_days.values() for _, bal in rows), payable_days
    owed_days = _daily_closing(b, "1123")
    assert all(bal >= 0 for rows in owed_days.values() for _, bal in rows), owed_days
    assert max(bal for rows in owed_days.values() for _, bal in rows) == -min(x.carried_out_fen for x in batches)
    for merchant in ("M0001", "M0002"):
        last = [x for x in batches if x.merchant_id == merchant][-1]
        assert owed_days[merchant][-1][1] == -last.carried_out_fen
        # what we owe the merchant net of what it owes us is its net less what was paid
        net = sum(x.amount_fen for x in batches if x.merchant_id == merchant)
        paid = sum(x.paid_fen for x in batches if x.merchant_id == merchant)
        assert payable_days[merchant][-1][1] - owed_days[merchant][-1][1] == net - paid

    # the simulator pays by the same rule: every batch's net, payable and paid equal to the fen, and the clearing
    s = score(b.world, b.warehouse)
    assert s.settlement and all(t == w for _, t, w in s.settlement), s.report()
    assert s.clearing_misses == [], s.report()
    # a channel whose bill day nets negative collects it from our account (a debit): a settlement, not a break
    assert s.false_breaks == [] and s.misses == [], s.report()

    # and the clearing and ledger data tests hold, INV-21 and the carry among them
    target = tmp_path / "target"
    dbt(["test", "--select", "path:tests/dbt/clearing", "path:tests/dbt/ledger", *dbt_vars(b.as_of)], b.data,
        b.warehouse, target_path=target, quiet=True)
    statuses = data_test_statuses(target)
    assert statuses["assert_no_negative_balances_where_forbidden"] == "pass"
    assert statuses["assert_batches_carry_shortfalls_forward"] == "pass"
    assert {t for t, s in statuses.items() if s not in ("pass", "warn")} == set()
