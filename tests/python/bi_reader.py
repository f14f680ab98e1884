"""A BI-style client for the publish tests: SQLAlchemy with duckdb-engine on the serving file, read only, as a
dashboard would connect. It holds one connection open from start to end and opens a fresh one per round, checks
that what it reads is a whole, tested publish (every relation's row count equals the publish manifest's, the trial
balance balances, every journal balances), and writes one JSON line per check until the stop file appears.
`held` keeps one connection open from start to end; `fresh` opens a new one every round. (They run as two
processes: DuckDB shares one database instance per file within a process, so a held connection would make every
new connection of the same process see the old snapshot too.)

    python bi_reader.py held|fresh SERVING STOP_FILE OUT_JSONL
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import sqlalchemy as sa

# read only, no file or network access from SQL, settings locked: what a BI connection gets
CONNECT_ARGS = {"read_only": True, "config": {"enable_external_access": "false", "lock_configuration": "true"}}


def engine(serving: str) -> sa.Engine:
    return sa.create_engine(f"duckdb:///{serving}", connect_args=CONNECT_ARGS, poolclass=sa.pool.NullPool)


def check(conn: sa.Connection) -> dict:
    manifest = conn.execute(sa.text(
        "select relation_name, row_count, build_invocation_id from publish_manifest")).fetchall()
    problems = []
    for name, n, _ in manifest:
        got = conn.execute(sa.text(f'select count(*) from "{name}"')).scalar()
        if got != n:
            problems.append(f"{name}: {got} rows, manifest says {n}")
    debit, credit = conn.execute(sa.text("select sum(debit_fen), sum(credit_fen) from rpt_trial_balance")).one()
    if debit != credit:
        problems.append(f"trial balance: debits {debit} <> credits {credit}")
    unbalanced = conn.execute(sa.text(
        "select count(*) from (select journal_id from fct_journal_lines group by journal_id "
        "having sum(debit_fen) <> sum(credit_fen)) as j")).scalar()
    if unbalanced:
        problems.append(f"{unbalanced} unbalanced journals")
    return {"invocation": manifest[0][2] if manifest else None, "relations": len(manifest), "problems": problems}


def main(mode: str, serving: str, stop: str, out: str) -> None:
    held = engine(serving).connect() if mode == "held" else None  # kept open through the rebuild and the publish
    with open(out, "w") as f:
        while not Path(stop).exists():
            if held is not None:
                result = check(held)
            else:
                with engine(serving).connect() as fresh:
                    result = check(fresh)
            f.write(json.dumps({"conn": mode, "at": time.time(), **result}) + "\n")
            f.flush()
            time.sleep(0.05)
    if held is not None:
        held.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
