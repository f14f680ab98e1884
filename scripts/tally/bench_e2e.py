"""End-to-end benchmark: a simulated day of N trades through every stage of Tally, against reference baselines on the
same input, measured in the same run.

`scripts/bench --trades 1000000` (or `python -m tally bench e2e`) simulates a one-day world of that many payments
(cached under `data/bench/`, shared with `tally bench land`; simulation is not timed), then runs each stage in its
own child process and reads its wall time, CPU time and peak RSS from `wait4`:

- `land`: `tally land` of the day's files as delivered (GX gate on, as shipped);
- `dbt build` (seeds, models and every data test, as an analyst runs it), split from `run_results.json` into seeds,
  each model folder's layer (the time at least one of its models ran) and tests (the sum of their run times); and
  `publish` when the toolbelt has it.
  The project is parsed first (`dbt parse`, reported apart), so the build reuses that parse as a daily job reuses
  the day before's;

and the baselines, each also in its own process:

- parse floor: DuckDB's bare typed read of the same detail lines (`tally bench land`'s baseline);
- engine floor: one bare DuckDB full outer join of the staged trade lines (all channels) with our payments and
  refunds, classified and persisted, in the warehouse the run built;
- pandas: what an analyst would write by hand: `read_csv` / `read_fwf` of the same detail lines, yuan to fen,
  one outer `merge`, a classification, written to Parquet.

Then it runs the same pipeline on a nearly empty day (`FIXED_COST_TRADES`): the fixed cost every run pays whatever
its volume (interpreters, imports, the GX context, dbt's start and its work per node), and the best each ratio could
be if the day's volume cost nothing more.

It prints a table and the ratios the targets are stated in, and writes the figures as JSON. It asserts nothing
about time: figures depend on the machine and on whatever else runs on it (CPU seconds are shown because they
grow less than wall time when the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tally import bench
from tally.formats import ALIPAY_TRADE, INTERNAL_PAYMENTS, INTERNAL_REFUNDS, UNIONPAY_ZM_FIELDS, WECHAT_TRADE
from tally.pipeline import PROJECT_DIR, duckdb_memory_limit
from tally.simulate import WorldParams
from tally.warehouse import connect as connect_warehouse

LAYERS = ("staging", "reconciliation", "account", "clearing", "ledger")
# (what, target, how the ratio is read); the targets of issue 7, on this 2-core, 24 GiB machine
TARGETS = {
    "1M end to end": "<= 20 s",
    "10M end to end": "<= 120 s, peak RSS <= 6 GB",
    "end to end / parse floor": "<= 4x",
    "reconciliation / engine floor": "<= 2x",
    "pandas / end to end": ">= 5x",
}
# The nearly empty day whose run is the fixed cost: every stage, model and data test runs, on almost no data.
FIXED_COST_TRADES = 1_000

ENGINE_FLOOR_SQL = """
create or replace table work.main.bench_engine_floor as
with channel as (
    select row_kind || ':' || case when row_kind = 'refund' then refund_id else order_id end as k,
           amount_fen, fee_fen, channel_status as status, channel_txn_at as txn_at
    from main_staging.stg_wechat__trade_bill_lines
    union all
    select row_kind || ':' || case when row_kind = 'refund' then refund_id else order_id end,
           amount_fen, fee_fen, channel_status, channel_txn_at
    from main_staging.stg_alipay__trade_bill_lines
    union all
    select row_kind || ':' || case when row_kind = 'refund' then refund_id else order_id end,
           amount_fen, fee_fen, channel_status, channel_txn_at
    from main_staging.stg_unionpay__zm_lines
),
ours as (
    select 'payment:' || order_id as k, amount_fen, status, coalesce(paid_at, created_at) as txn_at
    from main_staging.stg_internal__payments
    union all
    select 'refund:' || refund_id, amount_fen, status, coalesce(succeeded_at, requested_at)
    from main_staging.stg_internal__refunds
)
select coalesce(c.k, i.k) as k, c.amount_fen as channel_amount_fen, i.amount_fen as internal_amount_fen,
       c.amount_fen - i.amount_fen as amount_delta_fen, c.fee_fen as channel_fee_fen,
       c.status as channel_status, i.status as internal_status, c.txn_at as channel_txn_at, i.txn_at as internal_txn_at,
       case when c.k is null then 'internal_only' when i.k is null then 'channel_only'
            when c.amount_fen <> i.amount_fen then 'amount_mismatch'
            when c.status <> i.status then 'status_mismatch' else 'matched' end as break_type
from channel as c
full outer join ours as i on c.k = i.k
"""


def world(trades: int, merchants: int, seed: int) -> WorldParams:
    # Row-level anomalies stay on; the file-level ones (a file delivered twice, a re-issued bill, an empty or late
    # file) are off so that every detail line the baselines read is one the warehouse counts too.
    return WorldParams(seed=seed, days=1, merchants=merchants, daily_volume=trades, duplicate_file=False,
                       reissued_file=False, empty_day=False, late_file=False)


def _run_stage(name: str, cmd: list[str], env: dict, log: Path) -> dict:
    """Run one stage as a child process; wall, CPU and peak RSS (the child and its own children) from wait4."""
    with log.open("ab") as out:
        out.write(f"\n=== {name}: {' '.join(cmd)}\n".encode())
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_DIR, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {name} failed (exit {proc.returncode}); see {log}")
    return {"stage": name, "seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss": usage.ru_maxrss * 1024}


def _node_kinds(manifest: Path) -> dict[str, str]:
    """unique_id -> what it is for the breakdown: seeds, a model's layer (its folder), or tests."""
    nodes = json.loads(manifest.read_text())["nodes"]
    out = {}
    for uid, node in nodes.items():
        if node["resource_type"] == "seed":
            out[uid] = "seeds"
        elif node["resource_type"] == "test":
            out[uid] = "tests"
        elif node["resource_type"] == "model":
            parts = node["original_file_path"].split("/")  # models/staging/x/..., models/marts/clearing/...
            out[uid] = parts[1] if parts[1] in ("staging", "history") else parts[2]
    return out


def _covered(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the (start, end) intervals: overlaps count once, gaps not at all."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def build_breakdown(target: Path, run_results: dict) -> dict[str, float]:
    """Seconds per part of one `dbt build`: seeds and each model layer as the time at least one of its models ran
    (the models of a layer run side by side on 2 threads; the data tests dbt runs between them are not the layer's),
    tests as the sum of their run times (dbt interleaves them)."""
    kinds = _node_kinds(target / "manifest.json")
    runs: dict[str, list[tuple[float, float]]] = {}
    tests = 0.0
    for r in run_results["results"]:
        kind = kinds.get(r["unique_id"])
        execute = [t for t in r["timing"] if t["name"] == "execute"]
        if kind is None or not execute:
            continue
        if kind == "tests":
            tests += r["execution_time"]
            continue
        started = dt.datetime.fromisoformat(execute[0]["started_at"].replace("Z", "+00:00")).timestamp()
        ended = dt.datetime.fromisoformat(execute[0]["completed_at"].replace("Z", "+00:00")).timestamp()
        runs.setdefault(kind, []).append((started, ended))
    out = {kind: _covered(intervals) for kind, intervals in runs.items()}
    out["tests"] = tests
    return out


def slowest_nodes(run_results: dict, n: int = 8) -> list[tuple[str, float]]:
    """The `n` models and tests of one `dbt build` that ran longest, as (name, seconds): where to profile first."""
    ranked = sorted(run_results["results"], key=lambda r: r["execution_time"], reverse=True)[:n]
    return [(r["unique_id"].split(".")[2], r["execution_time"]) for r in ranked]


# ---------------------------------------------------------------------------------------------------------------
# Baselines run in child processes (python -m tally.bench_e2e --floor NAME ...)
# ---------------------------------------------------------------------------------------------------------------


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def engine_floor(warehouse: Path) -> dict:
    # in the work file, beside the reconciliation models it stands for
    con = connect_warehouse(warehouse, read_only=False)
    try:
        con.execute("set threads = 2")
        # what the dbt profile gives DuckDB
        con.execute("set memory_limit = ?", [duckdb_memory_limit()])
        con.execute("set preserve_insertion_order = false")
        t0, cpu0 = time.perf_counter(), _self_cpu()
        con.execute(ENGINE_FLOOR_SQL)
        seconds, cpu = time.perf_counter() - t0, _self_cpu() - cpu0
        breaks = dict(con.execute("select break_type, count(*) from work.main.bench_engine_floor group by 1")
                      .fetchall())
        con.execute("drop table work.main.bench_engine_floor")
    finally:
        con.close()
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": sum(breaks.values()), "breaks": breaks}


def _yuan_to_fen(s):
    # what an analyst writes: floats, rounded back to the fen
    import pandas as pd

    return (pd.to_numeric(s) * 100).round().astype("int64")


def pandas_baseline(root: Path, out: Path) -> dict:
    """Read the detail lines with pandas, normalise amounts to fen, one outer merge on the trade key, classify."""
    import numpy as np
    import pandas as pd

    manifest = json.loads((root / "ready.json").read_text())
    t0, cpu0 = time.perf_counter(), _self_cpu()
    channel, ours = [], []
    for entry in manifest["files"]:
        if entry["detail"] is None:
            continue
        path = root / "detail" / entry["detail"]
        fmt = entry["format"]
        if fmt == WECHAT_TRADE.name:
            names = WECHAT_TRADE.column_names[: entry["fields"]]
            df = pd.read_csv(path, header=None, names=names, dtype=str, quoting=3, keep_default_na=False)
            df = df.apply(lambda col: col.str.lstrip("`"))
            refund = df["trade_state"] == "REFUND"
            kind = np.where(refund, "refund", np.where(df["trade_state"] == "REVOKED", "revoke", "payment"))
            amount = np.where(refund, -_yuan_to_fen(df["refund_amount"]), _yuan_to_fen(df["settlement_amount"]))
            amount = np.where(df["trade_state"] == "REVOKED", -amount, amount)
            key = np.where(refund, df["out_refund_no"], df["out_trade_no"])
            status = np.where(refund, df["refund_status"], df["trade_state"])
            channel.append(pd.DataFrame({"k": pd.Series(kind) + ":" + key, "channel_amount_fen": amount,
                                         "channel_status": status, "channel_txn_at": pd.to_datetime(df["trade_time"])}))
        elif fmt == ALIPAY_TRADE.name:
            df = pd.read_csv(path, header=None, names=ALIPAY_TRADE.column_names, dtype=str, keep_default_na=False)
            df = df.apply(lambda col: col.str.strip())
            refund = df["biz_type"] == "退款"
            key = np.where(refund, "refund:" + df["refund_request_no"], "payment:" + df["out_trade_no"])
            channel.append(pd.DataFrame({"k": key, "channel_amount_fen": _yuan_to_fen(df["receipt_amount"]),
                                         "channel_status": "SUCCESS",
                                         "channel_txn_at": pd.to_datetime(df["finished_at"])}))
        elif fmt == "unionpay_zm":
            specs = [(off, off + width) for _, off, width, _ in UNIONPAY_ZM_FIELDS]
            names = [name for name, _, _, _ in UNIONPAY_ZM_FIELDS]
            df = pd.read_fwf(path, colspecs=specs, names=names, dtype=str, header=None, keep_default_na=False)
            pay = df["txn_type"] == "01"
            amount = df["txn_amt"].astype("int64") * np.where(pay, 1, -1)
            key = np.where(pay, "payment:", "refund:") + df["order_id"]
            channel.append(pd.DataFrame({"k": key, "channel_amount_fen": amount, "channel_status": "SUCCESS",
                                         "channel_txn_at": pd.NaT}))
        elif fmt == INTERNAL_PAYMENTS.name:
            df = pd.read_csv(path, header=None, names=INTERNAL_PAYMENTS.column_names, dtype=str,
                             keep_default_na=False)
            ours.append(pd.DataFrame({"k": "payment:" + df["order_id"], "internal_amount_fen":
                                      df["amount_fen"].astype("int64"), "internal_status": df["status"],
                                      "internal_txn_at": pd.to_datetime(df["paid_at"].replace("", None))}))
        elif fmt == INTERNAL_REFUNDS.name:
            df = pd.read_csv(path, header=None, names=INTERNAL_REFUNDS.column_names, dtype=str,
                             keep_default_na=False)
            ours.append(pd.DataFrame({"k": "refund:" + df["refund_id"], "internal_amount_fen":
                                      -df["amount_fen"].astype("int64"), "internal_status": df["status"],
                                      "internal_txn_at": pd.to_datetime(df["succeeded_at"].replace("", None))}))
    joined = pd.concat(channel, ignore_index=True).merge(pd.concat(ours, ignore_index=True), on="k", how="outer",
                                                         indicator=True)
    joined["break_type"] = np.select(
        [joined["_merge"] == "right_only", joined["_merge"] == "left_only",
         joined["channel_amount_fen"] != joined["internal_amount_fen"],
         joined["channel_status"] != joined["internal_status"]],
        ["internal_only", "channel_only", "amount_mismatch", "status_mismatch"], default="matched")
    joined.drop(columns="_merge").to_parquet(out)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": _self_cpu() - cpu0, "rows": len(joined),
            "breaks": joined["break_type"].value_counts().to_dict()}


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------


def _floor(name: str, args: list[str], env: dict) -> dict:
    """A baseline in its own process: its own timing of the work (no interpreter start-up), peak RSS from wait4."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "tally.bench_e2e", *args], env=env, cwd=PROJECT_DIR,
                                stdout=subprocess.PIPE, stderr=err)
        stdout = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.stdout.close()
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"baseline {name} failed:\n{err.read().decode()[-4000:]}")
    figures = json.loads(stdout.strip().splitlines()[-1])
    figures["peak_rss"] = usage.ru_maxrss * 1024
    return figures


def _env(data_dir: Path, warehouse: Path) -> dict:
    scripts = str(PROJECT_DIR / "scripts")
    return dict(os.environ, TALLY_DATA_DIR=str(data_dir), TALLY_DUCKDB_PATH=str(warehouse),
                DBT_PROFILES_DIR=str(PROJECT_DIR), GX_ANALYTICS_ENABLED="false",
                PYTHONPATH=scripts + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _has_publish() -> bool:
    import importlib.util

    return importlib.util.find_spec("tally.publish") is not None


def _pipeline(root: Path, run_dir: Path) -> dict:
    """Land, `dbt build` and publish one simulated day into `run_dir`, each stage in its own process; the figures."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    warehouse = run_dir / "warehouse" / "tally.duckdb"
    warehouse.parent.mkdir()
    env = _env(run_dir, warehouse)
    log = run_dir / "bench.log"
    py = sys.executable
    dbt_exe = str(Path(sys.executable).with_name("dbt"))
    target = run_dir / "target"
    dbt_dirs = ["--project-dir", str(PROJECT_DIR), "--target-path", str(target), "--log-path", str(run_dir / "logs")]
    stages = [_run_stage("land", [py, "-m", "tally", "land", str(root / "world" / "landing"),
                                  "--lake", str(run_dir / "lake")], env, log)]
    # A daily job runs in a project whose previous run left dbt's parse behind, and dbt reuses it (partial parsing)
    # while the code and the variables are unchanged. So the project is parsed once first, as the day before, and
    # `dbt build` starts as it does every morning; that cold parse is reported on its own, outside end to end (a
    # first run, or the first after a code change, pays it).
    cold_parse = _run_stage("dbt parse (cold)", [dbt_exe, "parse", *dbt_dirs], env, log)
    stages.append(_run_stage("dbt build", [dbt_exe, "build", *dbt_dirs], env, log))
    run_results = json.loads((target / "run_results.json").read_text())
    layers = build_breakdown(target, run_results)
    # what dbt spends before its first node and after its last (start, and a partial parse that finds nothing
    # changed) is the stage's wall time less dbt's own elapsed time
    layers["startup and parse"] = stages[-1]["seconds"] - run_results["elapsed_time"]
    if _has_publish():
        stages.append(_run_stage("publish", [py, "-m", "tally", "publish", "--data-dir", str(run_dir),
                                             "--warehouse", str(warehouse), "--target", str(target),
                                             "--serving", str(run_dir / "serving" / "tally.duckdb")], env, log))
    e2e = {"seconds": sum(s["seconds"] for s in stages), "cpu_seconds": sum(s["cpu_seconds"] for s in stages),
           "peak_rss": max(s["peak_rss"] for s in stages)}
    return {"stages": stages, "layers": layers, "slowest_nodes": slowest_nodes(run_results),
            "cold_parse": cold_parse, "end_to_end": e2e, "warehouse": warehouse, "env": env, "log": log}


def _simulate(trades: int, merchants: int, seed: int, data_dir: Path, detail: bool, out) -> Path:
    """The cached world of one day of `trades`; simulated in a child, because a child's peak RSS (wait4) starts from
    its parent's at fork, so this process stays small."""
    prep = subprocess.run([sys.executable, "-m", "tally.bench_e2e", "--prepare", str(trades), str(merchants), str(seed),
                           str(data_dir), *([] if detail else ["--no-detail"])],
                          env=_env(Path(data_dir), Path(data_dir) / "unused.duckdb"),
                          cwd=PROJECT_DIR, capture_output=True, text=True)
    if prep.returncode != 0:
        raise RuntimeError(f"simulating the benchmark world failed:\n{prep.stderr[-4000:]}")
    if prep.stdout.strip():
        print(prep.stdout.strip(), file=out)
    return bench.prepare(world(trades, merchants, seed), data_dir, out=out, detail=detail)


def run(trades: int, data_dir: Path, merchants: int = bench.DEFAULT_MERCHANTS, seed: int = 1,
        skip_pandas: bool = False, parse_floor: bool = True, fixed_cost: bool = True, out=sys.stdout) -> dict:
    """`parse_floor=False` skips the two baselines that read a copy of the detail lines (the parse floor and pandas),
    and the copy: at 30M trades the world, that copy and the lake's file store did not fit the disk together.
    `fixed_cost=False` skips the second, nearly empty day (see `FIXED_COST_TRADES`)."""
    skip_pandas = skip_pandas or not parse_floor
    root = _simulate(trades, merchants, seed, data_dir, parse_floor, out)
    run_dir = root / "e2e"
    manifest = json.loads((root / "ready.json").read_text())
    mb = manifest["bytes"] / 1e6
    lines = manifest["lines"]
    print(f"world: 1 day, {merchants} merchants, {trades:,} trades -> {len(manifest['files'])} files, {lines:,} "
          f"detail lines, {mb:,.1f} MB of detail text; log: {run_dir / 'bench.log'}", file=out)
    day = _pipeline(root, run_dir)
    stages, layers, e2e = day["stages"], day["layers"], day["end_to_end"]

    floors = {}
    if parse_floor:
        parse = bench._child("baseline", root)
        floors["parse floor"] = {"seconds": parse["seconds"], "cpu_seconds": parse["cpu_seconds"],
                                 "peak_rss": parse["peak_rss"]}
    floors["engine floor"] = _floor("engine", ["--floor", "engine", str(root), str(day["warehouse"])], day["env"])
    if not skip_pandas:
        floors["pandas"] = _floor("pandas", ["--floor", "pandas", str(root), str(run_dir / "pandas.parquet")],
                                  day["env"])

    # The same pipeline on a nearly empty day: what every run pays whatever its volume (interpreters, imports, the
    # GX context, dbt's start and its work per node). Run last, so that the day's figures above are undisturbed.
    # The same merchants, so the same files: landing's and GX's work per file is part of the fixed cost.
    fixed = None
    fixed_note = ""
    if fixed_cost and trades <= FIXED_COST_TRADES:
        fixed_note = f"fixed cost: not measured, this day is no larger than the {FIXED_COST_TRADES:,}-trade day"
    elif fixed_cost:
        try:
            small = _simulate(FIXED_COST_TRADES, merchants, seed, data_dir, False, io.StringIO())
            fixed = _pipeline(small, small / "e2e")
        except RuntimeError as e:  # the day's figures are still worth printing and keeping
            fixed_note = f"fixed cost: failed, the day's figures stand: {e}"

    recon = layers.get("reconciliation", 0.0)
    ratios = {}
    if "parse floor" in floors:
        ratios["end to end / parse floor"] = e2e["seconds"] / floors["parse floor"]["seconds"]
    ratios["reconciliation / engine floor"] = recon / floors["engine floor"]["seconds"]
    if "pandas" in floors:
        ratios["pandas / end to end"] = floors["pandas"]["seconds"] / e2e["seconds"]
    # the best each ratio could be if the day's volume cost nothing more than the nearly empty day
    best = {}
    if fixed is not None:
        fixed_e2e, fixed_recon = fixed["end_to_end"]["seconds"], fixed["layers"].get("reconciliation", 0.0)
        if "parse floor" in floors:
            best["end to end / parse floor"] = fixed_e2e / floors["parse floor"]["seconds"]
        best["reconciliation / engine floor"] = fixed_recon / floors["engine floor"]["seconds"]
        if "pandas" in floors:
            best["pandas / end to end"] = floors["pandas"]["seconds"] / fixed_e2e

    print(f"\n{'stage':<22}{'seconds':>9}{'CPU s':>8}{'rows/s':>12}{'MB/s':>8}{'peak RSS MB':>13}", file=out)
    for s in stages:
        print(f"{s['stage']:<22}{s['seconds']:>9.2f}{s['cpu_seconds']:>8.1f}{lines / s['seconds']:>12,.0f}"
              f"{mb / s['seconds']:>8.1f}{s['peak_rss'] / 1e6:>13,.0f}", file=out)
        if s["stage"] == "dbt build":
            # the main layers first, then any other folder's models (settlement, lineage, history)
            for part in ("startup and parse", "seeds", *LAYERS, *sorted(set(layers) - set(LAYERS) - {
                    "startup and parse", "seeds", "tests"}), "tests"):
                if part in layers:
                    print(f"  {part:<20}{layers[part]:>9.2f}", file=out)
            print("  slowest nodes:", file=out)
            for name, seconds in day["slowest_nodes"]:
                print(f"    {seconds:>6.2f}  {name}", file=out)
    print(f"{'end to end':<22}{e2e['seconds']:>9.2f}{e2e['cpu_seconds']:>8.1f}{lines / e2e['seconds']:>12,.0f}"
          f"{mb / e2e['seconds']:>8.1f}{e2e['peak_rss'] / 1e6:>13,.0f}", file=out)
    print(f"(not in end to end: {day['cold_parse']['seconds']:.2f} s for dbt's cold parse, paid by a first run and "
          "the first after a code change)", file=out)
    if fixed is not None:
        fl = fixed["layers"]
        parts = ", ".join(f"{s['stage']} {s['seconds']:.2f}" for s in fixed["stages"])
        print(f"\nfixed cost: the same pipeline on a day of {FIXED_COST_TRADES:,} trades: {parts}; end to end "
              f"{fixed['end_to_end']['seconds']:.2f} s (dbt's startup {fl['startup and parse']:.2f} s, "
              f"reconciliation {fl.get('reconciliation', 0.0):.2f} s, data tests {fl['tests']:.2f} s); "
              f"this day's volume adds {e2e['seconds'] - fixed['end_to_end']['seconds']:.2f} s", file=out)
    elif fixed_note:
        print(f"\n{fixed_note}", file=out)
    print(f"\n{'baseline':<22}{'seconds':>9}{'CPU s':>8}{'peak RSS MB':>13}", file=out)
    for name, f in floors.items():
        print(f"{name:<22}{f['seconds']:>9.2f}{f['cpu_seconds']:>8.1f}{f['peak_rss'] / 1e6:>13,.0f}", file=out)
    print("\nratios (target)" + ("; the best with the fixed cost alone" if best else "") + ":", file=out)
    for name, value in ratios.items():
        print(f"  {name:<32}{value:>7.2f}x   ({TARGETS[name]})"
              + (f"   best {best[name]:.2f}x" if name in best else ""), file=out)
    figures = {"trades": trades, "lines": lines, "mb": mb, "stages": stages, "layers": layers,
               "slowest_nodes": day["slowest_nodes"], "cold_parse": day["cold_parse"], "end_to_end": e2e,
               "baselines": floors, "ratios": ratios, "targets": TARGETS}
    if fixed is not None:
        figures["fixed_cost"] = {"trades": FIXED_COST_TRADES, "stages": fixed["stages"], "layers": fixed["layers"],
                                 "end_to_end": fixed["end_to_end"]}
        figures["best_ratios"] = best
    elif fixed_note:
        figures["fixed_cost_note"] = fixed_note
    (run_dir / "result.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(f"\nfigures written to {run_dir / 'result.json'}", file=out)
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tally.bench_e2e")
    ap.add_argument("--floor", choices=["engine", "pandas"])
    ap.add_argument("--prepare", nargs=4, metavar=("TRADES", "MERCHANTS", "SEED", "DATA_DIR"))
    ap.add_argument("--no-detail", action="store_true", help="with --prepare: count the detail lines, do not copy")
    ap.add_argument("root", nargs="?")
    ap.add_argument("target", nargs="?")
    args = ap.parse_args(argv)
    if args.prepare:
        trades, merchants, seed, data_dir = args.prepare
        bench.prepare(world(int(trades), int(merchants), int(seed)), Path(data_dir), detail=not args.no_detail)
    elif args.floor == "engine":
        print(json.dumps(engine_floor(Path(args.target))))
    else:
        print(json.dumps(pandas_baseline(Path(args.root), Path(args.target))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
