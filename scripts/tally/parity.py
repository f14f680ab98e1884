"""Engine parity (INV-26): the same landed lake built on DuckDB and on Spark gives the same public marts.

`python -m tally parity` simulates a tiny world, lands it once, runs `dbt build` (every model and data test) on
the `duckdb` target and on the `spark` target, then compares every public mart (contract enforced) across the two:
row count, the sum of each money column (`*_fen`) and an order-independent hash of all columns. The comparison runs
in DuckDB over both sides (the DuckDB warehouse, and the Parquet files Spark wrote for its tables), so the two
engines' hash functions never have to agree; values are normalised to text first (integers of any width alike,
timestamps to the second's text form, decimals at their declared scale). It needs the `spark` extra and Java 17.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from tally.land import land
from tally.simulate import WorldParams, simulate

PROJECT_DIR = Path(__file__).resolve().parents[2]
# A tiny world with every anomaly kind the simulator injects, each often enough to occur a few times in 600
# payments (as the reconciliation tests do): parity is about the SQL paths, not about volume.
_RATE = 0.01
PARITY_WORLD = WorldParams(
    seed=7, days=3, merchants=3, daily_volume=200,
    rate_cross_midnight=_RATE, rate_internal_processing=_RATE, rate_internal_only=_RATE, rate_channel_only=_RATE,
    rate_amount_mismatch=_RATE, rate_fee_mismatch=_RATE, rate_duplicate_channel_row=_RATE, rate_genuine_twin=_RATE,
    rate_refund_frozen=0.3,
)
NULL_TEXT = "\u2400"  # stands for null in a row's text; no lake value holds it


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    columns: tuple[str, ...]
    rows: int
    sums: tuple[tuple[str, int], ...]  # (money column, Σ) in column order
    row_hash: int  # Σ of a 64-bit hash of each row's text: order-independent, sensitive to every value and count

    @property
    def amount_total(self) -> int:
        return sum(s for _, s in self.sums)


@dataclasses.dataclass(frozen=True)
class MartParity:
    mart: str
    left: Fingerprint | None
    right: Fingerprint | None
    differences: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.differences


def _row_text_sql(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str]) -> str:
    """One text per row, the same for equal values whatever type width each engine chose."""
    types = dict(con.execute(f"select column_name, column_type from (describe select * from {relation})").fetchall())
    parts = []
    for c in columns:
        t = types[c].upper()
        q = f'"{c}"'
        if "INT" in t:  # INTEGER on one side, BIGINT on the other: the same number
            expr = f"cast(cast({q} as hugeint) as varchar)"
        elif t.startswith("TIMESTAMP"):  # Spark writes INT96 / microseconds, DuckDB seconds: same instant text
            expr = f"strftime(cast({q} as timestamp), '%Y-%m-%d %H:%M:%S.%f')"
        else:  # varchar, date, boolean, decimal(p,s) (its scale is in the contract, so the text is comparable)
            expr = f"cast({q} as varchar)"
        parts.append(f"coalesce({expr}, '{NULL_TEXT}')")
    return " || chr(31) || ".join(parts) if parts else "''"


def fingerprint(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str] | None = None) -> Fingerprint:
    """Row count, Σ of each `*_fen` column and the row hash of `relation` (a table name or read_parquet(...))."""
    if columns is None:
        columns = [r[0] for r in con.execute(f"describe select * from {relation}").fetchall()]
    money = [c for c in columns if c.endswith("_fen")]
    sums_sql = "".join(f", coalesce(sum(cast(\"{c}\" as hugeint)), 0)" for c in money)
    row = con.execute(
        f"select count(*), coalesce(sum(cast(hash({_row_text_sql(con, relation, columns)}) as hugeint)), 0)"
        f"{sums_sql} from {relation}"
    ).fetchall()[0]
    return Fingerprint(tuple(columns), int(row[0]), tuple(zip(money, (int(s) for s in row[2:]), strict=True)),
                       int(row[1]))


def compare(con: duckdb.DuckDBPyConnection, marts: dict[str, tuple[str, str]]) -> list[MartParity]:
    """For each mart, (left relation, right relation): the same columns, rows, money sums and row hash."""
    results = []
    for mart, (left_rel, right_rel) in marts.items():
        left = fingerprint(con, left_rel)
        right_columns = [r[0] for r in con.execute(f"describe select * from {right_rel}").fetchall()]
        diffs = []
        if right_columns != list(left.columns):
            diffs.append(f"columns differ: {sorted(set(left.columns) ^ set(right_columns)) or 'order'}")
            results.append(MartParity(mart, left, None, tuple(diffs)))
            continue
        right = fingerprint(con, right_rel, list(left.columns))
        if left.rows != right.rows:
            diffs.append(f"rows {left.rows} vs {right.rows}")
        diffs += [f"sum({c}) {a} vs {b}" for (c, a), (_, b) in zip(left.sums, right.sums, strict=True) if a != b]
        if left.row_hash != right.row_hash:
            diffs.append("row hash differs")
        results.append(MartParity(mart, left, right, tuple(diffs)))
    return results


def sample_differing_rows(con: duckdb.DuckDBPyConnection, left_rel: str, right_rel: str, limit: int = 3) -> list:
    """A few rows of each side the other lacks (as normalised text), to say where two builds part."""
    columns = [r[0] for r in con.execute(f"describe select * from {left_rel}").fetchall()]
    lt, rt = _row_text_sql(con, left_rel, columns), _row_text_sql(con, right_rel, columns)
    out = []
    left, right = (lt, left_rel), (rt, right_rel)
    for side, a, b in (("duckdb only", left, right), ("spark only", right, left)):
        rows = con.execute(f"select {a[0]} from {a[1]} except all select {b[0]} from {b[1]} limit {limit}").fetchall()
        out += [(side, r[0].replace(chr(31), " | ")) for r in rows]
    return out


def report(results: list[MartParity], left_name: str = "duckdb", right_name: str = "spark") -> str:
    head = f"{'mart':<30} {'rows':>8} {'Σ money columns (fen)':>24} {'row hash':>18}  {left_name} = {right_name}"
    lines = [head, "-" * len(head)]
    for r in results:
        f = r.left
        lines.append(f"{r.mart:<30} {f.rows:>8} {f.amount_total:>24} {f.row_hash & (2**64 - 1):>18x}  "
                     + ("yes" if r.ok else "NO: " + "; ".join(r.differences)))
    ok = sum(r.ok for r in results)
    lines.append(f"INV-26 engine parity: {ok} of {len(results)} public marts equal"
                 + ("" if ok == len(results) else f", {len(results) - ok} DIFFER"))
    return "\n".join(lines)


def _dbt(target: str, args: list[str], env: dict[str, str], target_path: Path) -> float:
    """Run dbt on one target from the project directory; raise naming the target if a model or test fails."""
    exe = Path(sys.executable).with_name("dbt")
    cmd = [str(exe), *args, "--target", target, "--project-dir", str(PROJECT_DIR), "--target-path", str(target_path)]
    t0 = time.perf_counter()
    if subprocess.run(cmd, env=env, cwd=PROJECT_DIR).returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} --target {target} failed (see the log above)")
    return time.perf_counter() - t0


def public_marts(manifest_path: Path) -> dict[str, tuple[str, str]]:
    """Public marts (contract enforced) of a dbt build: name -> (schema, table)."""
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    return {
        n["name"]: (n["schema"], n["alias"])
        for n in sorted(nodes, key=lambda n: n["name"])
        if n["resource_type"] == "model" and n["config"].get("contract", {}).get("enforced")
    }


def data_test_results(target_path: Path) -> dict[str, str]:
    """Data test name -> status of a `dbt build`, from its run_results.json."""
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r["status"] for r in results if r["unique_id"].startswith("test.")}


def parity(work: Path, params: WorldParams = PARITY_WORLD, as_of_dates: tuple[dt.date | None, ...] = (None,)) -> int:
    """Land one world, build it on both engines as of each date (None: the latest landed) and compare the public
    marts after each; 0 when every build agrees."""
    work = Path(work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    world = simulate(params, work / "world")
    landed = land([work / "world" / "landing"], work / "data" / "lake", out=None)
    timings["simulate + land"] = time.perf_counter() - t0
    print(f"world: {params.days} days, {params.merchants} merchants, {world['payments']} payments, "
          f"{world['anomalies']} injected anomalies, {len(landed)} files landed")
    warehouse = work / "duckdb" / "tally.duckdb"
    warehouse.parent.mkdir(parents=True)
    env = dict(os.environ, TALLY_DATA_DIR=str(work / "data"), TALLY_DUCKDB_PATH=str(warehouse),
               TALLY_SPARK_DIR=str(work / "spark"), DBT_PROFILES_DIR=str(PROJECT_DIR),
               DBT_LOG_PATH=str(work / "logs"))
    ok = True
    for as_of in as_of_dates:
        label = f"as of {as_of.isoformat()}" if as_of else "as of the latest bill date"
        args = ["build", *(["--vars", f"{{as_of: {as_of.isoformat()}}}"] if as_of else [])]
        timings[f"duckdb build ({label})"] = _dbt("duckdb", args, env, work / "target-duckdb")
        timings[f"spark build ({label})"] = _dbt("spark", args, env, work / "target-spark")
        t0 = time.perf_counter()
        print(f"\n== {label}")
        ok = _compare_builds(work, warehouse) and ok
        timings[f"compare ({label})"] = time.perf_counter() - t0
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return 0 if ok else 1


def _compare_builds(work: Path, warehouse: Path) -> bool:
    # both builds ran the same data tests with the same outcome (a failure already stopped us; a warning must agree)
    duck_tests = data_test_results(work / "target-duckdb")
    spark_tests = data_test_results(work / "target-spark")
    if duck_tests != spark_tests or not duck_tests:
        differing = sorted(t for t in duck_tests.keys() | spark_tests.keys() if duck_tests.get(t) != spark_tests.get(t))
        print(f"data test outcomes differ between targets: {differing}")
        return False
    print(f"data tests: {sum(s == 'pass' for s in duck_tests.values())} of {len(duck_tests)} pass on duckdb, "
          f"{sum(s == 'pass' for s in spark_tests.values())} of {len(spark_tests)} on spark")
    duck_marts = public_marts(work / "target-duckdb" / "manifest.json")
    spark_marts = public_marts(work / "target-spark" / "manifest.json")
    if set(duck_marts) != set(spark_marts) or not duck_marts:
        print(f"public marts differ between targets: {sorted(set(duck_marts) ^ set(spark_marts))}")
        return False
    relations = {}
    for mart, (schema, table) in duck_marts.items():
        spark_schema, spark_table = spark_marts[mart]
        # dbt-spark tables are Parquet in the warehouse directory, one folder per <schema>.db/<table>
        files = work / "spark" / "warehouse" / f"{spark_schema}.db" / spark_table
        if not any(files.glob("*.parquet")):
            print(f"{mart}: Spark wrote no Parquet files under {files}")
            return False
        relations[mart] = (f'"{schema}"."{table}"', f"read_parquet('{files}/*.parquet')")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        results = compare(con, relations)
        print(report(results))
        for r in results:
            if not r.ok and r.right is not None:
                for side, text in sample_differing_rows(con, *relations[r.mart]):
                    print(f"  {r.mart} {side}: {text}")
    finally:
        con.close()
    return all(r.ok for r in results)
