"""The main job: simulate a sample world, land it, `dbt build`, print a summary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tally.land import land
from tally.simulate import WorldParams, simulate
from tally.warehouse import connect as connect_warehouse
from tally.warehouse import work_path

PROJECT_DIR = Path(__file__).resolve().parents[2]
# DuckDB's memory ceiling for the warehouse, past which it spills to disk; profiles.yml reads the same variable with
# the same default. 5GB keeps a 10M-trade day's build at 5.5 GB of RSS (8GB: 8.3 GB and 11 % faster).
DUCKDB_MEMORY_LIMIT_DEFAULT = "5GB"


def duckdb_memory_limit() -> str:
    return os.environ.get("TALLY_DUCKDB_MEMORY_LIMIT", DUCKDB_MEMORY_LIMIT_DEFAULT)


def dbt(args: list[str], data_dir: Path, warehouse: Path, target_path: Path | None = None, quiet: bool = False) -> None:
    """Run dbt in the project with the given lake and warehouse; raise on failure (models or tests)."""
    # absolute: the hist_ views keep the lake's path, and BI or publish may read them from another directory
    env = dict(os.environ, TALLY_DATA_DIR=str(Path(data_dir).resolve()), TALLY_DUCKDB_PATH=str(warehouse),
               DBT_PROFILES_DIR=str(PROJECT_DIR))
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("dbt")
    cmd = [str(exe), *(["--quiet"] if quiet else []), *args, "--project-dir", str(PROJECT_DIR)]
    if target_path is not None:
        cmd += ["--target-path", str(target_path)]
    if subprocess.run(cmd, env=env, cwd=PROJECT_DIR).returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed")


def build_and_publish(data_dir: Path, warehouse: Path, serving: Path, target_path: Path | None = None,
                      extra: list[str] | None = None, quiet: bool = False) -> dict:
    """Write–audit–publish: `dbt build` (models and tests); only if it is green, publish the marts to `serving`."""
    from tally.publish import publish

    target_path = Path(target_path or PROJECT_DIR / "target")
    dbt(["build", *(extra or [])], data_dir, warehouse, target_path=target_path, quiet=quiet)
    return publish(warehouse, serving, target=target_path, data_dir=data_dir)


def summary(warehouse: Path) -> str:
    con = connect_warehouse(warehouse)
    try:
        files = con.execute(
            "select file_status, count(*) from main_staging.stg_lake__file_deliveries group by 1 order by 1"
        ).fetchall()
        lines = con.execute(
            """
            select 'wechat', count(*), coalesce(sum(amount_fen), 0) from main_staging.stg_wechat__trade_bill_lines
            union all
            select 'alipay', count(*), coalesce(sum(amount_fen), 0) from main_staging.stg_alipay__trade_bill_lines
            union all
            select 'unionpay', count(*), coalesce(sum(amount_fen), 0) from main_staging.stg_unionpay__zm_lines
            union all
            select 'bank statement', count(*), coalesce(sum(amount_fen), 0)
            from main_staging.stg_bank__statement_lines
            union all
            select 'bank payout result', count(*), coalesce(sum(amount_fen), 0)
            from main_staging.stg_bank__payout_result_lines
            union all
            select 'internal payments', count(*), coalesce(sum(amount_fen), 0)
            from main_staging.stg_internal__payments
            union all
            select 'internal refunds', count(*), coalesce(sum(amount_fen), 0) from main_staging.stg_internal__refunds
            """
        ).fetchall()
        quarantined = con.execute("select count(*) from main_staging.stg_lake__quarantine_lines").fetchall()[0][0]
        recon = con.execute(
            """
            select recon_stream, channel, sum(facts), sum(matched), sum(breaks), sum(open_breaks), sum(in_suspense)
            from main.rpt_recon_daily_summary group by all order by all
            """
        ).fetchall()
        breaks = con.execute(
            """
            select break_type, recon_state, count(*) from main.fct_recon_results
            where break_type <> 'matched' group by all order by all
            """
        ).fetchall()
        as_of = con.execute("select max(as_of_date) from main.fct_recon_results").fetchall()[0][0]
        cleared = con.execute(
            "select count(distinct merchant_id), coalesce(sum(net_fen), 0) from main.fct_merchant_clearing_daily"
        ).fetchall()[0]
        batches = con.execute(
            "select batch_status, count(*), coalesce(sum(amount_fen), 0) from main.fct_settlement_batches "
            "group by all order by all"
        ).fetchall()
        books = con.execute(
            """
            select count(distinct journal_id), coalesce(sum(debit_fen), 0), coalesce(sum(credit_fen), 0)
            from main.fct_journal_lines
            """
        ).fetchall()[0]
    finally:
        con.close()
    out = ["files by status: " + ", ".join(f"{s} {n}" for s, n in files)]
    out.append(f"{'lines per source':<22}{'rows':>10}{'amount (yuan)':>18}")
    for name, n, fen in lines:
        out.append(f"{name:<22}{n:>10}{fen / 100:>18,.2f}")
    out.append(f"quarantined rows: {quarantined}")
    out.append(f"reconciliation as of {as_of}")
    out.append(f"{'stream / channel':<26}{'facts':>8}{'matched':>9}{'rate':>8}{'breaks':>8}{'open':>6}{'suspense':>10}")
    for stream, channel, facts, matched, n_breaks, open_breaks, suspense in recon:
        rate = matched / facts if facts else 1.0
        out.append(f"{stream + ' / ' + channel:<26}{facts:>8}{matched:>9}{rate:>8.2%}{n_breaks:>8}{open_breaks:>6}"
                   f"{suspense:>10}")
    out.append("breaks and suspense by type: " + ", ".join(f"{t} ({st}) {n}" for t, st, n in breaks))
    out.append(f"cleared for {cleared[0]} merchants: net {cleared[1] / 100:,.2f} yuan; settlement batches: "
               + ", ".join(f"{st} {n} ({fen / 100:,.2f})" for st, n, fen in batches))
    out.append(f"ledger: {books[0]} journals, debits {books[1] / 100:,.2f} = credits {books[2] / 100:,.2f} yuan"
               + ("" if books[1] == books[2] else "  << NOT BALANCED"))
    return "\n".join(out)


def demo(data_dir: Path, params: WorldParams | None = None) -> str:
    data_dir = Path(data_dir)
    params = params or WorldParams()
    world = data_dir / "world"
    for sub in ("world", "lake"):
        shutil.rmtree(data_dir / sub, ignore_errors=True)
    warehouse = data_dir / "warehouse" / "tally.duckdb"
    for stale in (warehouse, work_path(warehouse)):
        stale.unlink(missing_ok=True)
    s = simulate(params, world)
    print(f"simulated {params.days} days x {params.merchants} merchants: {s['payments']} payments, "
          f"{s['files']} files, {s['anomalies']} anomalies in ground truth")
    land([world / "landing"], data_dir / "lake")
    serving = data_dir / "serving" / "tally.duckdb"
    published = build_and_publish(data_dir, warehouse, serving)
    text = summary(warehouse)
    text += f"\npublished {len(published)} relations to {serving} (read-only for BI)"
    print(text)
    return text
