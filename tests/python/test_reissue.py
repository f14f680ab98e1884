"""Re-issued bills after their lines cleared: clearing entries, settlement batches and the journal already posted never
change; a line clears on the day it resolves, never twice.

One anomaly-rich 3-day world (seed 1, 2024-03-04..06) is simulated and landed. Its own re-issue: M0001's WeChat bill
of 2024-03-04 is delivered a second time on 03-06 (visible as of 03-05) correcting one payment the first version had
1.00 yuan too high; every other line of it is the same in both versions. The test adds a second re-issue, after the
batch was paid: M0003's WeChat bill of 03-04 delivered again on 03-08 (visible as of 03-07) with one cleared payment
1.00 yuan higher and another's time a second later, lines that had cleared on 03-04 into the batch paid on 03-06.

Builds are as of a day (`--vars as_of`), so each sees the deliveries it would have seen then; dbt's logs go to a tmp
dir and each build has its own target path and warehouse.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from conftest import Build, data_test_statuses, dbt_vars, query, recon_world_params
from tally.land import land
from tally.pipeline import dbt
from tally.score import closing_as_of, score
from tally.simulate import _reissue_original, merchant_directory, simulate

WORLD = recon_world_params(1)
D0, D1, D2 = WORLD.dates
D3 = D2 + dt.timedelta(days=1)  # the day the test's own re-issue is visible
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
SELECT = ["--select", "path:tests/dbt/clearing", "path:tests/dbt/ledger"]


@dataclasses.dataclass
class Lake:
    world: Path
    data: Path
    tmp: Path
    builds: dict = dataclasses.field(default_factory=dict)

    def build(self, as_of: dt.date, name: str) -> Build:
        """As of a day, models only (the data tests run where a test asks for them); cached by name."""
        if name not in self.builds:
            wh = self.tmp / name / "tally.duckdb"
            dbt(["build", "--exclude", "resource_type:test", *dbt_vars(as_of)], self.data, wh,
                target_path=self.tmp / name / "target", quiet=True)
            self.builds[name] = Build(self.world, self.data, wh, as_of)
        return self.builds[name]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, dbt_logs_in_tmp) -> Lake:
    root = tmp_path_factory.mktemp("reissue")
    simulate(WORLD, root / "world")
    land([root / "world" / "landing"], root / "data" / "lake", out=None)
    return Lake(root / "world", root / "data", root)


def _corrected_reissue(world: Path, dest: Path, merchant_id: str) -> Path:
    """A second delivery of the merchant's WeChat bill of D0, on D3 + 1 (three days after the first): its first
    payment 1.00 yuan higher (summary totals to match), its second payment's time a second later. Returns the folder
    to land."""
    mch = next(m["wechat_mch_id"] for m in merchant_directory(WORLD.merchants) if m["merchant_id"] == merchant_id)
    original = world / "landing" / f"{D1}" / "wechat" / f"wechat_{mch}_{D0:%Y%m%d}_ALL.csv"
    text = original.read_text(encoding="utf-8")
    legacy = len(text.split("\n", 1)[0].split(",")) == 24
    lines = _reissue_original(text, legacy).decode("utf-8").split("\n")
    second = [i for i, ln in enumerate(lines[1:-3], start=1) if ln.split(",")[9] == "`SUCCESS"][1]
    cells = lines[second].split(",")
    cells[0] = "`" + (dt.datetime.fromisoformat(cells[0][1:]) + dt.timedelta(seconds=1)).isoformat(" ")
    lines[second] = ",".join(cells)
    when = dt.datetime.combine(D3 + dt.timedelta(days=1), dt.time(10, 0))
    path = dest / f"{when.date()}" / "wechat" / f"wechat_{mch}_{D0:%Y%m%d}_ALL.corrected.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    stamp = when.replace(tzinfo=SHANGHAI).timestamp()
    os.utime(path, (stamp, stamp))
    return dest


@pytest.fixture(scope="module")
def corrected_lake(lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The same lake with M0003's bill of D0 re-issued on D3 + 1 (visible as of D3), after its batch was paid."""
    root = tmp_path_factory.mktemp("corrected")
    shutil.copytree(lake.data / "lake", root / "data" / "lake")
    src = _corrected_reissue(lake.world, tmp_path_factory.mktemp("corrected_files"), "M0003")
    assert [r.status for r in land([src], root / "data" / "lake", out=None)] == ["landed"]
    return Lake(lake.world, root / "data", root)


def _batch(build: Build, batch_id: str) -> dict:
    row = query(build.warehouse, """select line_count, amount_fen, payable_fen, paid_fen, batch_status
                                    from main.fct_settlement_batches where settlement_batch_id = ?""", [batch_id])
    assert len(row) == 1, batch_id
    return dict(zip(["line_count", "amount_fen", "payable_fen", "paid_fen", "batch_status"], row[0], strict=True))


def _cleared_through(build: Build, day: dt.date) -> set[tuple]:
    return set(query(build.warehouse, """
        select cleared_line_id, entry_kind, recon_key, cleared_on, settlement_batch_id, amount_fen, merchant_fee_fen,
               channel_cost_fen
        from main.fct_cleared_lines where cleared_on <= ?""", [day]))


def _journal_through(build: Build, day: dt.date, families: tuple[str, ...] | None = None) -> set[tuple]:
    """The money of every journal leg posted up to the day (lineage aside: it names the current file version), of
    the journal families given (all when None)."""
    where = "" if families is None else " and left(journal_id, 4) in ({})".format(
        ", ".join(f"'{f}:'" for f in families))
    return set(query(build.warehouse, f"""
        select journal_id, journal_type, posted_on, leg_no, account_code, sub_account, debit_fen, credit_fen,
               channel_bill_date, source_recon_key
        from main.fct_journal_lines where posted_on <= ?{where}""", [day]))


def _open_clearings(build: Build) -> dict[str, int]:
    """recon_key -> clearings less reversals; a line is cleared at most once."""
    rows = query(build.warehouse, """select recon_key, sum(case when entry_kind = 'reversal' then -1 else 1 end)
                                     from main.fct_cleared_lines group by recon_key""")
    return dict(rows)


def _clearing_and_ledger_tests_pass(build: Build, target: Path) -> None:
    dbt(["test", *SELECT, *dbt_vars(build.as_of)], build.data, build.warehouse, target_path=target, quiet=True)
    statuses = data_test_statuses(target)
    assert "assert_lines_clear_at_most_once" in statuses and "assert_freezes_resolve_at_most_once" in statuses
    assert {t for t, s in statuses.items() if s not in ("pass", "warn")} == set()


def test_a_reissue_that_corrects_a_break_leaves_the_cleared_lines_in_their_batch(lake: Lake, tmp_path: Path):
    """The simulator's re-issue: the unchanged lines of M0001's bill keep clearing on D0 in SBM000120240304, paid on
    D1; only the corrected payment (a break in the first version) clears, on the day the re-issue is visible."""
    before, after, closing = lake.build(D0, "d0"), lake.build(D1, "d1"), lake.build(closing_as_of(lake.world), "close")
    batch = "SBM0001" + f"{D0:%Y%m%d}"
    first = _batch(before, batch)
    assert first["line_count"] > 50 and first["batch_status"] == "scheduled"
    # the same batch, to the fen, once the re-issue is known: paid on D1, and again at the closing date
    for later in (after, closing):
        assert {k: v for k, v in _batch(later, batch).items() if k in ("line_count", "amount_fen", "payable_fen")} \
            == {k: first[k] for k in ("line_count", "amount_fen", "payable_fen")}
    assert _batch(after, batch)["paid_fen"] == first["payable_fen"]
    # nothing cleared on D0 moved or changed, and the money of every journal of D0 is as it was posted
    assert _cleared_through(after, D0) == _cleared_through(before, D0) == _cleared_through(closing, D0)
    assert _journal_through(after, D0) == _journal_through(before, D0) == _journal_through(closing, D0)
    assert _cleared_through(closing, D1) == _cleared_through(after, D1)

    # the payment the re-issue corrected: an amount mismatch held in 2241 on D0, reversed and cleared on D1
    (key,) = [k for (k,) in query(before.warehouse, """select recon_key from main.fct_recon_results
                                                         where break_type = 'amount_mismatch' and channel = 'wechat'
                                                         and merchant_id = 'M0001' and bill_date = ?""", [D0])]
    cleared = query(closing.warehouse, """select cleared_line_id, entry_kind, cleared_on, settlement_batch_id
                                          from main.fct_cleared_lines where recon_key = ?""", [key])
    assert cleared == [(f"{key}@{D1:%Y%m%d}", "clearing", D1, f"SBM0001{D1:%Y%m%d}")]
    held = query(closing.warehouse, """select journal_id, posted_on, sum(credit_fen - debit_fen)
                                       from main.fct_journal_lines where account_code = '2241' and source_recon_key = ?
                                       group by all order by posted_on""", [key])
    assert [(j, d) for j, d, _ in held] == [(f"BRK:{key}", D0), (f"BRK:{key}/reversal", D1)]
    assert held[0][2] == -held[1][2] > 0
    # no line cleared twice, and there was nothing to reverse in this world
    assert set(_open_clearings(closing).values()) == {1}
    assert query(closing.warehouse, "select count(*) from main.fct_cleared_lines where entry_kind = 'reversal'") \
        == [(0,)]
    # the simulator's ground truth models the same rule: clearing and settlement to the fen
    s = score(lake.world, closing.warehouse)
    assert s.perfect, s.report()
    _clearing_and_ledger_tests_pass(closing, tmp_path / "target")


def test_a_reissue_that_changes_cleared_lines_after_their_batch_was_paid_posts_reversals_later(
    lake: Lake, corrected_lake: Lake, tmp_path: Path
):
    """M0003's bill of D0 re-issued after SBM000320240304 was paid: the batch keeps every line and its amount; the
    two changed lines are reversed in the batch of D3 (the day the re-issue is visible); the one that still agrees
    with our record clears again there, under an id of its own; the one that no longer agrees is held as a break.
    D3's batch holds only those corrections and nets negative: it pays nothing and carries the shortfall."""
    before = lake.build(D2, "d2")  # the corrected file is delivered on D3 + 1: unknown as of D2
    after = corrected_lake.build(D3, "d3")
    closing = corrected_lake.build(closing_as_of(lake.world), "close")
    batch = "SBM0003" + f"{D0:%Y%m%d}"
    paid = _batch(before, batch)
    assert paid["paid_fen"] == paid["payable_fen"] > 0, "the batch must have been paid before the re-issue"
    for later in (after, closing):
        got = _batch(later, batch)
        assert (got["line_count"], got["amount_fen"], got["payable_fen"], got["paid_fen"]) == (
            paid["line_count"], paid["amount_fen"], paid["payable_fen"], paid["paid_fen"])
    # everything cleared, and what clearing, recharges, held lines, payouts and carries journaled up to D2, is as it
    # was posted. (The bank statement's own journals are not: the channel's settlement credit for M0003's WeChat bill
    # of D0 agreed with the first version and no longer agrees with the re-issued one, so that statement line turns
    # from a settlement receipt into an unreconciled credit on its own day; grouped matching is all or nothing.)
    assert _cleared_through(after, D2) == _cleared_through(before, D2) == _cleared_through(closing, D2)
    families = ("CLR", "BRK", "RCO", "PFZ", "PFL", "WFZ", "WFL", "SCF")
    assert _journal_through(after, D2, families) == _journal_through(before, D2, families) \
        == _journal_through(closing, D2, families)

    # the two lines the re-issue changed, found from the facts: one now an amount mismatch, one re-timed
    changed = dict(query(closing.warehouse, """
        select case when break_type = 'amount_mismatch' then 'amount' else 'time' end, recon_key
        from main.fct_recon_results
        where merchant_id = 'M0003' and channel = 'wechat' and bill_date = ? and recon_key in (
            select recon_key from main.fct_cleared_lines where entry_kind = 'reversal')""", [D0]))
    assert set(changed) == {"amount", "time"}
    entries = {k: query(closing.warehouse, """
        select cleared_line_id, entry_kind, cleared_on, settlement_batch_id, amount_fen, merchant_fee_fen
        from main.fct_cleared_lines where recon_key = ? order by cleared_on, entry_kind desc""", [key])
        for k, key in changed.items()}
    key, (clear, rev) = changed["amount"], entries["amount"]
    assert clear[:4] == (key, "clearing", D0, batch)
    assert rev[:4] == (f"{key}/reversal", "reversal", D3, f"SBM0003{D3:%Y%m%d}") and rev[4:] == (-clear[4], -clear[5])
    key, (clear, rev, again) = changed["time"], entries["time"]
    assert (clear[:4], rev[:3]) == ((key, "clearing", D0, batch), (f"{key}/reversal", "reversal", D3))
    assert again[:4] == (f"{key}@{D3:%Y%m%d}", "clearing", D3, f"SBM0003{D3:%Y%m%d}") and again[4:] == clear[4:]
    # the journals: cleared in D0's clearing journal and reversed in D3's, and the amount mismatch held in 2241 from
    # D3 (not from D0: it was cleared then)
    k = changed["amount"]
    clearing_journals = dict(query(closing.warehouse, """
        select c.journal_id, min(j.posted_on) from main.fct_cleared_lines as c
        inner join main.fct_journal_lines as j on j.journal_id = c.journal_id
        where c.recon_key = ? group by c.journal_id""", [k]))
    held_journals = dict(query(closing.warehouse, """select journal_id, min(posted_on) from main.fct_journal_lines
                                                     where source_recon_key = ? group by journal_id""", [k]))
    wechat_bill = f"wechat:{D0:%Y%m%d}"
    assert clearing_journals == {f"CLR:{batch}:{wechat_bill}": D0,
                                 f"CLR:SBM0003{D3:%Y%m%d}:{wechat_bill}/reversal": D3}
    assert held_journals == {f"BRK:{k}@{D3:%Y%m%d}": D3}
    # never cleared twice: the re-timed line is cleared once again, the changed amount no longer
    open_now = _open_clearings(closing)
    assert open_now[changed["time"]] == 1 and open_now[changed["amount"]] == 0
    assert set(open_now.values()) <= {0, 1}
    # D3's batch is the three corrections; it nets negative, pays nothing and carries the shortfall out (the merchant
    # owes it: 1123, not a negative payable)
    corrections = _batch(closing, f"SBM0003{D3:%Y%m%d}")
    net = entries["amount"][1][4] - entries["amount"][1][5]  # the reversal's amount less its fee, negative
    assert (corrections["line_count"], corrections["amount_fen"], corrections["payable_fen"]) == (3, net, 0) and net < 0
    assert corrections["batch_status"] == "carried_forward"
    assert query(closing.warehouse, """select carried_out_fen from main.fct_settlement_batches
                                      where settlement_batch_id = ?""", [f"SBM0003{D3:%Y%m%d}"]) == [(net,)]
    owed = query(closing.warehouse, """select sum(debit_fen - credit_fen) from main.fct_journal_lines
                                      where account_code = '1123' and sub_account = 'M0003'""")
    assert owed == [(-net,)]
    # the invariants (balanced journals, trial balance, payable never negative, each line cleared at most once,
    # traceability, freezes) hold
    _clearing_and_ledger_tests_pass(closing, tmp_path / "target")
