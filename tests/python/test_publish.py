"""Publish (write–audit–publish) and resume: a BI client reading the serving file through SQLAlchemy while a full
rebuild and publish run sees only whole, tested publishes; a build with a failing test publishes nothing; a build
killed mid-way and rerun ends identical to an uninterrupted one."""

from __future__ import annotations

import datetime as dt
import json
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
from conftest import dbt_vars, failed_tests
from tally.land import land
from tally.pipeline import PROJECT_DIR, build_and_publish, dbt
from tally.publish import PublishRefused, connect_serving, publish
from tally.warehouse import connect as connect_warehouse
from tally.warehouse import copy as copy_warehouse

pytestmark = pytest.mark.usefixtures("dbt_logs_in_tmp")
HERE = Path(__file__).resolve().parent


def marts_fingerprint(warehouse: Path) -> dict[str, tuple]:
    """Per table of the warehouse (marts, intermediate, seals): rows and an order-independent hash of every row."""
    con = connect_warehouse(warehouse)
    try:
        tables = con.execute("select schema_name, table_name from duckdb_tables() order by all").fetchall()
        out = {}
        for schema, name in tables:
            cols = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position", [schema, name]).fetchall()]
            out[f"{schema}.{name}"] = con.execute(
                f'select count(*), sum(hash({", ".join(cols)})) from "{schema}"."{name}"').fetchone()
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, world: Path) -> Path:
    data = tmp_path_factory.mktemp("publish_data")
    land([world / "landing"], data / "lake", gate=False)
    return data


@pytest.fixture(scope="module")
def as_of(world_params) -> list[str]:
    """Past every window, so closed days are sealed and INV-23 has something to check."""
    return dbt_vars(world_params.start_date + dt.timedelta(days=12))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, lake: Path, as_of: list[str]):
    """One uninterrupted green build: (warehouse, its target path, its tables' fingerprint)."""
    root = tmp_path_factory.mktemp("reference")
    warehouse, target = root / "warehouse" / "tally.duckdb", root / "target"
    dbt(["build", "--quiet", *as_of], lake, warehouse, target_path=target)
    return warehouse, target, marts_fingerprint(warehouse)


def _serving_state(serving: Path) -> tuple:
    con = connect_serving(serving)
    try:
        invocation = con.execute("select distinct build_invocation_id from publish_manifest").fetchall()
    finally:
        con.close()
    return serving.stat().st_ino, serving.stat().st_mtime_ns, invocation


def test_reader_sees_only_whole_tested_publishes_and_a_failed_build_publishes_nothing(
        lake: Path, as_of: list[str], reference, world_params, tmp_path: Path):
    start = world_params.start_date
    warehouse = tmp_path / "warehouse" / "tally.duckdb"
    warehouse.parent.mkdir(parents=True)
    copy_warehouse(reference[0], warehouse)
    serving = tmp_path / "serving" / "tally.duckdb"
    target = tmp_path / "target"
    first = publish(warehouse, serving, target=reference[1], data_dir=lake)  # the reference build was green
    assert {"fct_recon_results", "fct_journal_lines", "rpt_trial_balance", "hist_recon_results"} <= set(first)
    # the warehouse file is copied, then only the public relations stay: no seeds, no staging or intermediate
    con = connect_serving(serving)
    schemas = {s for (s,) in con.execute("select distinct table_schema from information_schema.tables").fetchall()}
    names = {n for (n,) in con.execute("select table_name from information_schema.tables").fetchall()}
    con.close()
    assert schemas == {"main"} and names == set(first) | {"publish_manifest"}
    assert all(n.startswith(("fct_", "rpt_", "dim_", "hist_")) for n in first)

    # serving connections are read only: no writes, no reading files from SQL
    con = connect_serving(serving)
    with pytest.raises(duckdb.Error):
        con.execute("create table main.x (a integer)")
    with pytest.raises(duckdb.Error):
        con.execute(f"select * from read_parquet('{lake.as_posix()}/lake/ledger/*.parquet')")
    con.close()

    stop = tmp_path / "stop"
    outs = {mode: tmp_path / f"reads-{mode}.jsonl" for mode in ("held", "fresh")}
    readers = {mode: subprocess.Popen([sys.executable, str(HERE / "bi_reader.py"), mode, str(serving), str(stop),
                                       str(out)]) for mode, out in outs.items()}

    def reads() -> list[dict]:
        return [json.loads(line) for out in outs.values() if out.exists() for line in out.read_text().splitlines()]

    def alive() -> None:
        assert all(r.poll() is None for r in readers.values()), "a BI reader died"

    try:
        while {r["conn"] for r in reads()} != set(outs):
            alive()
            time.sleep(0.1)
        # a full rebuild and publish while the readers read
        build_and_publish(lake, warehouse, serving, target_path=target, extra=as_of, quiet=True)
        published_at = time.time()
        while {r["conn"] for r in reads() if r["at"] > published_at + 0.5} != set(outs):
            alive()
            time.sleep(0.1)
    finally:
        stop.touch()
        for r in readers.values():
            r.wait(timeout=60)
    assert all(r.returncode == 0 for r in readers.values())
    seen = reads()
    assert not [r for r in seen if r["problems"]], "a reader saw a partial or inconsistent publish"
    fresh = {r["invocation"] for r in seen if r["conn"] == "fresh"}
    held = {r["invocation"] for r in seen if r["conn"] == "held"}
    assert len(fresh) == 2  # before and after the publish, each whole
    assert len(held) == 1 and held < fresh  # the held connection kept the first snapshot throughout
    assert all(r["relations"] == len(first) for r in seen)

    # a closed day's seal no longer matches (INV-23 fails): the build fails, nothing is published
    before = _serving_state(serving)
    con = connect_warehouse(warehouse, read_only=False)
    con.execute("update main_history.hist_closed_day_seals set row_count = row_count + 1 where business_date = ?",
                [start])
    con.close()
    with pytest.raises(RuntimeError, match="dbt build"):
        build_and_publish(lake, warehouse, serving, target_path=target, extra=as_of, quiet=True)
    assert "assert_closed_days_match_seals" in failed_tests(target)
    assert _serving_state(serving) == before
    # publishing by hand after that build is refused too
    with pytest.raises(PublishRefused, match="not green"):
        publish(warehouse, serving, target=target, data_dir=lake)
    assert _serving_state(serving) == before


def test_publish_removes_the_copies_of_killed_publishes_only(reference, lake: Path, tmp_path: Path):
    """A publish killed mid-way leaves its `.tally.duckdb.tmp-<pid>` copy (as large as the warehouse); the next
    publish deletes it, and leaves alone the copy of a publish that is still running."""
    warehouse = tmp_path / "warehouse" / "tally.duckdb"
    warehouse.parent.mkdir()
    copy_warehouse(reference[0], warehouse)
    serving = tmp_path / "serving" / "tally.duckdb"
    serving.parent.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # a killed publish's copy and WAL, and the WAL an earlier failed publish of this process left
        killed = [serving.with_name(f".tally.duckdb.tmp-{pid}{wal}")
                  for pid, wal in ((gone.pid, ""), (gone.pid, ".wal"), (os.getpid(), ".wal"))]
        live = [serving.with_name(f".tally.duckdb.tmp-{running.pid}{wal}") for wal in ("", ".wal")]
        other = serving.with_name(".tally.duckdb.tmp-notapid")  # not a name publish gives its copies
        for f in (*killed, *live, other):
            f.write_bytes(b"half a copy")
        publish(warehouse, serving, target=reference[1], data_dir=lake)
        assert not any(f.exists() for f in killed)
        assert all(f.read_bytes() == b"half a copy" for f in (*live, other))
        assert sorted(p.name for p in serving.parent.iterdir()) == sorted(
            ["tally.duckdb", other.name, *(f.name for f in live)])
    finally:
        running.kill()
        running.wait()


def test_build_killed_mid_way_then_rerun_is_identical(lake: Path, as_of: list[str], reference, tmp_path: Path):
    expected = reference[2]

    warehouse = tmp_path / "resumed" / "tally.duckdb"
    warehouse.parent.mkdir(parents=True)
    env = dict(os.environ, TALLY_DATA_DIR=str(lake.resolve()), TALLY_DUCKDB_PATH=str(warehouse),
               DBT_PROFILES_DIR=str(PROJECT_DIR))
    cmd = [str(Path(sys.executable).with_name("dbt")), "--quiet", "build", *as_of, "--project-dir", str(PROJECT_DIR),
           "--target-path", str(tmp_path / "t_killed")]
    # killed at a random moment while models are being written
    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_DIR, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not warehouse.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(3).uniform(1.0, 6.0))
    assert proc.poll() is None, "the build ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(marts_fingerprint(warehouse)) < len(expected)  # it really stopped half-way
    target = tmp_path / "t_rerun"
    dbt(["build", "--quiet", *as_of], lake, warehouse, target_path=target)  # a plain rerun
    assert not failed_tests(target)
    assert marts_fingerprint(warehouse) == expected


def test_readme_questions_run_on_the_serving_file(lake: Path, reference, tmp_path: Path):
    """The README's "Answering the usual questions" SQL runs as written on what BI opens, lineage to files included."""
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    start = readme.index("**Answering the usual questions**")
    block = readme[readme.index("```sql", start) + len("```sql"):readme.index("```\n", readme.index("```sql", start))]
    statements = [s.strip() for s in re.sub(r"--[^\n]*", "", block).split(";") if s.strip()]
    assert len(statements) >= 8
    warehouse = tmp_path / "warehouse" / "tally.duckdb"
    warehouse.parent.mkdir(parents=True)
    copy_warehouse(reference[0], warehouse)
    serving = tmp_path / "serving" / "tally.duckdb"
    publish(warehouse, serving, target=reference[1], data_dir=lake)
    con = connect_serving(serving)
    try:
        rows = [con.execute(s).fetchall() for s in statements]
    finally:
        con.close()
    assert sum(map(len, rows)) > 0
