"""Crash safety: a landing killed at any moment and then rerun gives the same lake as one uninterrupted landing,
and readers (the dbt sources' globs) never see a half-written file."""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import tally.land
import yaml
from badinput import WECHAT, encode, lake_snapshot, text_file, wechat_cells, wechat_line
from tally.formats import FORMATS
from tally.land import land

REPO = Path(__file__).resolve().parents[2]


def _visible_lake(lake: Path) -> dict:
    """Everything a reader can see: every Parquet file's rows (ledger without landed_at) and the file store."""
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (lake / "files").iterdir()
             if not p.name.startswith(".")}
    return {"parquet": lake_snapshot(lake), "files": files}


def _source_globs() -> dict[str, str]:
    """The dbt sources' external_location per source table (as dbt-duckdb resolves it: the table's own meta, else
    the source's with {name} filled in), TALLY_DATA_DIR still templated."""
    out = {}
    for yml in sorted(REPO.glob("models/staging/*/_*__sources.yml")):
        for source in yaml.safe_load(yml.read_text())["sources"]:
            default = source.get("meta", {}).get("external_location")
            for table in source["tables"]:
                loc = table.get("meta", {}).get("external_location", default)
                out[table["name"]] = loc.replace("{name}", table["name"])
    return out


def _read_as_dbt_would(data_dir: Path) -> dict[str, list]:
    rendered = {}
    for table, call in _source_globs().items():
        sql = call.replace("{{ env_var('TALLY_DATA_DIR', 'data') }}", data_dir.as_posix())
        rows = duckdb.sql(f"select * from {sql}").fetchall()
        cols = duckdb.sql(f"select * from {sql}").columns
        if "landed_at" in cols:
            i = cols.index("landed_at")
            rows = [r[:i] + r[i + 1 :] for r in rows]
        rendered[table] = sorted(rows, key=repr)
    return rendered


def _ledger_rows_written(lake: Path) -> int:
    try:
        return sum(1 for e in os.scandir(lake / "ledger") if e.name.endswith(".parquet") and e.name[0] not in "_.")
    except FileNotFoundError:
        return 0


def _spawn(landing: Path, lake: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    return subprocess.Popen([sys.executable, "-m", "tally", "land", str(landing), "--lake", str(lake)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def test_sources_globs_are_what_this_test_reads():
    globs = _source_globs()
    # every landed format has a dbt source, and the lake's two tables
    assert set(globs) == {*FORMATS, "file_ledger", "quarantine_lines"}
    assert globs["file_ledger"].endswith("/lake/ledger/*.parquet')")
    assert globs["wechat_trade_bill"].endswith("/lake/raw/wechat_trade_bill/*/*.parquet', hive_partitioning = true)")


def test_killed_landing_then_rerun_equals_an_uninterrupted_landing(world: Path, tmp_path: Path):
    fresh = tmp_path / "fresh" / "lake"
    land([world / "landing"], fresh, out=None)
    total = _ledger_rows_written(fresh)

    lake = tmp_path / "crashed" / "lake"
    rng = random.Random(20240304)
    kills = []  # (how the moment was chosen, ledger rows written when the process died)
    # 1: after a random sleep (may fall in interpreter start-up); 2-4: once the rerun has added a random share of
    # the rows still missing.
    plans = [("sleep", rng.uniform(0.05, 0.3))] + [("rows", rng.uniform(0.1, 0.6)) for _ in range(3)]
    for how, when in plans:
        proc = _spawn(world / "landing", lake)
        deadline = time.monotonic() + 60
        if how == "sleep":
            time.sleep(when)
        else:
            target = (done := _ledger_rows_written(lake)) + max(1, round(when * (total - done)))
            while _ledger_rows_written(lake) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        kills.append((how, when, proc.returncode, _ledger_rows_written(lake)))
        proc.stderr.close()
        # Between kills, what readers see is readable: no glob matches a half-written file. (Killed inside the first
        # init_lake there is no lake yet: some sources have no schema file, as before any landing.)
        if len(list(lake.rglob("_schema.parquet"))) == len(_source_globs()):
            _read_as_dbt_would(lake.parent)

    mid_run = [k for k in kills if k[2] == -signal.SIGKILL and 0 < k[3] < total]
    assert len(mid_run) >= 1, kills
    assert len({k[3] for k in kills}) >= 3, kills  # the kills fell at different moments

    proc = _spawn(world / "landing", lake)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert _ledger_rows_written(lake) == total
    assert _visible_lake(lake) == _visible_lake(fresh)
    assert _read_as_dbt_would(lake.parent) == _read_as_dbt_would(fresh.parent)
    # Leftovers of killed writers are dot-files named *.tmp-<pid>-<thread>: no source glob (*.parquet) can match them.
    leftovers = [p for p in lake.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert all(re.fullmatch(r"\..+\.tmp-\d+-\d+", p.name) and not p.name.endswith(".parquet") for p in leftovers)


class SimulatedCrash(BaseException):
    """Raised in place of a rename: the process 'dies' with the temp file written and nothing after it."""


def _inbox(world: Path, tmp_path: Path) -> Path:
    """Three deliveries: a clean bill, one with a quarantined line, one that is rejected."""
    name, lines = text_file(world, WECHAT)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / name).write_bytes(encode(WECHAT, lines))
    cells = wechat_cells(lines[1])
    cells[wechat_cells(lines[0]).index("应结订单金额")] = "1e3"
    bad_line = [lines[0], wechat_line(cells)] + lines[2:]
    (inbox / name.replace("_ALL", "_ALL.v2")).write_bytes(encode(WECHAT, bad_line))
    (inbox / name.replace("20240304", "20240305")).write_bytes(b"")
    return inbox


def test_a_crash_at_every_write_then_rerun_converges(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Deterministic companion of the kill test: die at each rename of a landing in turn (raw Parquet written but no
    ledger row, quarantine but no raw, file store but no ledger row...), rerun, and compare with a clean landing."""
    inbox = _inbox(world, tmp_path)
    fresh = tmp_path / "fresh" / "lake"
    real_replace = os.replace
    calls = []

    def counting(src, dst):
        calls.append(Path(dst).relative_to(fresh).as_posix())
        real_replace(src, dst)

    monkeypatch.setattr(tally.land.os, "replace", counting)
    results = land([inbox], fresh, out=None)
    monkeypatch.setattr(tally.land.os, "replace", real_replace)
    assert sorted(r.status for r in results) == ["landed", "landed", "rejected"]
    landing_writes = [c for c in calls if "_schema" not in c]
    assert len(landing_writes) == 3 + 4 + 2  # clean: files, raw, ledger; quarantined: + quarantine; rejected: 2
    want, want_read = _visible_lake(fresh), _read_as_dbt_would(fresh.parent)

    for k in range(1, len(calls) + 1):
        lake = tmp_path / f"crash{k}" / "lake"
        n = 0

        def crashing(src, dst, k=k):
            nonlocal n
            n += 1
            if n == k:
                raise SimulatedCrash(dst)
            real_replace(src, dst)

        monkeypatch.setattr(tally.land.os, "replace", crashing)
        with pytest.raises(SimulatedCrash):
            land([inbox], lake, out=None)
        monkeypatch.setattr(tally.land.os, "replace", real_replace)
        if k > len(calls) - len(landing_writes):  # past init_lake (before it, there is no lake to read yet)
            _read_as_dbt_would(lake.parent)  # the half-done lake reads fine: no glob sees the temp file
        land([inbox], lake, out=None)
        assert _visible_lake(lake) == want, f"crash before write {k} ({calls[k - 1]})"
        assert _read_as_dbt_would(lake.parent) == want_read
        assert all(re.fullmatch(r"\..+\.tmp-\d+-\d+", p.name) for p in lake.rglob(".*"))  # only temp leftovers
