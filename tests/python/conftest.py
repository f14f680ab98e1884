"""Shared fixtures: one small simulated world, written once per test session; and the helpers the end-to-end
reconciliation and ledger tests share (anomaly-rich world parameters, private warehouse copies, dbt logs and test
results)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from tally.land import land
from tally.pipeline import dbt
from tally.score import closing_as_of
from tally.simulate import WorldParams, simulate
from tally.warehouse import connect as connect_warehouse
from tally.warehouse import copy as copy_warehouse

SMALL_WORLD = WorldParams(seed=7, days=3, merchants=4, daily_volume=600)
RECON_RATE = 0.01


@pytest.fixture(scope="session")
def world_params() -> WorldParams:
    return SMALL_WORLD


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, world_params: WorldParams) -> Path:
    """Root of the simulated world (landing/, ground_truth/, world.json)."""
    out = tmp_path_factory.mktemp("world")
    simulate(world_params, out)
    return out


def recon_world_params(seed: int) -> WorldParams:
    """A small world with every anomaly kind switched on, often enough to occur in a few hundred payments a day."""
    rate = RECON_RATE
    return WorldParams(
        seed=seed, days=3, merchants=3, daily_volume=300,
        rate_cross_midnight=rate, rate_internal_processing=rate, rate_internal_only=rate, rate_channel_only=rate,
        rate_amount_mismatch=rate, rate_fee_mismatch=rate, rate_duplicate_channel_row=rate, rate_genuine_twin=rate,
        rate_refund_frozen=0.3,
    )


def dbt_vars(as_of: dt.date | None) -> list[str]:
    """`--vars` arguments for an as-of build (none: the default as-of)."""
    return ["--vars", f"{{as_of: {as_of.isoformat()}}}"] if as_of else []


def data_test_statuses(target: Path) -> dict[str, str]:
    """Data test name -> status (pass, warn, fail, error) from a dbt run's run_results.json."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r["status"] for r in results if r["unique_id"].startswith("test.")}


def failed_tests(target: Path) -> set[str]:
    """The nodes (data tests, or models in a build) that failed or errored; a data test of severity warn that finds
    rows reports `warn`, not `fail`, and is not among them."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2] for r in results if r["status"] in ("fail", "error")}


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = connect_warehouse(warehouse)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@dataclasses.dataclass
class Build:
    world: Path
    data: Path  # TALLY_DATA_DIR (holds lake/)
    warehouse: Path
    as_of: dt.date | None

    def copy(self, dest: Path) -> Build:
        """A private copy of the built warehouse (same lake), to corrupt or rebuild without touching this one."""
        dest.mkdir(parents=True, exist_ok=True)
        wh = dest / "tally.duckdb"
        copy_warehouse(self.warehouse, wh)
        return Build(self.world, self.data, wh, self.as_of)


def closing_build(root: Path, params: WorldParams) -> Build:
    """A world simulated under `root`, landed in full and built (models and seeds, no data tests) as of its closing
    date: what the clearing and ledger tests corrupt or query."""
    world = root / "world"
    simulate(params, world)
    land([world / "landing"], root / "data" / "lake", out=None)
    as_of = closing_as_of(world)
    warehouse = root / "data" / "warehouse" / "tally.duckdb"
    dbt(["build", "--exclude", "resource_type:test", *dbt_vars(as_of)], root / "data", warehouse,
        target_path=root / "target", quiet=True)
    return Build(world, root / "data", warehouse, as_of)


@pytest.fixture(scope="module")
def dbt_logs_in_tmp(tmp_path_factory: pytest.TempPathFactory):
    """Keep dbt's log file out of the project's logs/ (another build may be writing there)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_LOG_PATH", str(tmp_path_factory.mktemp("dbt_logs")))
        yield
