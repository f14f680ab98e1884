"""INV-26 engine parity: the comparison finds every kind of difference and forgives only representation; and the
source columns Spark's external tables declare are exactly what the lander writes. The Spark build itself runs in
`make spark-parity` (it needs the spark extra and Java, which the default install leaves out)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import yaml
from tally.formats import FORMATS
from tally.land import LEDGER_SCHEMA, QUARANTINE_SCHEMA, _raw_schema
from tally.parity import compare, report, sample_differing_rows

PROJECT_DIR = Path(__file__).resolve().parents[2]

MART_SQL = """
create table main.fct_demo as
select * from (values
    ('L1', 'wechat', date '2024-03-04', timestamp '2024-03-04 10:00:01', cast(100 as bigint), cast(1 as bigint),
     cast(0.5 as decimal(9, 6)), true, cast(3 as integer)),
    ('L2', 'alipay', date '2024-03-04', timestamp '2024-03-04 23:59:59', cast(-40 as bigint), cast(0 as bigint),
     cast(1 as decimal(9, 6)), false, cast(null as integer)),
    ('L3', null, date '2024-03-05', null, cast(250 as bigint), cast(2 as bigint),
     cast(0.333333 as decimal(9, 6)), null, cast(7 as integer))
) as t(line_id, channel, bill_date, txn_at, amount_fen, fee_fen, match_rate, is_open, age_days)
"""


@pytest.fixture()
def con(tmp_path: Path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    c.execute(MART_SQL)
    yield c
    c.close()


def _spark_like_copy(con: duckdb.DuckDBPyConnection, tmp_path: Path, select: str = "select * from main.fct_demo",
                     name: str = "copy") -> str:
    """What Spark writes for the mart: the same values with Spark's Parquet types (INT96-style microsecond
    timestamps, int where DuckDB has bigint), rows in another order."""
    path = tmp_path / f"{name}.parquet"
    con.execute(
        f"copy (select * replace (cast(age_days as bigint) as age_days, cast(txn_at as timestamp_ns) as txn_at) "
        f"from ({select}) order by line_id desc) to '{path}' (format parquet)"
    )
    return f"read_parquet('{path}')"


def _parity(con, right: str):
    [result] = compare(con, {"fct_demo": ("main.fct_demo", right)})
    return result


def test_equal_marts_in_another_order_and_other_type_widths_are_equal(con, tmp_path: Path):
    result = _parity(con, _spark_like_copy(con, tmp_path))
    assert result.ok, result.differences
    assert result.left.rows == 3 and dict(result.left.sums) == {"amount_fen": 310, "fee_fen": 3}
    assert "1 of 1 public marts equal" in report([result])


def test_a_changed_amount_differs_in_sum_and_hash(con, tmp_path: Path):
    right = _spark_like_copy(con, tmp_path, "select * replace (case when line_id = 'L2' then -41 else amount_fen end "
                                            "as amount_fen) from main.fct_demo")
    result = _parity(con, right)
    assert not result.ok
    assert "sum(amount_fen) 310 vs 309" in result.differences and "row hash differs" in result.differences
    assert "DIFFER" in report([result])
    samples = sample_differing_rows(con, "main.fct_demo", right)
    assert [s for s, _ in samples] == ["duckdb only", "spark only"] and "-41" in samples[1][1]


def test_amounts_swapped_between_rows_keep_the_sums_but_not_the_hash(con, tmp_path: Path):
    right = _spark_like_copy(con, tmp_path, "select * replace (case line_id when 'L1' then 250 when 'L3' then 100 "
                                            "else amount_fen end as amount_fen) from main.fct_demo")
    result = _parity(con, right)
    assert result.differences == ("row hash differs",)


@pytest.mark.parametrize("change", [
    "case when line_id = 'L3' then 'wechat' else channel end as channel",  # a null became a value
    "cast(txn_at + interval 1 second as timestamp) as txn_at",  # a time moved by a second
    "cast(match_rate + 0.000001 as decimal(9, 6)) as match_rate",  # the last decimal
    "case when line_id = 'L1' then 4 else age_days end as age_days",  # a non-money integer
])
def test_any_changed_value_changes_the_hash(con, tmp_path: Path, change: str):
    result = _parity(con, _spark_like_copy(con, tmp_path, f"select * replace ({change}) from main.fct_demo"))
    assert result.differences == ("row hash differs",)


def test_a_lost_row_or_a_doubled_row_differs(con, tmp_path: Path):
    lost = _parity(con, _spark_like_copy(con, tmp_path, "select * from main.fct_demo where line_id <> 'L2'", "lost"))
    assert "rows 3 vs 2" in lost.differences
    doubled = _parity(con, _spark_like_copy(
        con, tmp_path, "select * from main.fct_demo union all select * from main.fct_demo where line_id = 'L2'",
        "doubled"))
    assert "rows 3 vs 4" in doubled.differences and "row hash differs" in doubled.differences


def test_a_missing_column_differs(con, tmp_path: Path):
    path = tmp_path / "narrow.parquet"
    con.execute(f"copy (select * exclude (fee_fen) from main.fct_demo) to '{path}' (format parquet)")
    result = _parity(con, f"read_parquet('{path}')")
    assert result.differences == ("columns differ: ['fee_fen']",)


def _spark_type(t: pa.DataType) -> str:
    return {pa.string(): "string", pa.int64(): "bigint", pa.date32(): "date", pa.bool_(): "boolean"}.get(
        t, "timestamp" if pa.types.is_timestamp(t) else str(t))


def test_source_columns_declared_for_spark_are_what_the_lander_writes():
    """Spark cannot infer a schema from the lake's `_schema.parquet` files, so the sources declare their columns;
    they must be exactly the lander's (names, order, types), or Spark would read the wrong shape."""
    written = {f.name: [*_raw_schema(f), pa.field("bill_date", pa.date32())] for f in FORMATS.values()}
    written["file_ledger"], written["quarantine_lines"] = list(LEDGER_SCHEMA), list(QUARANTINE_SCHEMA)
    declared = {}
    for path in (PROJECT_DIR / "models" / "staging").glob("*/_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            for table in source["tables"]:
                declared[table["name"]] = [(c["name"], c["data_type"]) for c in table.get("columns", [])]
    assert declared == {t: [(f.name, _spark_type(f.type)) for f in fields] for t, fields in written.items()}
