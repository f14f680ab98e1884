"""Great Expectations as the raw-file gate: its verdict decides, it agrees with the vectorised screen, it never
sees a full card number, and it stays quiet."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tally.formats import FORMATS, SCI_NOTATION, WECHAT_TRADE
from tally.gx_gate import Gate, Verdict, engine_neutral
from tally.land import land, land_file

PAN = "4111111111111111"
TRICKY = ["12.00", "１２.00", "12.00\n", "\n12.00", "12", "1e5", "4.2E+27", "", "0", "M0001", "SUCCESS",
          "2024-03-04 00:00:00", "2024-03-04 00:00:00\n", "٣", "1,234.00", "CD000000000001", "x" * 40]


@pytest.mark.parametrize("pattern", sorted({c.pattern for f in FORMATS.values() for c in f.columns if c.pattern}
                                            | {SCI_NOTATION.pattern}))
def test_gx_patterns_mean_what_the_screen_means(pattern: str):
    """The screen runs the registry pattern in RE2; GX's pandas may use Python's re: the rewrite agrees with both."""
    screen = pc.match_substring_regex(pa.array(TRICKY), pattern).to_pylist()
    neutral = engine_neutral(pattern)
    assert [re.search(neutral, v) is not None for v in TRICKY] == screen
    assert pc.match_substring_regex(pa.array(TRICKY), neutral.replace("\\Z", "$")).to_pylist() == screen


def _wechat(world: Path) -> tuple[str, list[str]]:
    f = next(p for p in sorted(world.glob("landing/*/wechat/*_ALL.csv")) if not p.read_bytes().startswith(b"<"))
    return f.name, f.read_text("utf-8").split("\n")


def _land_one(tmp: Path, name: str, data: bytes, gate):
    src = tmp / "in"
    src.mkdir(parents=True, exist_ok=True)
    (src / name).write_bytes(data)
    r = land_file(src / name, src, tmp / "lake", gate=gate)
    q = [x for f in sorted((tmp / "lake" / "quarantine").glob("*.parquet")) for x in pq.read_table(f).to_pylist()]
    return r, q


def _damaged(world: Path) -> tuple[str, bytes]:
    name, lines = _wechat(world)
    for i, value in ((1, "`1e3"), (2, "`１２.00"), (3, f"`{PAN}.00")):  # 应结订单金额 (settlement_amount)
        cells = lines[i].split(",")
        cells[12] = value
        cells[21] = f"`card {PAN}"  # and a card number in 商户数据包 (attach)
        lines[i] = ",".join(cells)
    return name, "\n".join(lines).encode()


class Recording(Gate):
    def judge(self, fmt, columns, rows, sci=frozenset(), rows_level=False) -> Verdict:
        self.seen = pa.table(columns)
        self.verdict = super().judge(fmt, columns, rows, sci, rows_level)
        return self.verdict


def test_gx_judges_the_flagged_rows_as_the_screen_does_and_never_sees_a_pan(world: Path, tmp_path: Path):
    name, data = _damaged(world)
    gate = Recording()
    r, q = _land_one(tmp_path / "gx", name, data, gate)
    _, q_screen = _land_one(tmp_path / "screen", name, data, False)
    assert [(x["line_no"], x["reason"]) for x in q] == [(x["line_no"], x["reason"]) for x in q_screen]
    assert [(x["line_no"], x["reason_code"]) for x in q] == [(2, "pattern"), (3, "pattern"), (4, "pattern")]
    assert gate.verdict.failing == {"settlement_amount": [0, 1, 2]} and gate.disagreements == 0
    assert gate.rows_judged > 3  # the flagged rows and a sample of the others
    assert PAN not in repr(gate.seen.to_pylist()) and PAN not in str(gate.verdict.result)
    assert "411111" in str(gate.verdict.result)  # masked, not dropped: first 6 and last 4 stay


class Overruling(Gate):
    """A gate whose verdict differs from the screen's, to show that the verdict is what decides."""

    def __init__(self, failing=None, sci=None):
        super().__init__()
        self.failing, self.sci = failing or {}, sci or {}

    def judge(self, fmt, columns, rows, sci=frozenset(), rows_level=False) -> Verdict:
        real = super().judge(fmt, columns, rows, sci, rows_level)
        return Verdict(real.missing_columns, self.sci, self.failing, real.result)


def test_the_gate_decides_rows_the_screen_flagged(world: Path, tmp_path: Path):
    name, data = _damaged(world)
    gate = Overruling(failing={"settlement_amount": [2]})  # GX passes rows 0 and 1 although the screen flags them
    r, q = _land_one(tmp_path, name, data, gate)
    assert [x["line_no"] for x in q] == [4] and r.detail == len(data.split(b"\n")) - 4 - 1
    assert gate.disagreements == 2


def test_the_gate_decides_rejection(world: Path, tmp_path: Path):
    name, lines = _wechat(world)
    cells = lines[2].split(",")
    cells[5] = "`4.20000E+27"
    lines[2] = ",".join(cells)
    data = "\n".join(lines).encode()
    r, _ = _land_one(tmp_path / "a", name, data, Gate())
    assert r.status == "rejected" and "scientific notation" in r.message
    r, _ = _land_one(tmp_path / "b", name, data, Overruling())  # GX says no id is in E-notation
    assert r.status == "landed"


def test_missing_required_columns_reject_the_file():
    gate = Gate()
    cols = {c.name: pa.array(["x"]) for c in WECHAT_TRADE.columns if c.name != "transaction_id"}
    verdict = gate.judge(WECHAT_TRADE, cols, np.array([0]))
    assert verdict.missing_columns == ["transaction_id"]


def test_every_row_mode_agrees_with_the_screen_on_a_world(world: Path, tmp_path: Path):
    gate = Gate(every_row=True)
    results = land([world / "landing"], tmp_path, out=None, gate=gate)
    assert gate.rows_judged == sum(r.detail + r.quarantined for r in results if r.status in ("landed", "duplicate"))
    assert gate.disagreements == 0


def test_cli_landing_is_quiet(world: Path, tmp_path: Path):
    scripts = Path(__file__).resolve().parents[2] / "scripts"
    proc = subprocess.run([sys.executable, "-m", "tally", "land", str(world / "landing"), "--lake", str(tmp_path)],
                          capture_output=True, text=True, env={"PYTHONPATH": str(scripts), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bars, no GX logging
    assert "landing:" in proc.stdout
    assert re.search(r"Great Expectations judged \d+ piece\(s\)$", proc.stdout.strip())


def test_gx_is_imported_only_when_the_screen_flags_a_value(world: Path, tmp_path: Path):
    """GX judges what the screen flags: a bill with nothing flagged (the parser itself refuses a missing required
    column) is landed without validating it, so a clean day does not pay GX's import; a damaged one is judged."""
    scripts = Path(__file__).resolve().parents[2] / "scripts"
    name, lines = _wechat(world)
    _, damaged = _damaged(world)
    code = ("import io, sys; from pathlib import Path; from tally.land import land; "
            "out = io.StringIO(); r, = land([Path(sys.argv[1])], Path(sys.argv[2]), out=out); "
            "print(r.status, r.quarantined, 'great_expectations' in sys.modules, out.getvalue().split()[-2])")
    seen = {}
    for kind, data in (("clean", "\n".join(lines).encode()), ("damaged", damaged)):
        (tmp_path / kind).mkdir()
        (tmp_path / kind / name).write_bytes(data)
        gate = Recording()
        land([tmp_path / kind], tmp_path / f"lake-{kind}", out=None, gate=gate)
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / kind), str(tmp_path / f"lake-{kind}-cli")],
                              capture_output=True, text=True, env={"PYTHONPATH": str(scripts), "PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr
        seen[kind] = (gate.validations, proc.stdout.split())
    assert seen["clean"] == (0, ["landed", "0", "False", "0"])  # the last: the pieces GX judged, as landing reports
    assert seen["damaged"][0] >= 1 and seen["damaged"][1] == ["landed", "3", "True", "1"]


def _dated(world: Path) -> tuple[str, bytes]:
    """A WeChat bill with a date that does not exist (row 0), a time outside the bill window (row 1) and both a bad
    pattern and a bad date in one row (row 2: the pattern is its reason)."""
    name, lines = _wechat(world)
    at = lines[0].split(",").index("交易时间")
    for i, value in ((1, "`2024-02-30 10:00:00"), (2, "`2099-03-04 10:00:00"), (3, "`2024-02-30 10:00:00")):
        cells = lines[i].split(",")
        cells[at] = value
        if i == 3:
            cells[12] = "`1e3"
        lines[i] = ",".join(cells)
    return name, "\n".join(lines).encode()


def test_gx_judges_dates_and_the_bill_window_as_the_screen_does(world: Path, tmp_path: Path):
    name, data = _dated(world)
    gate = Recording()
    r, q = _land_one(tmp_path / "gx", name, data, gate)
    _, q_screen = _land_one(tmp_path / "screen", name, data, False)
    assert [(x["line_no"], x["reason"]) for x in q] == [(x["line_no"], x["reason"]) for x in q_screen]
    assert [(x["line_no"], x["reason_code"]) for x in q] == [(2, "bad_datetime"), (3, "outside_bill_window"),
                                                             (4, "pattern")]
    assert gate.verdict.calendar == {"trade_time": [0, 2]} and gate.verdict.window == {"trade_time": [1]}
    assert gate.disagreements == 0
    assert "trade_time__seconds_from_bill_day" in gate.seen.column_names


def test_the_gate_decides_dates_and_the_window(world: Path, tmp_path: Path):
    name, data = _dated(world)

    class Lenient(Gate):  # GX says every date exists and lies in the window
        def judge(self, fmt, columns, rows, sci=frozenset(), rows_level=False) -> Verdict:
            real = super().judge(fmt, columns, rows, sci, rows_level)
            return Verdict(real.missing_columns, real.sci, real.failing, real.result)

    gate = Lenient()
    r, q = _land_one(tmp_path, name, data, gate)
    assert [(x["line_no"], x["reason_code"]) for x in q] == [(4, "pattern")]
    assert gate.disagreements == 3  # the dates of rows 0 and 2, the window of row 1; row 2 fails its amount anyway


def test_every_row_mode_agrees_with_the_screen_on_dispositions_and_batch_ids(tmp_path: Path):
    """The formats main added (dispositions, the payouts' settlement batch id) through every GX expectation."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "internal_dispositions_20240304.csv").write_text(
        "recon_key,disposition,decided_by,decided_at,note\n"
        "trade|4200000001,refund_original_route,alice,2024-03-04 10:00:00,ok\n"
        "trade|4200000002,payout,bob,2024-03-04 10:00:61,seconds\n"
        "trade|4200 0003,ignore_out_of_system,carol,2024-03-04 10:00:00,space in key\n"
        "trade|4200000004,chase_funds,dave,2099-03-04 10:00:00,future\n", "utf-8")
    (src / "internal_payouts_20240304.csv").write_text(
        "payout_id,merchant_id,amount_fen,currency,status,account_no,account_name,created_at,updated_at,"
        "settlement_batch_id\n"
        "PO1,M0001,100,CNY,SUCCESS,6222******0017,x,2024-03-04 10:00:00,2024-03-04 10:00:00,SBM000120240303\n"
        "PO2,M0001,100,CNY,SUCCESS,6222******0017,x,2024-03-04 10:00:00,2024-03-04 10:00:00,\n"
        "PO3,M0001,100,CNY,SUCCESS,6222******0017,x,2024-03-04 10:00:00,2024-03-04 10:00:00,SB-1\n", "utf-8")
    gate = Gate(every_row=True)
    results = land([src], tmp_path / "lake", out=None, gate=gate)
    q = {r.format: [] for r in results}
    for f in sorted((tmp_path / "lake" / "quarantine").glob("[!_]*.parquet")):  # not the zero-row _schema file
        rows = pq.read_table(f).to_pylist()
        q["internal_dispositions" if "dispositions" in rows[0]["reason"] else "internal_payouts"] += rows
    assert [(r.format, r.status, r.detail) for r in results] == [("internal_dispositions", "landed", 1),
                                                                 ("internal_payouts", "landed", 2)]
    assert [(x["line_no"], x["reason_code"]) for x in q["internal_dispositions"]] == [
        (3, "bad_datetime"), (4, "pattern"), (5, "outside_bill_window")]
    assert [(x["line_no"], x["reason_code"]) for x in q["internal_payouts"]] == [(4, "pattern")]
    assert "settlement_batch_id" in q["internal_payouts"][0]["reason"]
    assert gate.disagreements == 0
