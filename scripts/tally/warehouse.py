"""The DuckDB warehouse is two files: the warehouse (marts, history, seeds: what publish serves) and, beside it, the
work file (`<name>.work.duckdb`: the staging and intermediate models, dbt's working tables).

dbt writes staging and intermediate models to the work file (profiles.yml `attach`, dbt_project.yml
`+database: work`), so the warehouse holds only what is served and publish copies that file whole instead of
rewriting every mart. `connect()` opens both, so `main_staging.x`, `main_intermediate.x` and `main.fct_x` resolve
as they would in one file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

WORK_ALIAS = "work"  # the attach alias in profiles.yml: dbt's compiled SQL names the work file's relations by it
WORK_SCHEMAS = ("main_staging", "main_intermediate")


def work_path(warehouse: Path) -> Path:
    """The work file beside `warehouse`: tally.duckdb -> tally.work.duckdb (profiles.yml spells the same rule)."""
    warehouse = Path(warehouse)
    stem = warehouse.name.removesuffix(".duckdb")
    return warehouse.with_name(f"{stem}.work.duckdb")


def connect(warehouse: Path, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """The warehouse with its work file attached (as dbt attaches it); unqualified and schema-qualified names
    resolve in either file."""
    con = duckdb.connect(str(warehouse), read_only=read_only)
    try:
        work = work_path(warehouse)
        if not work.exists():
            raise FileNotFoundError(f"{work}: the warehouse's work file is missing (run `dbt build`)")
        con.execute(f"attach '{work.as_posix()}' as {WORK_ALIAS}{' (read_only)' if read_only else ''}")
        catalog = con.execute("select current_database()").fetchone()[0]
        built = {s for (s,) in con.execute("select schema_name from duckdb_schemas() where database_name = ?",
                                           [WORK_ALIAS]).fetchall()}  # a partial build may have made one only
        paths = [f"{catalog}.main", *(f"{WORK_ALIAS}.{s}" for s in WORK_SCHEMAS if s in built)]
        con.execute(f"set search_path = '{','.join(paths)}'")
    except BaseException:
        con.close()
        raise
    return con


def copy(src: Path, dst: Path) -> None:
    """Copy a closed warehouse and its work file (and their WALs, if any) to `dst` and its work path."""
    for a, b in ((Path(src), Path(dst)), (work_path(src), work_path(dst))):
        shutil.copyfile(a, b)
        wal = a.with_name(a.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, b.with_name(b.name + ".wal"))
