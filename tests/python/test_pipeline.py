"""End to end: simulate -> land -> dbt build with every data test; and each invariant test shown to fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import failed_tests
from tally.land import land
from tally.pipeline import DUCKDB_MEMORY_LIMIT_DEFAULT, PROJECT_DIR, dbt, duckdb_memory_limit, summary
from tally.warehouse import connect as connect_warehouse


def _build(lake_parent: Path, target: Path) -> Path:
    warehouse = lake_parent / "warehouse" / "tally.duckdb"
    dbt(["build"], lake_parent, warehouse, target_path=target, quiet=True)
    return warehouse


@pytest.fixture(scope="module")
def landed(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    land([world / "landing"], data / "lake", out=None)
    return data


def test_end_to_end_build_passes_every_data_test(world: Path, landed: Path, tmp_path: Path):
    warehouse = _build(landed, tmp_path / "target")
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    assert sum(1 for r in results if r["unique_id"].startswith("test.")) >= 30
    assert all(r["status"] in ("success", "pass") for r in results)
    # dbt's usage events are off (dbt_project.yml flags): the manifest records that none were sent, and no user id
    metadata = json.loads((tmp_path / "target" / "manifest.json").read_text())["metadata"]
    assert metadata["send_anonymous_usage_stats"] is False and metadata["user_id"] is None
    con = connect_warehouse(warehouse)
    statuses = dict(con.execute(
        "select file_status, count(*) from main_staging.stg_lake__file_deliveries group by 1").fetchall())
    assert statuses["duplicate"] == 1 and statuses["superseded"] == 1 and "rejected" not in statuses
    # the re-issued WeChat bill: staging reads the corrected version only
    n_versions = con.execute(
        """select count(distinct file_version_id) from main_staging.stg_wechat__trade_bill_lines
           where file_version_id in (
               select file_version_id from main_staging.stg_lake__file_deliveries
               where source_path like '%reissued%' or superseded_by_file_version_id is not null)"""
    ).fetchall()[0][0]
    assert n_versions == 1
    # internal payments staged = rows in the dumps, to the fen
    staged = con.execute("select count(*), sum(amount_fen) from main_staging.stg_internal__payments").fetchall()[0]
    con.close()
    dumps = sorted(world.glob("landing/*/internal/internal_payments_*.csv"))
    assert dumps
    rows = [ln.split(",") for p in dumps for ln in p.read_text().splitlines()[1:]]
    assert staged == (len(rows), sum(int(r[4]) for r in rows))
    text = summary(warehouse)
    assert "files by status" in text
    # the books balance on a fresh build, and the summary says so
    ledger_line = next(line for line in text.splitlines() if line.startswith("ledger: "))
    assert "NOT BALANCED" not in ledger_line
    debits, credits = (part.split()[-1] for part in ledger_line.removesuffix(" yuan").split(" = "))
    assert debits == credits.removeprefix("credits ") and float(debits.replace(",", "")) > 0


def _corrupt_copy(landed: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(landed / "lake", data / "lake")
    return data


def _rewrite(path: Path, fn) -> None:
    t = pq.read_table(path)
    pq.write_table(fn(t), path)


def _first_raw(data: Path, fmt: str) -> Path:
    return next(p for p in sorted((data / "lake" / "raw" / fmt).glob("bill_date=2*/*.parquet")))


def test_inv02_line_conservation_fails_when_a_raw_row_is_lost(landed: Path, tmp_path: Path):
    data = _corrupt_copy(landed, tmp_path)
    _rewrite(_first_raw(data, "internal_payments"), lambda t: t.slice(1))
    with pytest.raises(RuntimeError):
        _build(data, tmp_path / "target")
    assert "assert_line_conservation" in failed_tests(tmp_path / "target")


def test_inv04_control_totals_fail_when_detail_disagrees(landed: Path, tmp_path: Path):
    data = _corrupt_copy(landed, tmp_path)

    def bump(t: pa.Table) -> pa.Table:
        col = t.column("settlement_amount").to_pylist()
        kinds = t.column("trade_state").to_pylist()
        i = kinds.index("SUCCESS")
        whole, frac = col[i].split(".")
        col[i] = f"{int(whole) + 1}.{frac}"
        return t.set_column(t.schema.get_field_index("settlement_amount"), "settlement_amount", pa.array(col))

    _rewrite(_first_raw(data, "wechat_trade_bill"), bump)
    with pytest.raises(RuntimeError):
        _build(data, tmp_path / "target")
    assert "assert_control_totals_match" in failed_tests(tmp_path / "target")


def test_inv27_an_unmasked_pan_fails_the_build(landed: Path, tmp_path: Path):
    data = _corrupt_copy(landed, tmp_path)

    def leak(t: pa.Table) -> pa.Table:
        col = t.column("subject").to_pylist()
        col[0] = "paid with 4111111111111111"
        return t.set_column(t.schema.get_field_index("subject"), "subject", pa.array(col))

    _rewrite(_first_raw(data, "internal_payments"), leak)
    with pytest.raises(RuntimeError):
        _build(data, tmp_path / "target")
    assert any(t.startswith("no_unmasked_pan_stg_internal__payments") for t in failed_tests(tmp_path / "target"))


def test_inv03_quarantine_row_without_landed_file_fails(landed: Path, tmp_path: Path):
    data = _corrupt_copy(landed, tmp_path)
    stray = pa.table({"file_version_id": ["f" * 20], "line_no": [7], "line_span": [1], "reason_code": ["pattern"],
                      "reason": ["x"], "masked_line": ["x"]},
                     schema=pq.read_schema(data / "lake" / "quarantine" / "_schema.parquet"))
    pq.write_table(stray, data / "lake" / "quarantine" / "stray.parquet")
    with pytest.raises(RuntimeError):
        _build(data, tmp_path / "target")
    assert "assert_quarantine_points_to_landed_file" in failed_tests(tmp_path / "target")


def test_dbt_profile_and_the_toolbelt_share_one_duckdb_memory_limit(monkeypatch: pytest.MonkeyPatch):
    """dbt (profiles.yml) and tally publish / the bench read the same variable with the same default."""
    profile = (PROJECT_DIR / "profiles.yml").read_text(encoding="utf-8")
    assert f"env_var('TALLY_DUCKDB_MEMORY_LIMIT', '{DUCKDB_MEMORY_LIMIT_DEFAULT}')" in profile
    monkeypatch.delenv("TALLY_DUCKDB_MEMORY_LIMIT", raising=False)
    assert duckdb_memory_limit() == DUCKDB_MEMORY_LIMIT_DEFAULT
    monkeypatch.setenv("TALLY_DUCKDB_MEMORY_LIMIT", "3GB")
    assert duckdb_memory_limit() == "3GB"
