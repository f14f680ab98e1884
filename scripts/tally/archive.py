"""History: move closed partitions of the large facts out of the hot warehouse into hive-partitioned Parquet, and back.

`archive()` takes each partition (a business date) of the models in dbt_project.yml's `tally_history` var that is
older than the retention window through three states, each recorded in the append-only archive manifest
(`lake/history/_manifest/`, one Parquet file per event) before the next step starts:

1. `written`: the hot rows are copied to `lake/history/<model>/<column>=<date>/part-0.parquet` (zstd), written
   under a temporary name and renamed into place; the event records the hot table's count, money sums and row hash.
2. `verified`: the Parquet is read back and its count, sums and hash equal the hot table's. From here on the
   `hist_` models read the partition from the archive and never from hot, and the hot model leaves it out when it is
   rebuilt, so no state shows a row twice or loses one.
3. `deleted`: the hot rows are deleted.

A run killed at any point is finished by the next run: a partition without an event is started again, `written` is
verified again from hot (the hot rows are still there), `verified` is re-checked against its own event and deleted.
A `deleted` partition is skipped, so a rerun archives nothing twice. `restore()` puts a partition back in the hot
table and records `restored`.

The warehouse is opened read-write: run it when no `dbt build` runs (the nightly job runs build, archive, publish
in turn). A lock file keeps two archive runs apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
HOT_SCHEMA = "main"

MANIFEST_SCHEMA = pa.schema([
    ("event_seq", pa.int64()),
    ("model_name", pa.string()),
    ("partition_column", pa.string()),
    ("partition_value", pa.date32()),
    ("state", pa.string()),
    ("row_count", pa.int64()),
    ("amount_sums", pa.string()),
    ("rows_hash", pa.string()),
    ("file_path", pa.string()),
    ("recorded_at", pa.timestamp("us")),
])


class ArchiveError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Stats:
    """What a partition must keep: row count, money sums (`col=fen;…`) and an order-independent row hash. The same
    expressions as the dbt macros `amount_sums` and `rows_hash`, so the dbt test INV-25 can recompute them."""

    row_count: int
    amount_sums: str
    rows_hash: str


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str
    partition_by: str
    amounts: tuple[str, ...]


def project_vars() -> dict:
    return yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


def history_models() -> dict[str, ModelConfig]:
    return {name: ModelConfig(name, c["partition_by"], tuple(c["amounts"]))
            for name, c in project_vars()["tally_history"].items()}


def closing_days() -> int:
    return int(project_vars()["tally_closing_days"])


def history_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "lake" / "history"


def partition_dir(data_dir: Path, model: ModelConfig, value: dt.date) -> Path:
    return history_dir(data_dir) / model.name / f"{model.partition_by}={value.isoformat()}"


# --- crash injection for the tests: TALLY_ARCHIVE_KILL_AT=<point>:<n> SIGKILLs this process at the n-th time it
# passes <point> (file_written, written, verified, hot_deleted, restored_hot), like a power cut there.
_kill_counts: dict[str, int] = {}


def _checkpoint(point: str) -> None:
    spec = os.environ.get("TALLY_ARCHIVE_KILL_AT")
    if not spec:
        return
    name, _, n = spec.partition(":")
    if name == point:
        _kill_counts[point] = _kill_counts.get(point, 0) + 1
        if _kill_counts[point] == int(n or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


# --- the manifest -------------------------------------------------------------------------------------------------

def read_manifest(data_dir: Path) -> list[dict]:
    files = sorted((history_dir(data_dir) / "_manifest").glob("*.parquet"))
    if not files:
        return []
    return pa.concat_tables([pq.read_table(f, schema=MANIFEST_SCHEMA) for f in files]).sort_by("event_seq").to_pylist()


def latest_states(data_dir: Path) -> dict[tuple[str, dt.date], dict]:
    """(model, partition) -> its latest manifest event."""
    out: dict[tuple[str, dt.date], dict] = {}
    for event in read_manifest(data_dir):  # in event_seq order: the last one wins
        out[(event["model_name"], event["partition_value"])] = event
    return out


def _latest_event(data_dir: Path, model: str, value: dt.date, state: str) -> dict | None:
    found = None
    for event in read_manifest(data_dir):
        if event["model_name"] == model and event["partition_value"] == value and event["state"] == state:
            found = event
    return found


def _record(data_dir: Path, model: ModelConfig, value: dt.date, state: str, stats: Stats | None) -> None:
    """Append one event: its own file, named by a sequence number one past the highest, written then renamed."""
    folder = history_dir(data_dir) / "_manifest"
    folder.mkdir(parents=True, exist_ok=True)
    seqs = [int(p.name.split("-", 1)[0]) for p in folder.glob("*.parquet")]
    seq = max(seqs, default=0) + 1
    rel = partition_dir(data_dir, model, value).relative_to(history_dir(data_dir)) / "part-0.parquet"
    row = {
        "event_seq": seq, "model_name": model.name, "partition_column": model.partition_by, "partition_value": value,
        "state": state, "row_count": stats.row_count if stats else None,
        "amount_sums": stats.amount_sums if stats else None, "rows_hash": stats.rows_hash if stats else None,
        "file_path": rel.as_posix(), "recorded_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }
    _atomic_table(pa.Table.from_pylist([row], schema=MANIFEST_SCHEMA),
                  folder / f"{seq:012d}-{model.name}-{value.isoformat()}-{state}.parquet")


# --- statistics, the same on hot rows and on Parquet ----------------------------------------------------------------

def _columns(con: duckdb.DuckDBPyConnection, model: ModelConfig) -> list[tuple[str, str]]:
    rows = con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [HOT_SCHEMA, model.name]).fetchall()
    if not rows:
        raise ArchiveError(f"{model.name}: no table {HOT_SCHEMA}.{model.name} in the warehouse (run dbt build first)")
    return rows


def _stats_sql(relation: str, model: ModelConfig, columns: list[tuple[str, str]]) -> str:
    sums = " || ';' || ".join(
        f"'{c}=' || cast(cast(coalesce(sum({c}), 0) as bigint) as varchar)" for c in model.amounts)
    names = ", ".join(c for c, _ in columns)
    return (f"select count(*), {sums}, cast(coalesce(sum(hash({names})), 0) as varchar) "
            f"from {relation} as r where {model.partition_by} = ?")


def hot_stats(con: duckdb.DuckDBPyConnection, model: ModelConfig, value: dt.date) -> Stats:
    columns = _columns(con, model)
    return Stats(*con.execute(_stats_sql(f"{HOT_SCHEMA}.{model.name}", model, columns), [value]).fetchone())


def _parquet_relation(data_dir: Path, model: ModelConfig, value: dt.date, columns: list[tuple[str, str]]) -> str:
    """The archived partition typed like the hot table (the partition column comes from the hive path)."""
    glob = (partition_dir(data_dir, model, value) / "*.parquet").as_posix().replace("'", "''")
    casts = ", ".join(f"cast({c} as {t}) as {c}" for c, t in columns)
    return (f"(select {casts} from read_parquet('{glob}', hive_partitioning = true, "
            f"hive_types = {{'{model.partition_by}': date}}))")


def parquet_stats(con: duckdb.DuckDBPyConnection, data_dir: Path, model: ModelConfig, value: dt.date) -> Stats:
    columns = _columns(con, model)
    if not (partition_dir(data_dir, model, value) / "part-0.parquet").exists():
        return Stats(0, "", "")
    return Stats(*con.execute(_stats_sql(_parquet_relation(data_dir, model, value, columns), model, columns),
                              [value]).fetchone())


# --- archive and restore ------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    folder = history_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchiveError(f"{folder}: another archive or restore is running") from None
        # a run killed while writing a manifest event leaves its temp file; holding the lock, nobody else writes one
        for stale in (folder / "_manifest").glob(".*.tmp-*"):
            stale.unlink()
        yield


def _ensure_history_files(con: duckdb.DuckDBPyConnection, data_dir: Path) -> bool:
    """Give the manifest and each archived model one zero-row Parquet file (a 1970-01-01 partition no event names)
    if it has none: the hist_ views read the folders by glob only if a file was there when they were built. Returns
    True if a file was created, i.e. the views must be rebuilt once."""
    created = False
    root = history_dir(data_dir)
    if not list((root / "_manifest").glob("*.parquet")):
        path = root / "_manifest" / "000000000000-schema.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_table(MANIFEST_SCHEMA.empty_table(), path)
        created = True
    for model in history_models().values():
        if not list((root / model.name).glob("*/*.parquet")):
            names = ", ".join(c for c, _ in _columns(con, model) if c != model.partition_by)
            empty = con.sql(f"select {names} from {HOT_SCHEMA}.{model.name} where 1 = 0").to_arrow_table()
            path = partition_dir(data_dir, model, dt.date(1970, 1, 1)) / "part-0.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_table(empty, path)
            created = True
    return created


def _atomic_table(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _write_partition(con: duckdb.DuckDBPyConnection, data_dir: Path, model: ModelConfig, value: dt.date) -> None:
    folder = partition_dir(data_dir, model, value)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.tmp-*"):  # left by a run killed while writing
        stale.unlink()
    final = folder / "part-0.parquet"
    tmp = folder / f".part-0.parquet.tmp-{os.getpid()}"
    # the partition column lives in the path (hive layout), not in the file
    names = ", ".join(c for c, _ in _columns(con, model) if c != model.partition_by)
    con.execute(f"copy (select {names} from {HOT_SCHEMA}.{model.name} where {model.partition_by} = ?) "
                f"to '{tmp.as_posix()}' (format parquet, compression zstd)", [value])
    _fsync_file(tmp)
    os.replace(tmp, final)
    _fsync_dir(folder)


def _archive_partition(con: duckdb.DuckDBPyConnection, data_dir: Path, model: ModelConfig, value: dt.date,
                       last_event: dict | None) -> str:
    """Take one partition from its latest manifest event to `deleted`; return what was done."""
    where = f"{model.name} {model.partition_by}={value}"
    state = last_event["state"] if last_event else None
    if state == "deleted":
        return "already archived"
    if state in (None, "written", "restored"):
        hot = hot_stats(con, model, value)
        if hot.row_count == 0:
            return "no hot rows"
        _write_partition(con, data_dir, model, value)
        _checkpoint("file_written")
        _record(data_dir, model, value, "written", hot)
        _checkpoint("written")
        back = parquet_stats(con, data_dir, model, value)
        if back != hot:
            raise ArchiveError(f"{where}: the Parquet read back does not match the hot table: hot {hot}, "
                               f"Parquet {back}; the hot rows are kept")
        _record(data_dir, model, value, "verified", back)
        _checkpoint("verified")
        expected = back
    else:  # verified by an earlier run that stopped before the delete: check the file against that event
        expected = Stats(last_event["row_count"], last_event["amount_sums"], last_event["rows_hash"])
        back = parquet_stats(con, data_dir, model, value)
    if back != expected:
        raise ArchiveError(f"{where}: the archived Parquet no longer matches its manifest: manifest {expected}, "
                           f"Parquet {back}; the hot rows (if any) are kept")
    con.execute(f"delete from {HOT_SCHEMA}.{model.name} where {model.partition_by} = ?", [value])
    _checkpoint("hot_deleted")
    _record(data_dir, model, value, "deleted", back)
    return f"archived {back.row_count} rows"


def default_as_of(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The as-of date of the last build (every fact carries it)."""
    row = con.execute(f"select max(as_of_date) from {HOT_SCHEMA}.fct_recon_results").fetchone()
    if row[0] is None:
        raise ArchiveError("the warehouse has no reconciliation facts: give --as-of")
    return row[0]


def _check_last_build_is_current(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Archive freezes partitions as the last build left them, so that build must have been a plain build of
    everything landed: not a replay or what-if build (`--vars '{as_of: ...}'`), and no delivery landed since (a
    decision, a late file), or the frozen facts would lack it. Its as-of date must be the latest bill date landed
    (what a plain build takes, macro as_of_date) and every delivery in the lake's ledger must be in its
    `dim_file_deliveries`."""
    built = con.execute(f"select max(as_of_date) from {HOT_SCHEMA}.fct_recon_results").fetchone()[0]
    ledger = Path(data_dir) / "lake" / "ledger"
    if built is None or not any(ledger.glob("*.parquet")):
        return
    glob = (ledger / "*.parquet").as_posix().replace("'", "''")
    latest, unseen = con.execute(
        f"""select max(bill_date) filter (where status = 'landed' and format <> 'internal_dispositions'),
                   count(*) filter (where delivery_id not in (select delivery_id from {HOT_SCHEMA}.dim_file_deliveries))
            from read_parquet('{glob}')""").fetchone()
    if latest is not None and built != latest:
        raise ArchiveError(f"the warehouse holds a build as of {built}, but the latest bill date landed is {latest} "
                           "(a build with --vars as_of): archiving would freeze that build's facts. Run a plain "
                           "`dbt build` first")
    if unseen:
        raise ArchiveError(f"{unseen} delivered file(s) in the lake are not in the warehouse's last build (landed "
                           "since, or unknown to a build with --vars as_of): archiving would freeze facts without "
                           "them. Run a plain `dbt build` first")


def refresh_history_views(data_dir: Path, warehouse: Path) -> None:
    """Rebuild the two hist_ views (after the history folders got their first files); run results go to a
    scratch target so the last build's verdict, which publish reads, stays where it is."""
    import tempfile

    from tally.pipeline import dbt

    with tempfile.TemporaryDirectory(prefix="tally-hist-views-") as target:
        dbt(["run", "--select", *history_models_views()], data_dir, warehouse, target_path=Path(target), quiet=True)


def history_models_views() -> list[str]:
    return ["hist_" + name.removeprefix("fct_") for name in history_models()]


def archive(warehouse: Path, data_dir: Path, retention_days: int, as_of: dt.date | None = None,
            quiet: bool = False) -> list[tuple[str, dt.date, str]]:
    """Archive every partition older than `retention_days` before the as-of date; finish any partition a killed
    run left half-way. Returns (model, partition, outcome) for each partition looked at."""
    if retention_days < closing_days():
        raise ArchiveError(f"retention of {retention_days} days is shorter than the closing window "
                           f"({closing_days()} days, var tally_closing_days): only closed, sealed days are archived")
    data_dir = Path(data_dir)
    done: list[tuple[str, dt.date, str]] = []
    with _locked(data_dir):
        con = duckdb.connect(str(warehouse))
        try:
            _check_last_build_is_current(con, data_dir)
            as_of = as_of or default_as_of(con)
            if _ensure_history_files(con, data_dir):
                con.close()  # dbt needs the warehouse
                refresh_history_views(data_dir, warehouse)
                con = duckdb.connect(str(warehouse))
            cutoff = as_of - dt.timedelta(days=retention_days)
            states = latest_states(data_dir)
            for model in history_models().values():
                _columns(con, model)  # a clear error when the table is missing
                hot = {r[0] for r in con.execute(
                    f"select distinct {model.partition_by} from {HOT_SCHEMA}.{model.name} "
                    f"where {model.partition_by} <= ?", [cutoff]).fetchall()}
                unfinished = {v for (m, v), e in states.items() if m == model.name and e["state"] in
                              ("written", "verified")}
                for value in sorted(hot | unfinished):
                    outcome = _archive_partition(con, data_dir, model, value, states.get((model.name, value)))
                    done.append((model.name, value, outcome))
                    if not quiet:
                        print(f"{model.name} {model.partition_by}={value}: {outcome}")
            con.execute("checkpoint")
        finally:
            con.close()
    return done


def restore(warehouse: Path, data_dir: Path, model_name: str, value: dt.date) -> int:
    """Bring one archived partition back into the hot table (checked against its manifest first); returns rows."""
    models = history_models()
    if model_name not in models:
        raise ArchiveError(f"{model_name}: not an archived model (one of {', '.join(models)})")
    model = models[model_name]
    data_dir = Path(data_dir)
    with _locked(data_dir):
        state = latest_states(data_dir).get((model.name, value), {}).get("state")
        if state not in ("verified", "deleted"):
            raise ArchiveError(f"{model.name} {model.partition_by}={value}: not archived (manifest state {state})")
        con = duckdb.connect(str(warehouse))
        try:
            verified = _latest_event(data_dir, model.name, value, "verified")
            expected = Stats(verified["row_count"], verified["amount_sums"], verified["rows_hash"])
            back = parquet_stats(con, data_dir, model, value)
            if back != expected:
                raise ArchiveError(f"{model.name} {model.partition_by}={value}: the archived Parquet does not match "
                                   f"its manifest (manifest {expected}, Parquet {back}); not restored")
            columns = _columns(con, model)
            names = ", ".join(c for c, _ in columns)
            con.execute("begin")
            # rows a killed verify-then-delete left behind are replaced, so nothing is doubled
            con.execute(f"delete from {HOT_SCHEMA}.{model.name} where {model.partition_by} = ?", [value])
            con.execute(f"insert into {HOT_SCHEMA}.{model.name} ({names}) select {names} from "
                        f"{_parquet_relation(data_dir, model, value, columns)} as r "
                        f"where {model.partition_by} = ?", [value])
            con.execute("commit")
            if hot_stats(con, model, value) != expected:
                raise ArchiveError(f"{model.name} {model.partition_by}={value}: restored rows do not match")
            _checkpoint("restored_hot")
            _record(data_dir, model, value, "restored", expected)
            con.execute("checkpoint")
        finally:
            con.close()
        shutil.rmtree(partition_dir(data_dir, model, value), ignore_errors=True)
    return expected.row_count
