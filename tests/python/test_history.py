"""History: 120 simulated days, archived at 90 days of retention. hist_ totals are the same before and after the
archive, after a rebuild, after an archive killed at every step and rerun, and after a restore; the archive parity
(INV-25) and closed-day seal (INV-23) tests fail on a corrupted archive or a restated closed day."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import failed_tests
from tally.archive import ArchiveError, archive, history_dir, latest_states, partition_dir, restore
from tally.land import land
from tally.pipeline import PROJECT_DIR, dbt
from tally.publish import connect_serving, publish
from tally.simulate import WorldParams, simulate
from tally.warehouse import copy as copy_warehouse

pytestmark = pytest.mark.usefixtures("dbt_logs_in_tmp")

# few merchants and payments: the 120 days are there for the calendar, not for volume
HISTORY_WORLD = WorldParams(seed=3, days=120, merchants=1, daily_volume=20)
RETENTION_DAYS = 90
LAKE_PARTS = ("raw", "quarantine", "ledger", "files")


def history_totals(warehouse: Path) -> dict[str, tuple]:
    """Per hist_ model: rows, money sums and an order-independent hash of every row."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out = {}
        for name in ("hist_recon_results", "hist_journal_lines"):
            cols = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = 'main_history' "
                "and table_name = ? order by ordinal_position", [name]).fetchall()]
            money = [c for c in cols if c.endswith("_fen")]
            sums = ", ".join(f"sum({c})" for c in money)
            out[name] = con.execute(
                f"select count(*), {sums}, sum(hash({', '.join(cols)})) from main_history.{name}").fetchone()
        return out
    finally:
        con.close()


def _row_totals(con: duckdb.DuckDBPyConnection, relation: str, catalog: str, schema: str, name: str) -> tuple:
    cols = [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_catalog = ? and table_schema = ? "
        "and table_name = ? order by ordinal_position", [catalog, schema, name]).fetchall()]
    sums = "".join(f", sum({c})" for c in cols if c.endswith("_fen"))
    return con.execute(f"select count(*){sums}, sum(hash({', '.join(cols)})) from {relation}").fetchone()


def served_totals(serving: Path) -> dict[str, tuple]:
    """Rows, money sums and a row hash of every relation BI sees in the serving file that the warehouse has too (not
    the publish manifest, nor the archived partitions' tables, which the hist_ views read)."""
    con = connect_serving(serving)
    try:
        names = [n for (n,) in con.execute("select table_name from information_schema.tables where table_name not "
                                           "like 'publish%' and not ends_with(table_name, '_archived') "
                                           "order by table_name").fetchall()]
        catalog = con.execute("select current_database()").fetchone()[0]
        return {n: _row_totals(con, f'main."{n}"', catalog, "main", n) for n in names}
    finally:
        con.close()


def warehouse_totals(warehouse: Path, names) -> dict[str, tuple]:
    """The same figures for the warehouse relations of the same names."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out = {}
        for n in names:
            schema = "main_history" if n.startswith("hist_") else "main"
            out[n] = _row_totals(con, f'{schema}."{n}"', con.execute("select current_database()").fetchone()[0],
                                 schema, n)
        return out
    finally:
        con.close()


def hot_rows(warehouse: Path, model: str, column: str, upto) -> int:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(f"select count(*) from main.{model} where {column} <= ?", [upto]).fetchone()[0]
    finally:
        con.close()


def fresh_copy(base: Path, base_warehouse: Path, dest: Path) -> tuple[Path, Path]:
    """A data dir sharing the base lake (read only) but with its own history, and a copy of the built warehouse."""
    (dest / "lake").mkdir(parents=True)
    for part in LAKE_PARTS:
        (dest / "lake" / part).symlink_to(base / "lake" / part)
    wh = dest / "warehouse" / "tally.duckdb"
    wh.parent.mkdir(parents=True)
    copy_warehouse(base_warehouse, wh)
    return dest, wh


@pytest.fixture(scope="module")
def history_build(tmp_path_factory: pytest.TempPathFactory):
    """The 120-day world landed and built once (nothing archived); tests archive copies of it."""
    root = tmp_path_factory.mktemp("history")
    simulate(HISTORY_WORLD, root / "world")
    land([root / "world" / "landing"], root / "base" / "lake", gate=False)
    warehouse = root / "base" / "warehouse" / "tally.duckdb"
    dbt(["build", "--quiet"], root / "base", warehouse, target_path=root / "target")
    return root, root / "base", warehouse


def test_archive_rebuild_and_restore_keep_history_identical(history_build, tmp_path: Path):
    root, base, base_wh = history_build
    data, wh = fresh_copy(base, base_wh, tmp_path / "data")
    before = history_totals(wh)

    done = archive(wh, data, RETENTION_DAYS, quiet=True)
    archived = [(m, v) for m, v, outcome in done if outcome.startswith("archived")]
    assert {m for m, _ in archived} == {"fct_recon_results", "fct_journal_lines"}
    cutoff = max(v for _, v in archived)
    assert history_totals(wh) == before
    # the hot tables really shrank, and the partitions are Parquet on disk, verified and deleted in the manifest
    assert hot_rows(wh, "fct_recon_results", "bill_date", cutoff) == 0
    assert hot_rows(wh, "fct_journal_lines", "posted_on", cutoff) == 0
    states = latest_states(data)
    assert all(states[(m, v)]["state"] == "deleted" for m, v in archived)
    some = archived[0]
    files = list(partition_dir(data, *_model_and_date(some)).glob("*.parquet"))
    assert len(files) == 1 and pq.read_metadata(files[0]).row_group(0).column(0).compression == "ZSTD"

    # idempotent: a second run archives nothing
    again = archive(wh, data, RETENTION_DAYS, quiet=True)
    assert not [d for d in again if d[2].startswith("archived")]
    assert history_totals(wh) == before

    # a rebuild recomputes the marts from the lake but leaves archived partitions out of hot; the history, the
    # archive parity (INV-25) and the seals of closed days (INV-23) hold
    target = tmp_path / "target"
    dbt(["build", "--quiet"], data, wh, target_path=target)
    assert not failed_tests(target)
    assert history_totals(wh) == before
    assert hot_rows(wh, "fct_recon_results", "bill_date", cutoff) == 0

    # publish serves the history as a view of the hot fact and a table of its archived partitions: every served
    # relation still equals the warehouse's, row for row, with partitions archived
    serving = tmp_path / "serving" / "tally.duckdb"
    publish(wh, serving, target=target, data_dir=data)
    served = served_totals(serving)
    assert {"fct_recon_results", "fct_journal_lines", "hist_recon_results"} <= set(served)
    assert served == warehouse_totals(wh, served)

    # restore one day of each model: hot again, history unchanged, and the next archive moves it again
    for model, column in (("fct_recon_results", "bill_date"), ("fct_journal_lines", "posted_on")):
        day = max(v for m, v in archived if m == model)
        n = restore(wh, data, model, day)
        assert n > 0 and hot_rows(wh, model, column, day) - hot_rows(wh, model, column, day - _one_day()) == n
        assert latest_states(data)[(model, day)]["state"] == "restored"
        assert history_totals(wh) == before
    rearchived = archive(wh, data, RETENTION_DAYS, quiet=True)
    assert len([d for d in rearchived if d[2].startswith("archived")]) == 2
    assert history_totals(wh) == before


def _one_day():
    return dt.timedelta(days=1)


def _model_and_date(archived: tuple) -> tuple:
    from tally.archive import history_models

    model, value = archived
    return history_models()[model], value


def _archive_cmd(data: Path, wh: Path) -> list[str]:
    return [sys.executable, "-m", "tally", "archive", "--retention-days", str(RETENTION_DAYS),
            "--data-dir", str(data), "--warehouse", str(wh)]


def _env(**extra: str) -> dict:
    return dict(os.environ, PYTHONPATH=str(PROJECT_DIR / "scripts"), DBT_PROFILES_DIR=str(PROJECT_DIR), **extra)


def test_archive_refuses_a_build_that_did_not_see_everything_landed(history_build, tmp_path: Path):
    """Archive freezes partitions as the last build left them. After a replay of an earlier day (`--vars as_of`),
    whose facts lack what was landed later, and after a plain build followed by a decision landed since, it refuses
    and writes nothing; after a plain build of everything it archives."""
    root, base, base_wh = history_build
    data = tmp_path / "data"  # its own lake (a decision is landed below), not the shared one
    shutil.copytree(base / "lake", data / "lake")
    wh = data / "warehouse" / "tally.duckdb"
    wh.parent.mkdir(parents=True)
    copy_warehouse(base_wh, wh)
    con = duckdb.connect(str(wh), read_only=True)
    latest = con.execute("select max(as_of_date) from main.fct_recon_results").fetchone()[0]
    con.close()
    replay = latest - dt.timedelta(days=20)
    dbt(["build", "--quiet", "--vars", f"{{as_of: {replay.isoformat()}}}"], data, wh, target_path=tmp_path / "t1")
    with pytest.raises(ArchiveError, match=f"a build as of {replay}, but the latest bill date landed is {latest}"):
        archive(wh, data, RETENTION_DAYS, quiet=True)
    assert latest_states(data) == {} and not [p for p in history_dir(data).rglob("*") if p.name != ".lock"]

    # a decision filed after the last plain build: the build did not see it, archive would freeze its break open
    dbt(["build", "--quiet"], data, wh, target_path=tmp_path / "t2")
    con = duckdb.connect(str(wh), read_only=True)
    key, = con.execute("select min(recon_key) from main.fct_recon_open_breaks").fetchone()
    con.close()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / f"internal_dispositions_{latest:%Y%m%d}.csv").write_text(
        f"recon_key,disposition,decided_by,decided_at,note\n{key},manual_review,ana,{latest} 18:00:00,late\n")
    assert [r.status for r in land([inbox], data / "lake", out=None, gate=False)] == ["landed"]
    with pytest.raises(ArchiveError, match="1 delivered file.* not in the warehouse's last build"):
        archive(wh, data, RETENTION_DAYS, quiet=True)
    assert latest_states(data) == {}

    dbt(["build", "--quiet"], data, wh, target_path=tmp_path / "t3")
    done = archive(wh, data, RETENTION_DAYS, quiet=True)
    assert any(outcome.startswith("archived") for _, _, outcome in done)


def test_archive_killed_at_every_step_then_rerun_is_identical(history_build, tmp_path: Path):
    root, base, base_wh = history_build
    data, wh = fresh_copy(base, base_wh, tmp_path / "data")
    before = history_totals(wh)
    rng = random.Random(6)
    # SIGKILL right after each step of the state machine (at a random partition), then at a random moment
    for point in ("file_written", "written", "verified", "hot_deleted", "file_written", "verified"):
        run = subprocess.run(_archive_cmd(data, wh), env=_env(TALLY_ARCHIVE_KILL_AT=f"{point}:{rng.randint(1, 20)}"),
                             capture_output=True, text=True)
        assert run.returncode == -signal.SIGKILL, run.stdout + run.stderr
        assert history_totals(wh) == before  # what a reader sees is whole at every kill point
    proc = subprocess.Popen(_archive_cmd(data, wh), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.5, 2.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # what a kill in the middle of writing a manifest event leaves (the random kill above lands there only sometimes)
    (history_dir(data) / "_manifest" / ".000000009999-fct_recon_results-2024-03-01-written.parquet.tmp-1").write_bytes(
        b"PAR1 half")
    final = subprocess.run(_archive_cmd(data, wh), env=_env(), capture_output=True, text=True)
    assert final.returncode == 0, final.stdout + final.stderr
    assert history_totals(wh) == before

    # the same end state as an uninterrupted archive of the same warehouse
    clean_data, clean_wh = fresh_copy(base, base_wh, tmp_path / "clean")
    archive(clean_wh, clean_data, RETENTION_DAYS, quiet=True)
    assert {k: e["state"] for k, e in latest_states(data).items()} == \
        {k: e["state"] for k, e in latest_states(clean_data).items()}
    for model in ("fct_recon_results", "fct_journal_lines"):
        con = duckdb.connect(str(wh), read_only=True)
        hot = con.execute(f"select count(*) from main.{model}").fetchone()
        con.close()
        con = duckdb.connect(str(clean_wh), read_only=True)
        assert con.execute(f"select count(*) from main.{model}").fetchone() == hot
        con.close()
    assert not list(history_dir(data).rglob(".*.tmp-*"))  # no half-written file left visible or behind

    target = tmp_path / "target"
    dbt(["test", "--quiet", "--select", "assert_archive_parity", "hist_recon_results", "hist_journal_lines"],
        data, wh, target_path=target)
    assert not failed_tests(target)


def test_archive_parity_fails_on_a_corrupted_partition(history_build, tmp_path: Path):
    root, base, base_wh = history_build
    data, wh = fresh_copy(base, base_wh, tmp_path / "data")
    archive(wh, data, RETENTION_DAYS, quiet=True)
    target = tmp_path / "target"
    select = ["test", "--quiet", "--select", "assert_archive_parity"]
    # (it passes on an intact archive: see the rebuild in test_archive_rebuild_and_restore_keep_history_identical)

    # one archived journal leg lost from its Parquet partition
    part = sorted((history_dir(data) / "fct_journal_lines").glob("posted_on=2024-*/part-0.parquet"))[3]
    table = pq.read_table(part)
    pq.write_table(table.slice(1), part, compression="zstd")
    with pytest.raises(RuntimeError):
        dbt(select, data, wh, target_path=target)
    assert failed_tests(target) == {"assert_archive_parity"}

    # and the archive refuses to restore it
    from tally.archive import ArchiveError

    value = __import__("datetime").date.fromisoformat(part.parent.name.split("=")[1])
    with pytest.raises(ArchiveError, match="does not match its manifest"):
        restore(wh, data, "fct_journal_lines", value)

    # the partition back as it was, but rows left in (or rebuilt into) hot for a deleted partition fail too
    pq.write_table(table, part, compression="zstd")
    con = duckdb.connect(str(wh))
    con.execute("insert into main.fct_journal_lines select * from main_history.hist_journal_lines "
                "where posted_on = ?", [value])
    con.close()
    with pytest.raises(RuntimeError):
        dbt(select, data, wh, target_path=target)
    assert failed_tests(target) == {"assert_archive_parity"}


def test_seal_fails_when_a_closed_day_changes(history_build, tmp_path: Path):
    root, base, base_wh = history_build
    data, wh = fresh_copy(base, base_wh, tmp_path / "data")
    con = duckdb.connect(str(wh), read_only=True)
    sealed = con.execute("select sealed_model, count(*), max(business_date), max(sealed_as_of) "
                         "from main_history.hist_closed_day_seals group by 1 order by 1").fetchall()
    con.close()
    # every day up to the closing window before the as-of date is sealed, for both models
    assert [s[0] for s in sealed] == ["fct_journal_lines", "fct_recon_results"]
    assert all((s[3] - s[2]).days >= 7 for s in sealed)

    target = tmp_path / "target"
    select = ["test", "--quiet", "--select", "assert_closed_days_match_seals"]
    # (it passes on the intact build: the fixture's build is green)

    # a closed day restated: one journal leg of a sealed day moved to another sub-account (same count, same sums:
    # only the hash sees it)
    con = duckdb.connect(str(wh))
    day = con.execute("select min(posted_on) from main.fct_journal_lines").fetchone()[0]
    con.execute("""update main.fct_journal_lines set sub_account = sub_account || '-restated'
                   where (journal_id, leg_no) in (select journal_id, leg_no from main.fct_journal_lines
                                                 where posted_on = ? order by journal_id, leg_no limit 1)""", [day])
    con.close()
    with pytest.raises(RuntimeError):
        dbt(select, data, wh, target_path=target)
    assert failed_tests(target) == {"assert_closed_days_match_seals"}
