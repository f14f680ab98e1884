"""Reconciliation benchmark: N channel lines + N internal payments through the dbt reconciliation models, against a
bare DuckDB full outer join of the same staged data, measured in the same run.

The lake is written directly as raw Parquet (the layout `tally land` writes) so the benchmark measures
reconciliation, not simulation or landing. About 0.4 % of the lines carry an anomaly (amount mismatch, channel-only,
internal-only, duplicate) so every branch of the classification runs. It prints figures; it asserts nothing about
time.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import shutil
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tally.formats import INTERNAL_PAYMENTS, WECHAT_TRADE
from tally.land import LEDGER_SCHEMA, init_lake
from tally.pipeline import dbt
from tally.warehouse import connect as connect_warehouse
from tally.warehouse import work_path

BILL_DATE = dt.date(2024, 3, 4)
# the reconciliation models only: clearing and the ledger are not what this benchmark measures (the recon marts
# read the facts through hist_recon_results, hot plus archive, a view)
RECON_MODELS = ["path:models/intermediate/reconciliation", "path:models/marts/reconciliation", "hist_recon_results"]


def _write_raw(con: duckdb.DuckDBPyConnection, lake: Path, n: int, files: int) -> list[dict]:
    """Write `files` WeChat bills and as many internal payment dumps; return their ledger rows."""
    ledger = []
    per_file = n // files
    wechat_cols = WECHAT_TRADE.column_names
    internal_cols = INTERNAL_PAYMENTS.column_names
    for f in range(files):
        lo, hi = f * per_file, (f + 1) * per_file
        # i % 1000: 1 amount mismatch, 2 channel-only, 3 internal-only, 4 duplicated channel row
        base = f"""
            select i, 'ORD' || lpad(i::varchar, 12, '0') as order_id,
                   '4200' || lpad(i::varchar, 24, '0') as serial,
                   100 + (i * 7919) % 500000 as amount, i % 1000 as kind,
                   timestamp '2024-03-04 00:00:00' + to_seconds(i % 86000) as t
            from range({lo}, {hi}) as r(i)
        """
        wechat_values = {
            "trade_time": "strftime(t, '%Y-%m-%d %H:%M:%S')", "app_id": "'wx3f2a9c0d1e7b5a61'",
            "mch_id": f"'16{f:08d}'", "transaction_id": "serial", "out_trade_no": "order_id",
            "openid": "'o' || lpad((i % 99991)::varchar, 27, '0')", "trade_type": "'JSAPI'",
            "trade_state": "'SUCCESS'", "bank_type": "'CMB_DEBIT'", "currency": "'CNY'",
            "settlement_amount": "yuan(amount + case when kind = 1 then 100 else 0 end)",
            "coupon_amount": "'0.00'", "refund_id": "'0'", "out_refund_no": "'0'", "refund_amount": "'0.00'",
            "coupon_refund_amount": "'0.00'", "refund_type": "''", "refund_status": "''", "body": "'咖啡'",
            "attach": "''",
            # the channel's 0.60 % rate, half up to the fen, on the amount it moved
            "fee": "yuan(((amount + case when kind = 1 then 100 else 0 end) * 60 + 5000) // 10000) || '000'",
            "rate": "'0.60%'", "order_amount": "yuan(amount)", "requested_refund_amount": "'0.00'",
        }
        internal_values = {
            "order_id": "order_id", "merchant_id": f"'M{f + 1:04d}'", "channel": "'wechat'",
            "channel_serial": "serial", "amount_fen": "amount::varchar", "currency": "'CNY'", "status": "'SUCCESS'",
            "created_at": "strftime(t - interval 5 second, '%Y-%m-%d %H:%M:%S')",
            "paid_at": "strftime(t, '%Y-%m-%d %H:%M:%S')", "payer_id": "'o' || (i % 99991)::varchar",
            "subject": "'咖啡'",
        }
        for fmt, cols, values, where, copies in (
            ("wechat_trade_bill", wechat_cols, wechat_values, "kind <> 3", "case when kind = 4 then 2 else 1 end"),
            ("internal_payments", internal_cols, internal_values, "kind <> 2", "1"),
        ):
            fvid = f"bench{fmt[:8]}{f:07d}"
            select = ", ".join(f"{values.get(c, chr(39) * 2)} as {c}" for c in cols)
            path = lake / "raw" / fmt / f"bill_date={BILL_DATE}" / f"{fvid}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"""
                copy (
                    select {select}, '{fvid}' as file_version_id,
                           (row_number() over (order by i, c.copy))::bigint + 1 as line_no, 1::bigint as line_span
                    from ({base}) as b
                    inner join (select unnest(range(2)) as copy) as c on c.copy < {copies}
                    where {where}
                ) to '{path}' (format parquet, compression zstd)
                """
            )
            rows = con.execute(f"select count(*) from read_parquet('{path}')").fetchall()[0][0]
            ledger.append({
                "delivery_id": fvid, "file_version_id": fvid, "sha256": fvid.ljust(64, "0"),
                "source_path": f"bench/{fvid}", "size_bytes": path.stat().st_size, "format": fmt,
                "channel": "wechat" if fmt.startswith("wechat") else "internal",
                "merchant_key": f"16{f:08d}" if fmt.startswith("wechat") else f"part{f}",
                "bill_type": "ALL" if fmt.startswith("wechat") else "payments", "bill_date": BILL_DATE,
                "delivered_at": dt.datetime(2024, 3, 5, 10, 0), "status": "landed", "reject_reason": None,
                "is_empty_day": False, "lines_total": rows + 1, "lines_detail": rows, "lines_quarantined": 0,
                "lines_other": 1, "ctl_row_count": None, "ctl_payment_fen": None, "ctl_refund_fen": None,
                "ctl_fee_fen": None, "ctl_credit_fen": None, "ctl_debit_fen": None,
                "landed_at": dt.datetime(2024, 3, 5, 10, 1),
            })
    return ledger


def build_lake(data_dir: Path, n: int, files: int = 10) -> int:
    lake = data_dir / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    init_lake(lake)
    con = duckdb.connect()
    con.execute("set threads to 2")
    con.execute("""create macro yuan(f) as (f // 100)::varchar || '.' || lpad((f % 100)::varchar, 2, '0')""")
    ledger = _write_raw(con, lake, n, files)
    con.close()
    pq.write_table(pa.Table.from_pylist(ledger, schema=LEDGER_SCHEMA), lake / "ledger" / "bench.parquet")
    return sum(r["lines_detail"] for r in ledger)


def _cpu(who: int) -> float:
    """CPU seconds (user + system) so far of this process or of its finished children: unlike wall time, it does
    not grow when other work shares the machine."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    return _cpu(resource.RUSAGE_CHILDREN)


def _bare_join(warehouse: Path) -> tuple[float, float, int]:
    """The baseline: one full outer join of the staged channel lines and our payments into a persisted 11-column
    table in the work file (what one dbt table model does), classified by amount and status."""
    con = connect_warehouse(warehouse, read_only=False)
    try:
        con.execute("set threads to 2")
        start, cpu_before = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
        con.execute(
            """
            create or replace table work.main.bench_bare_join as
            select coalesce(c.order_id, i.order_id) as order_id, c.channel_serial, c.amount_fen as channel_amount_fen,
                   i.amount_fen as internal_amount_fen, c.amount_fen - i.amount_fen as amount_delta_fen,
                   c.fee_fen as channel_fee_fen, c.channel_status, i.status as internal_status,
                   c.channel_txn_at, i.paid_at as internal_txn_at,
                   case when c.order_id is null then 'internal_only' when i.order_id is null then 'channel_only'
                        when c.amount_fen <> i.amount_fen then 'amount_mismatch'
                        when c.channel_status <> i.status then 'status_mismatch' else 'matched' end as break_type
            from main_staging.stg_wechat__trade_bill_lines as c
            full outer join main_staging.stg_internal__payments as i on c.order_id = i.order_id
            """
        )
        seconds, cpu = time.perf_counter() - start, _cpu(resource.RUSAGE_SELF) - cpu_before
        rows = con.execute("select count(*) from work.main.bench_bare_join").fetchall()[0][0]
        con.execute("drop table work.main.bench_bare_join")
    finally:
        con.close()
    return seconds, cpu, rows


def run(n: int, data_dir: Path, files: int = 10) -> dict:
    data_dir = Path(data_dir)
    warehouse = data_dir / "warehouse" / "bench.duckdb"
    warehouse.unlink(missing_ok=True)
    work_path(warehouse).unlink(missing_ok=True)
    target = data_dir / "target"
    t0 = time.perf_counter()
    lines = build_lake(data_dir, n, files)
    print(f"wrote a lake of {lines:,} lines (channel + internal) in {time.perf_counter() - t0:.1f}s")
    dbt(["seed", "--quiet"], data_dir, warehouse, target_path=target)
    dbt(["run", "--quiet", "--select", "staging"], data_dir, warehouse, target_path=target)
    bare_s, bare_cpu, bare_rows = _bare_join(warehouse)
    start = time.perf_counter()
    cpu_before = _children_cpu()
    dbt(["run", "--quiet", "--select", *RECON_MODELS], data_dir, warehouse, target_path=target)
    recon_wall = time.perf_counter() - start
    recon_cpu = _children_cpu() - cpu_before
    results = json.loads((target / "run_results.json").read_text())["results"]
    recon_models = sum(r["execution_time"] for r in results)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        facts = con.execute(
            "select break_type, count(*) from main.fct_recon_results group by all order by all"
        ).fetchall()
    finally:
        con.close()
    figures = {
        "lines": lines, "bare_join_s": bare_s, "bare_join_rows": bare_rows, "recon_wall_s": recon_wall,
        "recon_models_s": recon_models, "ratio_wall": recon_wall / bare_s, "ratio_models": recon_models / bare_s,
        "bare_join_cpu_s": bare_cpu, "recon_cpu_s": recon_cpu, "ratio_cpu": recon_cpu / bare_cpu,
        "lines_per_s": lines / recon_wall, "peak_rss_gb": peak_gb, "facts": dict(facts),
    }
    print(f"bare DuckDB full outer join : {bare_s:8.2f}s  ({bare_rows:,} rows)")
    print(f"dbt reconciliation (wall)   : {recon_wall:8.2f}s  ratio {recon_wall / bare_s:.2f}x  "
          f"({lines / recon_wall:,.0f} lines/s)")
    print(f"dbt reconciliation (models) : {recon_models:8.2f}s  ratio {recon_models / bare_s:.2f}x "
          "(without dbt's start-up)")
    print(f"CPU seconds (busy machine)  : dbt {recon_cpu:.2f}s vs bare join {bare_cpu:.2f}s, ratio "
          f"{recon_cpu / bare_cpu:.2f}x (dbt's start-up included)")
    print(f"peak RSS of the dbt process : {peak_gb:.2f} GB")
    print("facts: " + ", ".join(f"{k} {v:,}" for k, v in facts))
    return figures
