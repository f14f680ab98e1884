"""Publish (write–audit–publish): copy the marts of a green `dbt build` into a serving DuckDB file for BI.

`dbt build` writes the warehouse and runs the data tests after each model is built, so the warehouse can hold a
model that then fails its tests, and DuckDB lets one process write a file or many read it, never both. BI
therefore never opens the warehouse: `publish()` checks that the last `dbt build` (its `run_results.json`) built
every node and passed every test, copies the warehouse file (the public marts `fct_`, `rpt_`, `dim_`, the `hist_`
models and the seeds; staging and intermediate models are in its work file) to a temporary name, leaves only the
public relations in it, adds a `publish_manifest` table (row counts and money sums per relation, the build's
invocation id), and renames it over the serving file with `os.replace`. A failed build or a
failing test leaves the previous serving file as it was. Readers that have the old file open keep reading the old
snapshot until they reconnect.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import shutil
from pathlib import Path

import duckdb

from tally.archive import history_models
from tally.pipeline import duckdb_memory_limit

# public relations BI may read: the marts in the warehouse's main schema with these prefixes, and the hist_ models
SERVED_MARTS = ("fct_", "rpt_", "dim_")
# a serving connection: read only, no file or network access, settings locked (DuckDB has no users or grants)
READ_ONLY_CONFIG = {"enable_external_access": "false", "lock_configuration": "true"}


class PublishRefused(RuntimeError):
    pass


def build_verdict(target: Path) -> dict:
    """The last dbt invocation in `target` if it was a complete, green `dbt build`; raise PublishRefused if not."""
    path = Path(target) / "run_results.json"
    if not path.exists():
        raise PublishRefused(f"{path}: no dbt run results; run `dbt build` first")
    results = json.loads(path.read_text())
    args = results.get("args", {})
    if args.get("which") != "build":
        raise PublishRefused(f"{path}: the last dbt invocation was `{args.get('which')}`, not `build`")
    if args.get("select") or args.get("exclude") or args.get("selector"):
        raise PublishRefused(f"{path}: the last build was partial (select/exclude); publish needs a full build")
    bad = [(r["unique_id"], r["status"]) for r in results["results"]
           if r["status"] not in ("success", "pass", "warn")]
    if bad:
        shown = ", ".join(f"{uid} {status}" for uid, status in bad[:5])
        raise PublishRefused(f"{path}: the last build was not green ({len(bad)} nodes: {shown}); not published")
    return {"invocation_id": results["metadata"]["invocation_id"],
            "generated_at": results["metadata"]["generated_at"]}


def _relations(con: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str, str]]:
    """(schema, name, 'table' | 'view') of every relation in `catalog`."""
    return con.execute(
        "select table_schema, table_name, case table_type when 'VIEW' then 'view' else 'table' end "
        "from information_schema.tables where table_catalog = ? order by table_schema, table_name",
        [catalog]).fetchall()


def _columns(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> list[str]:
    return [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_catalog = 'serving' and table_schema = ? "
        "and table_name = ? order by ordinal_position", [schema, name]).fetchall()]


def _remove_abandoned_copies(serving: Path) -> None:
    """Delete the half-made copies (`.<name>.tmp-<pid>`, and their WALs) of publishes whose process is gone: one
    killed mid-way cannot clean up after itself, and each such copy is as large as the warehouse. A copy of a live
    process (another publish now) is left alone. This process's own pid is always stale here: the copy is made after
    this, and a leftover is from an earlier publish that failed or from a process whose pid this one reuses. Pids are
    those of this machine: two machines publishing into one shared directory would take each other's for dead."""
    prefix = f".{serving.name}.tmp-"
    for path in serving.parent.glob(glob.escape(prefix) + "*"):
        pid = path.name.removeprefix(prefix).removesuffix(".wal")
        if not re.fullmatch(r"[0-9]{1,9}", pid):  # not a copy of ours
            continue
        if int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
                continue
            except ProcessLookupError:
                pass
            except PermissionError:  # it exists, under another user
                continue
        path.unlink(missing_ok=True)


def publish(warehouse: Path, serving: Path, target: Path | None = None, data_dir: Path | None = None) -> dict:
    """Publish the served relations of `warehouse` to `serving`, atomically. With `target`, only after checking that
    the build recorded there was complete and green. `data_dir` is where relative lake paths in the hist_ views
    resolve (the TALLY_DATA_DIR's parent, i.e. the directory dbt ran in). Returns the publish manifest rows.

    The warehouse file holds only what is served (staging and intermediate models are in its work file), so it is
    copied as a file: DuckDB then does not decompress and recompress every mart into a new file. In the copy the
    seeds are dropped and the history is made self-contained (below)."""
    verdict = build_verdict(target) if target is not None else {"invocation_id": None, "generated_at": None}
    warehouse, serving = Path(warehouse), Path(serving)
    serving.parent.mkdir(parents=True, exist_ok=True)
    tmp = serving.with_name(f".{serving.name}.tmp-{os.getpid()}")
    _remove_abandoned_copies(serving)
    if warehouse.with_name(warehouse.name + ".wal").exists():
        duckdb.connect(str(warehouse)).close()  # closing checkpoints: the file alone is then the whole warehouse
    shutil.copyfile(warehouse, tmp)
    con = duckdb.connect()
    try:  # on any failure the half-made copy goes; the serving file is untouched
        # the same ceiling as the dbt profile's, so publishing a big day spills instead of taking the machine
        con.execute("set memory_limit = ?", [duckdb_memory_limit()])
        if data_dir is not None:
            con.execute("set file_search_path = ?", [str(Path(data_dir).resolve())])
        con.execute(f"attach '{tmp.as_posix()}' as serving")
        con.execute("use serving")  # so the views bind to the serving file's own tables when BI opens it alone
        archived = {"hist_" + name.removeprefix("fct_"): (name, m.partition_by) for name, m in history_models().items()}
        relations = _relations(con, "serving")
        for schema, name, _ in relations:
            if schema == "main_history" and name.startswith("hist_"):
                if name in archived:
                    # the hist_ view reads the archive's Parquet, which a serving connection may not (no external
                    # access): its archived partitions become a table, and hist_ a view of the hot fact and them
                    fct, part = archived[name]
                    con.execute(f'create table main."{name}_archived" as select * from main_history."{name}" '
                                f'where {part} not in (select distinct {part} from main."{fct}")')
                    cols = ", ".join(f'"{c}"' for c in _columns(con, "main_history", name))
                    con.execute(f'create view main."{name}" as select {cols} from main."{fct}" '
                                f'union all select {cols} from main."{name}_archived"')
                else:
                    con.execute(f'create table main."{name}" as select * from main_history."{name}"')
        for schema, name, kind in relations:
            if not (schema == "main" and name.startswith(SERVED_MARTS)):
                con.execute(f'drop {kind} if exists "{schema}"."{name}" cascade')
        for schema in {s for s, _, _ in relations} - {"main"}:
            con.execute(f'drop schema if exists "{schema}" cascade')
        manifest = []
        published_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        for _, name, _ in _relations(con, "serving"):
            money = [c for c in _columns(con, "main", name) if c.endswith("_fen")]
            sums = " || ';' || ".join(f"'{c}=' || cast(cast(coalesce(sum({c}), 0) as bigint) as varchar)"
                                      for c in money) or "''"
            n, amounts = con.execute(f'select count(*), {sums} from main."{name}"').fetchone()
            manifest.append((name, n, amounts, published_at, verdict["invocation_id"], verdict["generated_at"]))
        con.execute("""
            create table main.publish_manifest (
                relation_name varchar, row_count bigint, amount_sums varchar, published_at timestamp,
                build_invocation_id varchar, build_generated_at varchar
            )""")
        con.executemany("insert into main.publish_manifest values (?, ?, ?, ?, ?, ?)", manifest)
        con.execute("checkpoint serving")
        con.execute("use memory")
        con.execute("detach serving")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, serving)  # readers see the old file or the new one, never a part
    fd = os.open(serving.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return {name: (n, amounts) for name, n, amounts, *_ in manifest}


def connect_serving(serving: Path) -> duckdb.DuckDBPyConnection:
    """A BI-style connection: read only, no external access, configuration locked."""
    return duckdb.connect(str(serving), read_only=True, config=READ_ONLY_CONFIG)
