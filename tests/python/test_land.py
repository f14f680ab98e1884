"""Landing: idempotency, order independence, rejection and quarantine with exact outcomes."""

from __future__ import annotations

import io
import random
import shutil
import zipfile
from pathlib import Path

import duckdb
import pytest
from badinput import lake_snapshot, land_bytes, ledger, quarantine, wechat_text
from tally.land import init_lake, iter_files, land, land_file
from tally.masking import PAN_DIGITS, could_be_pan, luhn_ok, mask_pans
from tally.pipeline import PROJECT_DIR


def test_landing_twice_in_shuffled_order_gives_the_same_lake(world: Path, tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    results = land([world / "landing"], a, out=None)
    assert {r.status for r in results} == {"landed", "duplicate"}
    again = land([world / "landing"], a, out=None)
    assert {r.status for r in again} == {"already_landed"}

    files = iter_files([world / "landing"])
    random.Random(3).shuffle(files)
    init_lake(b)
    for f, root in files:
        land_file(f, root, b)
    for f, root in reversed(files):  # and a second, reversed pass: nothing changes
        land_file(f, root, b)
    assert lake_snapshot(a) == lake_snapshot(b)


def test_every_line_is_detail_quarantine_or_other(world: Path, tmp_path: Path):
    land([world / "landing"], tmp_path, out=None)
    for row in ledger(tmp_path):
        if row["status"] == "landed":
            assert row["lines_total"] == row["lines_detail"] + row["lines_quarantined"] + row["lines_other"]


def test_unknown_format_is_rejected_with_its_name(tmp_path: Path):
    lake = tmp_path / "lake"
    init_lake(lake)
    r = land_bytes(lake, "statement.xlsx", b"PK\x03\x04junk")
    assert r.status == "rejected"
    assert "statement.xlsx: unknown file format" in r.message
    assert ledger(lake)[0]["status"] == "rejected"


def test_truncated_wechat_bill_is_rejected(world: Path, tmp_path: Path):
    name, text = wechat_text(world)
    lines = text.splitlines(keepends=True)
    r = land_bytes(tmp_path / "lake", name, "".join(lines[: len(lines) // 2]).encode())
    assert r.status == "rejected"
    assert name in r.message and "no summary rows" in r.message


def test_excel_damaged_ids_reject_the_file(world: Path, tmp_path: Path):
    name, text = wechat_text(world)
    lines = text.split("\n")
    cells = lines[2].split(",")
    cells[5] = "`4.20000E+27"
    lines[2] = ",".join(cells)
    r = land_bytes(tmp_path / "lake", name, "\n".join(lines).encode())
    assert r.status == "rejected"
    assert f"{name} line 3 column transaction_id" in r.message and "scientific notation" in r.message


@pytest.mark.parametrize(
    ("bad_amount", "reason"),
    [("1,234.50", None), ("1e3", "pattern"), ("１２.00", "pattern"), ("NaN", "pattern"), ("12.345", "pattern")],
)
def test_bad_amounts_are_quarantined_not_cast(world: Path, tmp_path: Path, bad_amount: str, reason: str | None):
    name, text = wechat_text(world)
    lines = text.split("\n")
    cells = lines[1].split(",")
    cells[12] = "`" + bad_amount
    lines[1] = ",".join(cells)
    lake = tmp_path / "lake"
    r = land_bytes(lake, name, "\n".join(lines).encode())
    q = quarantine(lake)
    assert r.status == "landed"
    assert len(q) == 1 and q[0]["line_no"] == 2
    # a thousands separator adds a field in a comma CSV without quotes: the row no longer fits the header
    assert q[0]["reason_code"] == (reason or "field_count")
    led = ledger(lake)[0]
    assert led["lines_quarantined"] == 1
    assert led["lines_total"] == led["lines_detail"] + 1 + led["lines_other"]


def test_missing_backtick_is_quarantined(world: Path, tmp_path: Path):
    name, text = wechat_text(world)
    lines = text.split("\n")
    lines[1] = lines[1].replace(",`CNY,", ",CNY,", 1)
    lake = tmp_path / "lake"
    land_bytes(lake, name, "\n".join(lines).encode())
    q = quarantine(lake)
    assert [(x["line_no"], x["reason_code"]) for x in q] == [(2, "missing_backtick")]
    assert "货币种类" in q[0]["reason"]


def test_pan_in_free_text_is_masked_everywhere(world: Path, tmp_path: Path):
    pan = "4111111111111111"
    assert luhn_ok(pan)
    name, text = wechat_text(world)
    lines = text.split("\n")
    cells = lines[1].split(",")
    cells[21] = f"`card {pan}"  # 商户数据包 (attach): free text
    lines[1] = ",".join(cells)
    cells = lines[2].split(",")
    cells[21] = f"`card {pan}"
    cells[12] = "`bad"
    lines[2] = ",".join(cells)
    lake = tmp_path / "lake"
    land_bytes(lake, name, "\n".join(lines).encode())
    everything = repr(lake_snapshot(lake))
    assert pan not in everything
    assert mask_pans(pan) == "411111******1111" and "411111******1111" in everything


def test_only_card_shaped_numbers_are_masked_by_the_rule_the_pan_test_uses():
    """Luhn-valid ids that are not card numbers stay: a UnionPay merchant code, an Alipay PID. Card numbers of each
    network prefix are masked. The dbt macro spells the same pattern, and DuckDB's RE2 reads it as Python does."""
    cards = ["4111111111111111", "6222021234567890128", "2221000000000009", "8171999927660000", "378282246310005",
             "1000000000000008"]
    not_cards = ["898000511033479", "2088000001047290", "7000000000000005", "9000000000000001", "4111111111111112"]
    assert all(luhn_ok(x) for x in cards + not_cards[:4])
    for x in cards:
        assert could_be_pan(x) and mask_pans(f"paid {x}.") == f"paid {x[:6]}{'*' * (len(x) - 10)}{x[-4:]}."
    for x in not_cards:
        assert not could_be_pan(x) and mask_pans(f"UN结算 20240304 {x}") == f"UN结算 20240304 {x}"
    macro = (PROJECT_DIR / "macros" / "masking" / "could_be_pan.sql").read_text(encoding="utf-8")
    assert f"\n    {PAN_DIGITS}\n" in macro
    con = duckdb.connect()
    try:
        full = con.execute("select [regexp_full_match(x, ?) for x in ?]", [PAN_DIGITS, cards + not_cards]).fetchone()[0]
    finally:
        con.close()
    assert full == [True] * len(cards) + [False, False, False, False, True]  # the last one fails Luhn, not the shape


def test_wrong_encoding_is_rejected(world: Path, tmp_path: Path):
    name, text = wechat_text(world)
    r = land_bytes(tmp_path / "lake", name, text.encode("gbk"))
    assert r.status == "rejected" and "not valid utf-8" in r.message and name in r.message


def test_zip_slip_member_is_rejected(world: Path, tmp_path: Path):
    src = next(iter(sorted(world.glob("landing/*/unionpay/*.zip"))))
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        zout.writestr("../../etc/evil", b"x")
    r = land_bytes(tmp_path / "lake", src.name, buf.getvalue())
    assert r.status == "rejected" and "unsafe path (zip slip)" in r.message
    assert not (tmp_path / "etc").exists()


def test_zip_bomb_is_rejected(world: Path, tmp_path: Path):
    src = next(iter(sorted(world.glob("landing/*/unionpay/*.zip"))))
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
        zout.writestr("padding", b"\0" * 50_000_000)
    r = land_bytes(tmp_path / "lake", src.name, buf.getvalue())
    assert r.status == "rejected" and "zip bomb" in r.message


def test_reissued_file_keeps_both_versions(world: Path, tmp_path: Path):
    land([world / "landing"], tmp_path, out=None)
    reissued = [r for r in ledger(tmp_path) if r["source_path"].endswith(".reissued.csv")]
    assert len(reissued) == 1
    same_key = [r for r in ledger(tmp_path) if r["format"] == reissued[0]["format"]
                and r["merchant_key"] == reissued[0]["merchant_key"] and r["bill_date"] == reissued[0]["bill_date"]]
    assert len(same_key) == 2 and len({r["sha256"] for r in same_key}) == 2
    assert all((tmp_path / "files" / r["sha256"]).exists() for r in same_key)
    # the raw Parquet of both versions is kept; staging picks the current one (dbt tests in test_pipeline.py)
    assert all(any((tmp_path / "raw").glob(f"*/*/{r['file_version_id']}.parquet")) for r in same_key)


def test_landing_leaves_no_temp_files(world: Path, tmp_path: Path):
    land([world / "landing"], tmp_path, out=None)
    assert not [p for p in tmp_path.rglob(".*tmp-*")]
    shutil.rmtree(tmp_path / "raw")  # a rerun after losing derived files does not resurrect them silently
    assert {r.status for r in land([world / "landing"], tmp_path, out=None)} == {"already_landed"}
