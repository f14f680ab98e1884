"""The bad-input corpus (reliability-anchors.md §6): one test per kind of damaged or hostile delivery.

Each input is a real simulated file with a few bytes or lines changed. Each test asserts the exact outcome (the
rejection message with file, line and reason, or the exact quarantine rows) and line conservation in the lake.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
import string
import tracemalloc
import zipfile
from pathlib import Path

import duckdb
import jinja2
import pytest
from badinput import (
    ALIPAY,
    ALL_FORMATS,
    INTERNAL,
    PAYOUT,
    STATEMENT,
    UNIONPAY,
    WECHAT,
    alipay_file,
    alipay_row,
    alipay_zip,
    assert_conserved,
    encode,
    land_bytes,
    ledger,
    make_zip,
    q_rows,
    quarantine,
    raw_rows,
    text_file,
    wechat_cells,
    wechat_line,
    without_lineage,
    world_file,
    zip_members,
)
from tally.formats import REASONS
from tally.land import MAX_LINE_CHARS, MAX_MEMBERS, LandResult
from tally.masking import luhn_ok, mask_pans

REPO = Path(__file__).resolve().parents[2]


def _land(tmp_path: Path, name: str, data: bytes, lake: str = "lake") -> tuple[LandResult, Path]:
    """Land one delivery into a lake under tmp_path and check line conservation for everything in that lake."""
    r = land_bytes(tmp_path / lake, name, data)
    assert_conserved(tmp_path / lake, r)
    return r, tmp_path / lake


def _rejected(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    r, lake = _land(tmp_path, name, data)
    assert (r.status, r.message) == ("rejected", message)
    assert [row["status"] for row in ledger(lake)] == ["rejected"]


def _quarantined(tmp_path: Path, name: str, data: bytes, expected: list[tuple]) -> tuple[LandResult, Path]:
    """Landed, with exactly the expected quarantine rows (line_no, line_span, reason_code, raw line): the stored
    line is the raw line with card numbers masked (bank account numbers are card numbers) and cut at 4096."""
    r, lake = _land(tmp_path, name, data)
    assert r.status == "landed", r.message
    assert q_rows(lake) == [(n, span, code, mask_pans(line)[:4096]) for n, span, code, line in expected]
    return r, lake


def _wechat(world: Path, line: int, column: str, value: str) -> tuple[str, list[str], bytes]:
    """The WeChat bill with one cell of physical line `line` (1-based) set to value (its backtick kept)."""
    name, lines = text_file(world, WECHAT)
    cells = wechat_cells(lines[line - 1])
    cells[wechat_cells(lines[0]).index(column)] = value
    lines[line - 1] = wechat_line(cells)
    return name, lines, encode(WECHAT, lines)


def _reason(lake: Path, line_no: int) -> str:
    return next(q["reason"] for q in quarantine(lake) if q["line_no"] == line_no)


# ---------------------------------------------------------------------------------------------------------------
# 6.1 Delivery and file level
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(ALL_FORMATS))
def test_zero_byte_file_is_rejected(world: Path, tmp_path: Path, fmt: str):
    name = world_file(world, *ALL_FORMATS[fmt][:2]).name
    _rejected(tmp_path, name, b"", f"{name}: zero-byte file (failed download?); an empty day still has a header "
                                   "or 'no bill' body")


@pytest.mark.parametrize("signal", ["No Bill Exist", "NO_STATEMENT_EXIST"])
def test_wechat_no_bill_body_is_a_valid_empty_day(tmp_path: Path, signal: str):
    body = (f"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[{signal}]]></return_msg>"
            "<error_code><![CDATA[20002]]></error_code></xml>")
    r, lake = _land(tmp_path, "wechat_1601007919_20240309_ALL.csv", body.encode())
    assert (r.status, r.format, r.detail, r.quarantined, r.other) == ("landed", "wechat_trade_bill", 0, 0, 1)
    (row,) = ledger(lake)
    assert row["is_empty_day"] is True and row["ctl_row_count"] == 0
    assert (row["merchant_key"], row["bill_date"].isoformat()) == ("1601007919", "2024-03-09")
    assert raw_rows(lake) == [] and quarantine(lake) == []


def test_wechat_error_body_is_rejected(tmp_path: Path):
    name = "wechat_1601007919_20240309_ALL.csv"
    body = b"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[SIGNERROR]]></return_msg></xml>"
    _rejected(tmp_path, name, body, f"{name} line 1: WeChat returned an error body instead of a bill")


HTML = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n"


UNKNOWN = ": unknown file format (not a format Tally knows by name and content)"


@pytest.mark.parametrize(
    ("fmt", "why"),
    [
        ("wechat", " line 1: unknown column '<!DOCTYPE html>' in the wechat_trade_bill header"),
        ("internal", " line 1: unknown column '<!DOCTYPE html>' in the internal_payments header"),
        ("statement", " line 1: a bank statement starts with the 账号: block"),
        ("payout", UNKNOWN),
        ("alipay", UNKNOWN),
        ("unionpay", UNKNOWN),
    ],
)
def test_html_error_page_saved_as_the_file_is_rejected(world: Path, tmp_path: Path, fmt: str, why: str):
    name = world_file(world, *ALL_FORMATS[fmt][:2]).name
    _rejected(tmp_path, name, HTML.encode(), name + why)


def test_truncated_wechat_bill_without_its_summary_is_rejected(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    cut = lines[:40]
    _rejected(tmp_path, name, encode(WECHAT, cut), f"{name}: no summary rows at the end (truncated file?); line "
              "count 40")


def test_wechat_bill_cut_mid_line_is_rejected(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    data = encode(WECHAT, lines)
    data = data[: data.rindex(b",")]  # the download stops inside the last summary value
    _rejected(tmp_path, name, data, f"{name} line {len(lines)}: summary row has 6 fields, header 7")


def test_wechat_bill_cut_inside_a_detail_line_is_rejected(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    data = encode(WECHAT, lines[:30])[:-40]
    _rejected(tmp_path, name, data, f"{name}: no summary rows at the end (truncated file?); line count 30")


def test_alipay_detail_without_its_footer_is_rejected(world: Path, tmp_path: Path):
    name, members, detail, lines = alipay_file(world)
    cut = [ln for ln in lines if not ln.startswith(("#交易合计", "#退款合计", "#导出时间"))]
    _rejected(tmp_path, name, alipay_zip(members, detail, cut), f"{name}: no #交易合计 footer (truncated file?)")


def test_alipay_detail_with_only_comment_lines_is_rejected(world: Path, tmp_path: Path):
    name, members, detail, lines = alipay_file(world)
    only_comments = [ln for ln in lines if ln.startswith("#")]
    _rejected(tmp_path, name, alipay_zip(members, detail, only_comments),
              f"{name}!{detail}: only # comment lines, no header line (truncated file?)")


def test_bank_statement_without_its_totals_row_is_rejected(world: Path, tmp_path: Path):
    name, lines = text_file(world, STATEMENT)
    _rejected(tmp_path, name, encode(STATEMENT, lines[:-1]), f"{name}: no 合计 totals row at the end (truncated file?)")


def test_bank_statement_cut_inside_its_totals_row_is_rejected(world: Path, tmp_path: Path):
    name, lines = text_file(world, STATEMENT)
    data = encode(STATEMENT, lines)
    data = data[: data.rindex(b'"') - 3]  # inside the quoted 贷方 total
    _rejected(tmp_path, name, data, f"{name} line {len(lines)}: the 合计 row has 5 fields, the header 12")


def test_payout_result_missing_record_lines_is_rejected(world: Path, tmp_path: Path):
    name, lines = text_file(world, PAYOUT)
    announced = int(lines[0].split("|")[3])
    assert announced == len(lines) - 1
    _rejected(tmp_path, name, encode(PAYOUT, lines[:-1]),
              f"{name}: the H| header announces {announced} records, the file has {announced - 1} record lines "
              "(truncated file?)")


@pytest.mark.parametrize("fmt", ["alipay", "unionpay"])
def test_truncated_zip_is_rejected(world: Path, tmp_path: Path, fmt: str):
    p = world_file(world, *ALL_FORMATS[fmt][:2])
    data = p.read_bytes()
    _rejected(tmp_path, p.name, data[: len(data) * 2 // 3],
              f"{p.name}: not a readable zip archive (File is not a zip file); truncated download?")


def test_zip_member_with_a_bad_crc_is_rejected(world: Path, tmp_path: Path):
    name, members, detail, lines = alipay_file(world)
    data = bytearray(make_zip(members, compression=zipfile.ZIP_STORED))
    at = bytes(data).index("#交易合计：".encode("gbk")) + len("#交易合计：".encode("gbk"))
    data[at] = ord("9") if data[at] != ord("9") else ord("8")  # one digit flipped in transit: the CRC disagrees
    _rejected(tmp_path, name, bytes(data),
              f"{name}: archive member '{detail}' cannot be read (Bad CRC-32 for file '{detail}'); truncated download?")


def test_zip_member_with_a_corrupt_deflate_stream_is_rejected(world: Path, tmp_path: Path):
    p = world_file(world, *UNIONPAY[:2])
    members = zip_members(p)
    data = bytearray(make_zip(members))
    data[200] ^= 0xFF
    r, lake = _land(tmp_path, p.name, bytes(data))
    member = next(k for k in members if "88ZM_" in k)
    assert r.status == "rejected"
    assert r.message.startswith(f"{p.name}: archive member '{member}' cannot be read (")
    assert r.message.endswith("); truncated download?")


def test_gzip_wrapped_file_lands_as_its_content(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    plain, lake_plain = _land(tmp_path, name, encode(WECHAT, lines), "plain")
    wrapped, lake_gz = _land(tmp_path, name + ".gz", gzip.compress(encode(WECHAT, lines), mtime=0), "gz")
    assert (wrapped.status, wrapped.format, wrapped.detail, wrapped.other) == (
        "landed", "wechat_trade_bill", plain.detail, plain.other)
    assert without_lineage(raw_rows(lake_gz)) == without_lineage(raw_rows(lake_plain))
    assert ledger(lake_gz)[0]["source_path"] == name + ".gz"


def test_truncated_gzip_is_rejected(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    data = gzip.compress(encode(WECHAT, lines), mtime=0)
    _rejected(tmp_path, name + ".gz", data[: len(data) // 2], f"{name}.gz: not a complete gzip stream (Compressed "
              "file ended before the end-of-stream marker was reached); truncated download?")


def test_corrupt_gzip_stream_is_rejected(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    data = bytearray(gzip.compress(encode(WECHAT, lines), mtime=0))
    data[len(data) // 2] ^= 0xFF
    r, _ = _land(tmp_path, name + ".gz", bytes(data))
    assert r.status == "rejected"
    assert r.message.startswith(f"{name}.gz: not a complete gzip stream (") and r.message.endswith("download?")


def test_gzip_bomb_is_rejected_without_expanding_it_in_memory(world: Path, tmp_path: Path):
    name = world_file(world, *WECHAT[:2]).name
    bomb = gzip.compress(b"0" * 1_000_000, mtime=0) * 200  # 200 gzip members: 200 MB from about 200 KB
    tracemalloc.start()
    try:
        _rejected(tmp_path, name + ".gz", bomb, f"{name}.gz: gzip expands past the size/ratio limit (gzip bomb?)")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(bomb) < 250_000 and peak < 100_000_000  # stopped at the ratio limit (about 40 MB), not at 200 MB


def test_duplicate_delivery_under_another_name_adds_no_rows(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    data = encode(WECHAT, lines)
    lake = tmp_path / "lake"
    first = land_bytes(lake, name, data)
    copy = land_bytes(lake, name.replace("_ALL.csv", "_ALL.copy.csv"), data)
    again = land_bytes(lake, name, data)
    assert (first.status, copy.status, again.status) == ("landed", "duplicate", "already_landed")
    rows = assert_conserved(lake, first, copy)
    assert len(rows) == 2 and len({r["sha256"] for r in rows}) == 1
    data_files = [p.name for p in (lake / "raw").glob("*/bill_date=2024*/*.parquet")]
    assert data_files == [f"{rows[0]['file_version_id']}.parquet"]
    assert len(raw_rows(lake)) == first.detail == copy.detail


def test_reissued_file_with_the_same_key_keeps_both_versions(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    lake = tmp_path / "lake"
    first = land_bytes(lake, name, encode(WECHAT, lines))
    cells = wechat_cells(lines[1])
    body_at = wechat_cells(lines[0]).index("商品名称")
    old_body, cells[body_at] = cells[body_at], "更正后的商品名"
    lines[1] = wechat_line(cells)
    second = land_bytes(lake, name, encode(WECHAT, lines))  # same name, other bytes
    assert (first.status, second.status) == ("landed", "landed")
    rows = assert_conserved(lake)
    assert len({r["file_version_id"] for r in rows}) == 2
    assert {(r["format"], r["merchant_key"], r["bill_date"].isoformat()) for r in rows} == {
        ("wechat_trade_bill", "1601007919", "2024-03-04")}
    assert len(raw_rows(lake)) == 2 * first.detail
    assert sorted(r["body"] for r in raw_rows(lake) if r["line_no"] == 2) == sorted([old_body, "更正后的商品名"])


@pytest.mark.parametrize("fmt", ["internal", "alipay", "payout"])
def test_empty_day_lands_with_no_detail(world: Path, tmp_path: Path, fmt: str):
    if fmt == "internal":
        name, lines = text_file(world, INTERNAL)
        data, other = encode(INTERNAL, lines[:1]), 1
    elif fmt == "payout":
        name, lines = text_file(world, PAYOUT)
        h = lines[0].split("|")
        data, other = encode(PAYOUT, ["|".join(h[:3] + ["0"] * 6)]), 1
    else:
        name, members, detail, lines = alipay_file(world)
        first = alipay_row(lines)
        end = next(i for i in range(first, len(lines)) if lines[i].startswith("#"))
        zero = "#交易合计：0笔，商家实收共0.00元，商家优惠共0.00元"
        body = lines[:first] + [zero if ln.startswith("#交易合计") else ln for ln in lines[end:]]
        members = {k: v for k, v in members.items() if k == detail}  # no 汇总 file either
        data, other = alipay_zip(members, detail, body), len(body)
    r, lake = _land(tmp_path, name, data)
    assert (r.status, r.detail, r.quarantined, r.other) == ("landed", 0, 0, other)
    assert raw_rows(lake) == []


# ---------------------------------------------------------------------------------------------------------------
# Header metadata against the file name (bad input #7)
# ---------------------------------------------------------------------------------------------------------------


def test_alipay_header_account_must_match_the_file_name(world: Path, tmp_path: Path):
    name, members, detail, lines = alipay_file(world)
    at = next(i for i, ln in enumerate(lines) if ln.startswith("#账号"))
    lines[at] = "#账号：[20880000009999990156]"
    _rejected(tmp_path, name, alipay_zip(members, detail, lines), f"{name}!{detail} line {at + 1}: #账号 "
              f"[20880000009999990156] does not match the file name's account {name[:20]}")


def test_alipay_header_date_must_match_the_file_name(world: Path, tmp_path: Path):
    name, members, detail, lines = alipay_file(world)
    at = next(i for i, ln in enumerate(lines) if ln.startswith("#起始日期"))
    lines[at] = "#起始日期：[2024年03月01日 00:00:00]   终止日期：[2024年03月02日 00:00:00]"
    day = f"{name[21:25]}-{name[25:27]}-{name[27:29]}"
    _rejected(tmp_path, name, alipay_zip(members, detail, lines),
              f"{name}!{detail} line {at + 1}: #起始日期 2024-03-01 does not match the file name's bill date {day}")


def test_bank_statement_header_account_must_match_the_file_name(world: Path, tmp_path: Path):
    name, lines = text_file(world, STATEMENT)
    acct = lines[0].split(",")[1]
    lines[0] = lines[0].replace(acct, "6214830199999999")
    _rejected(tmp_path, name, encode(STATEMENT, lines),
              f"{name} line 1: 账号 '6214830199999999' does not match the file name's account '{acct}'")


def test_bank_statement_header_date_must_match_the_file_name(world: Path, tmp_path: Path):
    name, lines = text_file(world, STATEMENT)
    day = lines[1].split(",")[1]
    lines[1] = lines[1].replace(day, "2024-03-01")
    _rejected(tmp_path, name, encode(STATEMENT, lines),
              f"{name} line 2: 起始日期 2024-03-01 does not match the file name's bill date {day}")


@pytest.mark.parametrize("field", ["batch", "date"])
def test_payout_header_batch_and_date_must_match_the_file_name(world: Path, tmp_path: Path, field: str):
    name, lines = text_file(world, PAYOUT)
    h = lines[0].split("|")
    want_batch, want_date = h[1], h[2]
    if field == "batch":
        h[1] = "B20240301000009"
    else:
        h[2] = "20240301"
    lines[0] = "|".join(h)
    _rejected(tmp_path, name, encode(PAYOUT, lines), f"{name} line 1: header batch {h[1]} date {h[2]} does not "
              f"match the file name's batch {want_batch} date {want_date}")


def test_unionpay_member_must_be_for_the_file_names_merchant_and_day(world: Path, tmp_path: Path):
    p = world_file(world, *UNIONPAY[:2])
    members = zip_members(p)
    zm = next(k for k in members if "88ZM_" in k)
    other = {k.replace(zm[3:9], "240301"): v for k, v in members.items()}
    day = f"{p.name[16:20]}-{p.name[20:22]}-{p.name[22:24]}"
    _rejected(tmp_path, p.name, make_zip(other), f"{p.name}: member {zm.replace(zm[3:9], '240301')} is for merchant "
              f"{p.name[:15]} on 2024-03-01, the file name says merchant {p.name[:15]} on {day}")


def test_impossible_date_in_the_file_name_is_rejected(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    bad = name.replace(name[18:26], "20240230")
    _rejected(tmp_path, bad, encode(WECHAT, lines), f"{bad}: '20240230' is not a real date (yyyymmdd)")


# ---------------------------------------------------------------------------------------------------------------
# 6.2 Encoding and bytes
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [WECHAT, INTERNAL], ids=["wechat", "internal"])
def test_gbk_bytes_in_a_utf8_file_reject_it_naming_the_line(world: Path, tmp_path: Path, kind: tuple):
    name, lines = text_file(world, kind)
    data = encode(kind, lines[:5]) + "外卖订单\n".encode("gbk") + encode(kind, lines[5:])
    _rejected(tmp_path, name, data, f"{name} line 6: bytes are not valid utf-8 (invalid continuation byte); wrong "
              "encoding?")


def test_alipay_csv_resaved_as_utf8_inside_the_zip_is_rejected(world: Path, tmp_path: Path):
    name, members, detail, lines = alipay_file(world)
    _rejected(tmp_path, name, alipay_zip(members, detail, lines, encoding="utf-8"),
              f"{name}!{detail} line 1: bytes are not valid gbk (illegal multibyte sequence); wrong encoding?")


def test_bank_statement_resaved_as_utf8_is_rejected(world: Path, tmp_path: Path):
    name, lines = text_file(world, STATEMENT)
    data = encode(STATEMENT, lines).decode("gbk").encode("utf-8")
    _rejected(tmp_path, name, data, f"{name} line 1: bytes are not valid gbk (illegal multibyte sequence); wrong "
              "encoding?")


def test_unionpay_field_that_is_not_gbk_rejects_the_file(world: Path, tmp_path: Path):
    p = world_file(world, *UNIONPAY[:2])
    members = zip_members(p)
    zm = next(k for k in members if "88ZM_" in k)
    lines = members[zm].split(b"\r\n")
    lines[2] = lines[2][:327] + b"\xff\xfe" + lines[2][329:]  # sub_mer_abbr, same byte length
    _rejected(tmp_path, p.name, make_zip({**members, zm: b"\r\n".join(lines)}),
              f"{p.name} line 3 column sub_mer_abbr: bytes are not valid gbk (illegal multibyte sequence); wrong "
              "encoding?")


@pytest.mark.parametrize("kind", [WECHAT, INTERNAL], ids=["wechat", "internal"])
def test_utf8_bom_is_accepted(world: Path, tmp_path: Path, kind: tuple):
    name, lines = text_file(world, kind)
    plain, lake_plain = _land(tmp_path, name, encode(kind, lines), "plain")
    bom, lake_bom = _land(tmp_path, name, b"\xef\xbb\xbf" + encode(kind, lines), "bom")
    assert bom.status == "landed" and (bom.detail, bom.quarantined, bom.other) == (plain.detail, 0, plain.other)
    assert without_lineage(raw_rows(lake_bom)) == without_lineage(raw_rows(lake_plain))


@pytest.mark.parametrize(
    ("kind", "eol"), [(WECHAT, "\r\n"), (INTERNAL, "\r\n"), (STATEMENT, "\n"), (PAYOUT, "\n")],
    ids=["wechat-crlf", "internal-crlf", "statement-lf", "payout-lf"],
)
def test_crlf_and_lf_line_ends_land_the_same_rows(world: Path, tmp_path: Path, kind: tuple, eol: str):
    name, lines = text_file(world, kind)
    native, lake_native = _land(tmp_path, name, encode(kind, lines), "native")
    other, lake_other = _land(tmp_path, name, encode(kind, lines, eol), "other")
    assert (other.status, other.detail, other.quarantined, other.other) == ("landed", native.detail, 0, native.other)
    assert without_lineage(raw_rows(lake_other)) == without_lineage(raw_rows(lake_native))


def test_lone_cr_line_ends_are_rejected_not_misread(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    data = encode(WECHAT, lines, "\r")
    _rejected(tmp_path, name, data, f"{name} line 1: unknown column {'费率备注' + chr(13) + '`' + lines[1][1:20]!r} in "
              "the wechat_trade_bill header")


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f"], ids=["nul", "esc", "del"])
def test_nul_and_control_characters_quarantine_the_line(world: Path, tmp_path: Path, char: str):
    name, lines, data = _wechat(world, 4, "商品名称", f"咖啡{char}拿铁")
    _, lake = _quarantined(tmp_path, name, data, [(4, 1, "control_char", lines[3])])
    assert _reason(lake, 4) == f"{name} line 4: {REASONS['control_char']}: line holds NUL or control characters"


@pytest.mark.parametrize(
    ("column", "value"),
    [("应结订单金额", "１２.00"), ("应结订单金额", "12.00\u00a0"), ("商户订单号", "ORD\u200b000000000161")],
    ids=["fullwidth-digits", "nbsp", "zero-width-space-in-id"],
)
def test_unicode_lookalikes_are_quarantined(world: Path, tmp_path: Path, column: str, value: str):
    name, lines, data = _wechat(world, 2, column, value)
    _quarantined(tmp_path, name, data, [(2, 1, "pattern", lines[1])])


# ---------------------------------------------------------------------------------------------------------------
# 6.3 Structure
# ---------------------------------------------------------------------------------------------------------------


def test_alipay_header_with_half_width_brackets_and_spaces_lands_the_same(world: Path, tmp_path: Path):
    name, members, detail, lines = alipay_file(world)
    plain, lake_plain = _land(tmp_path, name, alipay_zip(members, detail, lines), "plain")
    h = alipay_row(lines) - 1
    lines[h] = ",".join(f" {c} " for c in lines[h].replace("（", "(").replace("）", ")").split(","))
    drift, lake_drift = _land(tmp_path, name, alipay_zip(members, detail, lines), "drift")
    assert (drift.status, drift.detail, drift.quarantined) == ("landed", plain.detail, 0)
    assert without_lineage(raw_rows(lake_drift)) == without_lineage(raw_rows(lake_plain))


def test_legacy_wechat_layout_lands(world: Path, tmp_path: Path):
    """The older ALL bill: 总金额 / 企业红包金额 columns, no 订单金额 / 申请退款金额 / 费率备注, old summary names."""
    name, lines = text_file(world, WECHAT)
    plain, lake_plain = _land(tmp_path, name, encode(WECHAT, lines), "plain")
    legacy_names = {"应结订单金额": "总金额", "代金券金额": "企业红包金额", "充值券退款金额": "企业红包退款金额"}
    header = [legacy_names.get(h, h) for h in lines[0].split(",")][:24]
    body = [",".join(ln.split(",")[:24]) for ln in lines[1:-2]]
    s_head, s_val = lines[-2].split(","), lines[-1].split(",")
    summary = ["总交易单数,总交易额,总退款金额,总企业红包退款金额,手续费总金额", ",".join(s_val[:5])]
    assert s_head[:5] == ["总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额"]
    legacy, lake = _land(tmp_path, name, encode(WECHAT, [",".join(header)] + body + summary), "legacy")
    assert (legacy.status, legacy.detail, legacy.quarantined) == ("landed", plain.detail, 0)
    old, new = raw_rows(lake), raw_rows(lake_plain)
    assert [r["settlement_amount"] for r in old] == [r["settlement_amount"] for r in new]
    assert {r["order_amount"] for r in old} == {None} and {r["rate_remark"] for r in old} == {None}
    assert ledger(lake)[0]["ctl_payment_fen"] == ledger(lake_plain)[0]["ctl_payment_fen"]


@pytest.mark.parametrize("kind", [WECHAT, INTERNAL], ids=["wechat", "internal"])
def test_columns_in_another_order_land_the_same_rows(world: Path, tmp_path: Path, kind: tuple):
    name, lines = text_file(world, kind)
    plain, lake_plain = _land(tmp_path, name, encode(kind, lines), "plain")
    rows = [ln.split(",") for ln in lines[:-2]] if kind is WECHAT else list(csv.reader(lines))
    order = list(range(len(rows[0])))[::-1]
    if kind is WECHAT:
        moved = [",".join(r[i] for i in order) for r in rows] + lines[-2:]
    else:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([[r[i] for i in order] for r in rows])
        moved = buf.getvalue().rstrip("\n").split("\n")
    r, lake = _land(tmp_path, name, encode(kind, moved), "moved")
    assert (r.status, r.detail, r.quarantined) == ("landed", plain.detail, 0)
    assert without_lineage(raw_rows(lake)) == without_lineage(raw_rows(lake_plain))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("rename", "line 1: unknown column '交易日期' in the wechat_trade_bill header"),
        ("drop", "line 1: the wechat_trade_bill header lacks required column(s) ['settlement_amount']"),
        ("twice", "line 1: column '交易状态' appears twice in the header"),
    ],
)
def test_unknown_missing_or_repeated_header_column_rejects_the_file(world: Path, tmp_path: Path, change: str,
                                                                     why: str):
    name, lines = text_file(world, WECHAT)
    header = lines[0].split(",")
    if change == "rename":
        header[0] = "交易日期"
    elif change == "drop":
        i = header.index("应结订单金额")
        lines = [",".join(c for j, c in enumerate(ln.split(",")) if j != i) for ln in lines[:-2]] + lines[-2:]
        header = lines[0].split(",")
    else:
        header[header.index("交易类型")] = "交易状态"
    lines[0] = ",".join(header)
    _rejected(tmp_path, name, encode(WECHAT, lines), f"{name} {why}")


@pytest.mark.parametrize(
    ("kind", "extra", "detail"),
    [
        (WECHAT, True, "28 fields, header has 27"),
        (WECHAT, False, "26 fields, header has 27"),
        (INTERNAL, True, "not a 12-field CSV record"),
        (INTERNAL, False, "not a 12-field CSV record"),
        (PAYOUT, True, "13 fields, expected 12"),
        (STATEMENT, False, "not a 12-field CSV record"),
    ],
    ids=["wechat-extra", "wechat-missing", "internal-extra", "internal-missing", "payout-extra", "statement-missing"],
)
def test_wrong_field_count_quarantines_the_line(world: Path, tmp_path: Path, kind: tuple, extra: bool, detail: str):
    name, lines = text_file(world, kind)
    sep = "|" if kind is PAYOUT else ","
    row = 4 if kind is STATEMENT else 2  # physical line number of the first detail line
    cells = lines[row - 1].split(sep)
    cells = cells + ["`x" if kind is WECHAT else "x"] if extra else cells[:-1]
    lines[row - 1] = sep.join(cells)
    _, lake = _quarantined(tmp_path, name, encode(kind, lines), [(row, 1, "field_count", lines[row - 1])])
    assert _reason(lake, row) == f"{name} line {row}: {REASONS['field_count']}: {detail}"


def test_newline_inside_a_quoted_field_is_one_record_over_two_lines(world: Path, tmp_path: Path):
    name, members, detail, lines = alipay_file(world)
    i = alipay_row(lines) + 2
    assert lines[i].count('"') == 2
    first, rest = lines[i].split('"', 1)
    subject = rest.split('"', 1)[0]
    lines[i : i + 1] = [f'{first}"{subject}', f'第二行"{rest.split(chr(34), 1)[1]}']
    r, lake = _land(tmp_path, name, alipay_zip(members, detail, lines))
    assert (r.status, r.quarantined) == ("landed", 0)
    (row,) = [x for x in raw_rows(lake) if x["line_no"] == i + 1]
    assert (row["line_span"], row["subject"]) == (2, f"{subject}\n第二行")
    led = ledger(lake)[0]
    assert led["lines_detail"] == r.detail + 1  # physical lines, one record spans two


def test_embedded_quotes_are_unescaped(world: Path, tmp_path: Path):
    name, lines = text_file(world, INTERNAL)
    before, biz_type = lines[1].rsplit(",", 2)[0], lines[1].rsplit(",", 1)[1]  # the subject is next to last
    lines[1] = before + ',"他说""好"",然后走了",' + biz_type
    r, lake = _land(tmp_path, name, encode(INTERNAL, lines))
    assert (r.status, r.quarantined) == ("landed", 0)
    assert next(x["subject"] for x in raw_rows(lake) if x["line_no"] == 2) == '他说"好",然后走了'


def test_unterminated_quote_quarantines_a_bounded_block_not_the_rest_of_the_file(world: Path, tmp_path: Path):
    name, lines = text_file(world, INTERNAL)
    end = lines[1].rindex('"')
    lines[1] = lines[1][:end] + lines[1][end + 1:]  # the subject's closing quote is lost
    expected_span = 50  # the collector joins at most 50 physical lines looking for the closing quote
    r, lake = _quarantined(tmp_path, name, encode(INTERNAL, lines),
                           [(2, expected_span, "field_count", "\n".join(lines[1 : 1 + expected_span]))])
    assert len(q_rows(lake)[0][3]) == 4096  # the stored copy of a huge record is cut
    assert r.detail == len(lines) - 1 - expected_span


@pytest.mark.parametrize("fmt", ["wechat", "alipay"])
def test_a_one_megabyte_field_quarantines_its_line(world: Path, tmp_path: Path, fmt: str):
    huge = "".join(random.Random(1).choices(string.ascii_letters, k=1_000_000))  # 1 MB that does not zip away
    if fmt == "wechat":
        name, lines, data = _wechat(world, 3, "商品名称", huge)
        line_no, line = 3, lines[2]
    else:
        name, members, detail, lines = alipay_file(world)
        i = alipay_row(lines)
        first, rest = lines[i].split('"', 1)
        lines[i] = f'{first}"{huge}"{rest.split(chr(34), 1)[1]}'
        data, line_no, line = alipay_zip(members, detail, lines), i + 1, lines[i]
    _, lake = _quarantined(tmp_path, name, data, [(line_no, 1, "line_too_long", line[:4096])])
    assert _reason(lake, line_no) == f"{name} line {line_no}: {REASONS['line_too_long']}: over {MAX_LINE_CHARS} " \
                                     "characters"


def test_duplicate_row_inside_a_file_keeps_both(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    lines.insert(2, lines[1])
    r, lake = _land(tmp_path, name, encode(WECHAT, lines))
    assert (r.status, r.quarantined) == ("landed", 0)
    ids = [x["transaction_id"] for x in raw_rows(lake) if x["line_no"] in (2, 3)]
    assert len(ids) == 2 and ids[0] == ids[1]


def _fen(yuan: str) -> int:
    sign, digits = (-1, yuan[1:]) if yuan.startswith("-") else (1, yuan)
    whole, frac = digits.replace(",", "").split(".")
    return sign * (int(whole) * 100 + int(frac[:2]))


@pytest.mark.parametrize("fmt", ["wechat", "alipay", "payout", "statement"])
def test_summary_totals_that_disagree_with_the_detail_are_stored_for_the_dbt_test(world: Path, tmp_path: Path,
                                                                                   fmt: str):
    """Landing stores the file's own control totals; INV-04 (assert_control_totals_match) fails the build."""

    def sums(rows: list[dict]) -> dict[str, int]:
        if fmt == "wechat":
            return {"ctl_row_count": len(rows), "ctl_payment_fen": sum(
                _fen(r["settlement_amount"]) for r in rows if r["trade_state"] == "SUCCESS")}
        if fmt == "alipay":
            return {"ctl_row_count": len(rows), "ctl_payment_fen": sum(
                _fen(r["receipt_amount"]) for r in rows if r["biz_type"] == "交易")}
        if fmt == "payout":
            return {"ctl_row_count": len(rows), "ctl_payment_fen": sum(int(r["amount_fen"]) for r in rows)}
        return {"ctl_credit_fen": sum(_fen(r["credit_amount"]) for r in rows if r["credit_amount"])}

    if fmt == "alipay":
        name, members, detail, lines = alipay_file(world)
        at = next(i for i, ln in enumerate(lines) if ln.startswith("#交易合计"))
        good = alipay_zip(members, detail, lines)
        amount = lines[at].split("共")[1].split("元")[0]
        lines[at] = lines[at].replace(f"共{amount}元", f"共{_fen(amount) // 100 + 1}.{amount[-2:]}元", 1)
        bad = alipay_zip(members, detail, lines)
    else:
        kind = {"wechat": WECHAT, "payout": PAYOUT, "statement": STATEMENT}[fmt]
        name, lines = text_file(world, kind)
        good = encode(kind, lines)
        if fmt == "wechat":
            v = lines[-1].split(",")
            v[1] = f"`{(_fen(v[1][1:]) + 100) / 100:.2f}"
            lines[-1] = ",".join(v)
        elif fmt == "payout":
            h = lines[0].split("|")
            h[4] = str(int(h[4]) + 100)
            lines[0] = "|".join(h)
        else:
            total = lines[-1].split('"')
            total[3] = f"{(_fen(total[3]) + 100) / 100:,.2f}"
            lines[-1] = '"'.join(total)
        bad = encode(kind, lines)
    ok, lake_ok = _land(tmp_path, name, good, "good")
    off, lake_off = _land(tmp_path, name, bad, "bad")
    assert (ok.status, off.status, off.quarantined) == ("landed", "landed", 0)
    detail_sums = sums(raw_rows(lake_off))
    assert detail_sums == sums(raw_rows(lake_ok))
    good_ctl, bad_ctl = ledger(lake_ok)[0], ledger(lake_off)[0]
    for k, v in detail_sums.items():
        assert good_ctl[k] == v  # the delivered file agrees with itself
    money = next(k for k in detail_sums if k != "ctl_row_count")
    assert bad_ctl[money] == detail_sums[money] + 100  # one yuan more in the summary than in the detail


# ---------------------------------------------------------------------------------------------------------------
# 6.4 Amount values
# ---------------------------------------------------------------------------------------------------------------

BAD_AMOUNTS = {
    "scientific": "1e3",
    "scientific-upper": "1.5E+2",
    "three-decimals": "12.345",
    "one-decimal": "12.3",
    "no-decimals": "12",
    "empty": "",
    "blank": " ",
    "nan": "NaN",
    "inf": "inf",
    "infinity": "-Infinity",
    "null-token": "null",
    "dash": "-",
    "n/a": "N/A",
    "fullwidth-digits": "１２.00",
    "underscore": "1_000.00",
    "leading-plus": "+12.30",
    "leading-dot": ".50",
    "trailing-dot": "12.",
    "parentheses": "(12.30)",
    "trailing-minus": "12.30-",
    "yuan-sign": "¥12.30",
    "yuan-suffix": "12.30元",
    "overflow": "1234567890123456.00",
}


@pytest.mark.parametrize("value", list(BAD_AMOUNTS.values()), ids=list(BAD_AMOUNTS))
def test_bad_amount_is_quarantined_never_cast(world: Path, tmp_path: Path, value: str):
    name, lines, data = _wechat(world, 2, "应结订单金额", value)
    _, lake = _quarantined(tmp_path, name, data, [(2, 1, "pattern", lines[1])])
    assert _reason(lake, 2) == (f"{name} line 2: {REASONS['pattern']}: column settlement_amount: {value!r} does not "
                                r"match ^-?\d{1,15}\.\d{2}$")


@pytest.mark.parametrize(
    ("kind", "value", "outcome"),
    [(WECHAT, "1,234.50", "field_count"), (INTERNAL, '"1,234"', "pattern"), (ALIPAY, '"1,234.50"', "pattern"),
     (STATEMENT, '"1,234.50"', None)],
    ids=["wechat", "internal", "alipay", "statement-documented"],
)
def test_thousands_separators_only_where_the_format_documents_them(world: Path, tmp_path: Path, kind: tuple,
                                                                  value: str, outcome: str | None):
    if kind is ALIPAY:
        name, members, detail, lines = alipay_file(world)
        i = alipay_row(lines)
        cells = lines[i].split(",")
        cells[12] = value  # 商家实收(元), after the quoted subject that has no comma in this line
        lines[i] = ",".join(cells)
        data, line_no = alipay_zip(members, detail, lines), i + 1
    else:
        name, lines = text_file(world, kind)
        i = 3 if kind is STATEMENT else 1
        if kind is WECHAT:
            cells = lines[i].split(",")
            cells[12] = "`" + value
        elif kind is INTERNAL:
            cells = lines[i].split(",")
            cells[4] = value
        else:  # a credit line of the statement, rewritten with csv (its amounts are quoted)
            i = next(j for j in range(3, len(lines) - 1) if next(csv.reader([lines[j]]))[3] == "")
            cells = next(csv.reader([lines[i]]))
            cells[4] = value.strip('"')
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow(cells)
            lines[i] = buf.getvalue()
        if kind is not STATEMENT:
            lines[i] = ",".join(cells)
        data, line_no = encode(kind, lines), i + 1
    if outcome is None:
        r, lake = _land(tmp_path, name, data)
        assert (r.status, r.quarantined) == ("landed", 0)
        assert next(x["credit_amount"] for x in raw_rows(lake) if x["line_no"] == line_no) == "1,234.50"
    else:
        _quarantined(tmp_path, name, data, [(line_no, 1, outcome, lines[line_no - 1])])


def test_negative_zero_is_a_valid_zero(world: Path, tmp_path: Path):
    """-0.00 matches the yuan pattern and lands as text; staging's yuan_to_fen makes it 0 fen, no sign (#26)."""
    name, lines, data = _wechat(world, 2, "代金券金额", "-0.00")
    r, lake = _land(tmp_path, name, data)
    assert (r.status, r.quarantined) == ("landed", 0)
    assert next(x["coupon_amount"] for x in raw_rows(lake) if x["line_no"] == 2) == "-0.00"
    macro = (REPO / "macros/money/yuan_to_fen.sql").read_text()
    sql = jinja2.Environment().from_string(macro + "{{ yuan_to_fen('coupon_amount') }}").render().strip()
    raw = (tmp_path / "lake/raw/wechat_trade_bill").as_posix()
    fen = duckdb.sql(f"select {sql} from read_parquet('{raw}/*/*.parquet') where line_no = 2").fetchall()
    assert fen == [(0,)]


def test_wechat_fee_column_needs_exactly_five_decimals(world: Path, tmp_path: Path):
    name, lines, data = _wechat(world, 2, "手续费", "0.2200")
    _quarantined(tmp_path, name, data, [(2, 1, "pattern", lines[1])])


@pytest.mark.parametrize(
    ("kind", "column", "value"),
    [(INTERNAL, 4, "1234567890123456"), (INTERNAL, 4, "-100"), (PAYOUT, 5, "12.00")],
    ids=["internal-overflow", "internal-negative", "payout-yuan-in-fen-column"],
)
def test_bad_fen_amounts_are_quarantined(world: Path, tmp_path: Path, kind: tuple, column: int, value: str):
    name, lines = text_file(world, kind)
    sep = "|" if kind is PAYOUT else ","
    cells = lines[1].split(sep)
    cells[column] = value
    lines[1] = sep.join(cells)
    _quarantined(tmp_path, name, encode(kind, lines), [(2, 1, "pattern", lines[1])])


# ---------------------------------------------------------------------------------------------------------------
# 6.5 Dates, times, identifiers, codes
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2024-02-30 10:00:00", "2024-13-01 00:00:00", "2024-03-04 24:00:00",
                                   "2024-03-04 23:59:60", "2023-02-29 12:00:00"])
def test_impossible_date_or_time_is_quarantined(world: Path, tmp_path: Path, value: str):
    name, lines, data = _wechat(world, 2, "交易时间", value)
    _, lake = _quarantined(tmp_path, name, data, [(2, 1, "bad_datetime", lines[1])])
    assert _reason(lake, 2) == (f"{name} line 2: {REASONS['bad_datetime']}: column trade_time: {value!r} is not a "
                                "real date/time (%Y-%m-%d %H:%M:%S)")


@pytest.mark.parametrize("value", ["2024/03/04 10:00:00", "20240304 100000", "2024年03月04日 10:00:00", "45355.41",
                                   "2024-03-04T10:00:00", "2024-3-4 10:00:00"])
def test_other_date_formats_are_quarantined(world: Path, tmp_path: Path, value: str):
    name, lines, data = _wechat(world, 2, "交易时间", value)
    _quarantined(tmp_path, name, data, [(2, 1, "pattern", lines[1])])


def test_times_outside_the_bill_window_are_quarantined(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    day = f"{name[18:22]}-{name[22:24]}-{name[24:26]}"
    assert day == "2024-03-04"
    col = wechat_cells(lines[0]).index("交易时间")
    edge = {2: "2030-01-01 00:00:00", 3: "2024-03-06 00:00:00", 4: "2024-03-05 23:59:59", 5: "2023-03-04 00:00:00",
            6: "2023-03-03 23:59:59"}
    for line_no, value in edge.items():
        cells = wechat_cells(lines[line_no - 1])
        cells[col] = value
        lines[line_no - 1] = wechat_line(cells)
    _, lake = _quarantined(tmp_path, name, encode(WECHAT, lines), [
        (2, 1, "outside_bill_window", lines[1]), (3, 1, "outside_bill_window", lines[2]),
        (6, 1, "outside_bill_window", lines[5])])
    assert _reason(lake, 3) == (f"{name} line 3: {REASONS['outside_bill_window']}: column trade_time: "
                                "'2024-03-06 00:00:00' is outside [2023-03-04, 2024-03-06) for bill date 2024-03-04")
    assert {x["trade_time"] for x in raw_rows(lake) if x["line_no"] in (4, 5)} == {edge[4], edge[5]}


@pytest.mark.parametrize(
    ("kind", "column", "value", "code"),
    [(STATEMENT, 1, "24:00:00", "bad_datetime"), (PAYOUT, 11, "20240230100000", "bad_datetime"),
     (INTERNAL, 7, "2099-03-04 10:00:00", "outside_bill_window"), (STATEMENT, 0, "2024-02-30", "bad_datetime")],
    ids=["statement-time", "payout-compact", "internal-future", "statement-date"],
)
def test_dates_in_other_formats(world: Path, tmp_path: Path, kind: tuple, column: int, value: str, code: str):
    name, lines = text_file(world, kind)
    sep = "|" if kind is PAYOUT else ","
    i = 3 if kind is STATEMENT else 1
    cells = lines[i].split(sep)
    cells[column] = value
    lines[i] = sep.join(cells)
    _quarantined(tmp_path, name, encode(kind, lines), [(i + 1, 1, code, lines[i])])


@pytest.mark.parametrize(
    ("kind", "column", "canonical"),
    [(WECHAT, "微信订单号", "transaction_id"), (INTERNAL, 3, "channel_serial"), (ALIPAY, 0, "trade_no")],
    ids=["wechat", "internal", "alipay"],
)
def test_excel_damaged_ids_reject_the_whole_file(world: Path, tmp_path: Path, kind: tuple, column, canonical: str):
    if kind is WECHAT:
        name, lines, data = _wechat(world, 3, column, "4.20000E+27")
        line_no, shown = 3, "4.20000E+27"
    elif kind is INTERNAL:
        name, lines = text_file(world, INTERNAL)
        cells = lines[2].split(",")
        cells[column] = "2.02403E+27"
        lines[2] = ",".join(cells)
        data, line_no, shown = encode(INTERNAL, lines), 3, "2.02403E+27"
    else:
        name, members, detail, lines = alipay_file(world)
        i = alipay_row(lines) + 1
        cells = lines[i].split(",")
        cells[column] = "2.02403E+27\t"
        lines[i] = ",".join(cells)
        data, line_no, shown = alipay_zip(members, detail, lines), i + 1, "2.02403E+27"
    _rejected(tmp_path, name, data, f"{name} line {line_no} column {canonical}: id {shown!r} is in scientific "
              "notation (file re-saved by Excel?); ids cannot be recovered")


@pytest.mark.parametrize(
    ("kind", "column", "value"),
    [(WECHAT, "交易状态", "CLOSED"), (WECHAT, "货币种类", "USD"), (INTERNAL, 6, "UNKNOWN"), (PAYOUT, 7, "X")],
    ids=["wechat-trade-state", "wechat-currency", "internal-status", "payout-status"],
)
def test_status_code_outside_the_allowed_set_is_quarantined(world: Path, tmp_path: Path, kind: tuple, column,
                                                            value: str):
    if kind is WECHAT:
        name, lines, data = _wechat(world, 2, column, value)
    else:
        name, lines = text_file(world, kind)
        sep = "|" if kind is PAYOUT else ","
        cells = lines[1].split(sep)
        cells[column] = value
        lines[1] = sep.join(cells)
        data = encode(kind, lines)
    _quarantined(tmp_path, name, data, [(2, 1, "pattern", lines[1])])


def _unionpay(world: Path) -> tuple[str, dict[str, bytes], str, list[bytes]]:
    p = world_file(world, *UNIONPAY[:2])
    members = zip_members(p)
    zm = next(k for k in members if "88ZM_" in k)
    return p.name, members, zm, members[zm].split(b"\r\n")


def test_unionpay_line_of_the_wrong_length_is_quarantined(world: Path, tmp_path: Path):
    name, members, zm, lines = _unionpay(world)
    lines[0] = lines[0][:-1]  # 606 bytes
    lines[3] = lines[3] + b" "  # 608 bytes
    _, lake = _quarantined(tmp_path, name, make_zip({**members, zm: b"\r\n".join(lines)}), [
        (1, 1, "line_length", lines[0].decode("gbk")), (4, 1, "line_length", lines[3].decode("gbk"))])
    assert _reason(lake, 1) == f"{name} line 1: {REASONS['line_length']}: 606 bytes, expected 607"


def test_unionpay_transaction_type_outside_the_allowed_set_is_quarantined(world: Path, tmp_path: Path):
    name, members, zm, lines = _unionpay(world)
    lines[1] = lines[1][:215] + b"99" + lines[1][217:]
    _quarantined(tmp_path, name, make_zip({**members, zm: b"\r\n".join(lines)}),
                 [(2, 1, "pattern", lines[1].decode("gbk"))])


# ---------------------------------------------------------------------------------------------------------------
# 6.6 Hostile input
# ---------------------------------------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example/steal")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "=1+1"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_formula_injection_is_stored_verbatim_as_text(world: Path, tmp_path: Path, formula: str):
    name, lines, data = _wechat(world, 2, "商品名称", formula)
    r, lake = _land(tmp_path, name, data)
    assert (r.status, r.quarantined) == ("landed", 0)
    assert next(x["body"] for x in raw_rows(lake) if x["line_no"] == 2) == formula
    # What the dbt sources read: the same text, typed VARCHAR, nothing evaluated.
    raw = (lake / "raw/wechat_trade_bill").as_posix()
    got = duckdb.sql(f"select body, typeof(body) from read_parquet('{raw}/*/*.parquet') where line_no = 2").fetchall()
    assert got == [(formula, "VARCHAR")]


def test_formula_with_commas_in_a_quoted_alipay_field_is_stored_verbatim(world: Path, tmp_path: Path):
    name, members, detail, lines = alipay_file(world)
    i = alipay_row(lines)
    first, rest = lines[i].split('"', 1)
    lines[i] = f'{first}"=HYPERLINK(""http://evil.example/"",""点我"")"{rest.split(chr(34), 1)[1]}'
    r, lake = _land(tmp_path, name, alipay_zip(members, detail, lines))
    assert (r.status, r.quarantined) == ("landed", 0)
    assert next(x["subject"] for x in raw_rows(lake) if x["line_no"] == i + 1) == \
        '=HYPERLINK("http://evil.example/","点我")'


@pytest.mark.parametrize("member", ["../x.csv", "../../etc/evil", "/etc/evil", "C:\\evil.csv", "a/../../x.csv",
                                    "..\\..\\x.csv"])
def test_zip_slip_member_names_reject_the_file(world: Path, tmp_path: Path, member: str):
    name, members, _, _ = alipay_file(world)
    _rejected(tmp_path, name, make_zip({**members, member: b"x"}),
              f"{name}: archive member {member!r} has an unsafe path (zip slip)")
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "etc").exists()


def test_zip_bomb_ratio_is_rejected(world: Path, tmp_path: Path):
    name, members, _, _ = alipay_file(world)
    data = make_zip({**members, "padding.csv": b"\0" * 5_000_000})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        packed = zf.getinfo("padding.csv").compress_size
    _rejected(tmp_path, name, data, f"{name}: archive member 'padding.csv' expands 5000000 bytes from {packed}: over "
              "the size/ratio limit (zip bomb?)")


def test_too_many_zip_members_are_rejected(world: Path, tmp_path: Path):
    name, members, _, _ = alipay_file(world)
    extra = {f"extra_{i}.txt": b"x" for i in range(MAX_MEMBERS + 1 - len(members))}
    _rejected(tmp_path, name, make_zip({**members, **extra}),
              f"{name}: {MAX_MEMBERS + 1} archive members, more than the limit of {MAX_MEMBERS}")


@pytest.mark.parametrize("name", ["statement.xlsx", "report.pdf", "wechat_1601007919_20240304_ALL.xlsx",
                                  "20880000001047290156_20240304.csv", "export.parquet", "notes.csv.gz"])
def test_unknown_format_is_rejected_with_its_name(tmp_path: Path, name: str):
    data = gzip.compress(b"a,b\n1,2\n", mtime=0) if name.endswith(".gz") else b"PK\x03\x04junk"
    inner = name.removesuffix(".gz")
    _rejected(tmp_path, name, data, f"{inner}: unknown file format (not a format Tally knows by name and content)")


PAN = "6222021234567890128"  # 19 digits, Luhn-valid (a UnionPay debit card shape)


def test_pan_is_masked_in_raw_parquet_quarantine_and_messages(world: Path, tmp_path: Path):
    assert luhn_ok(PAN) and mask_pans(PAN) == "622202*********0128"
    name, lines = text_file(world, WECHAT)
    header = wechat_cells(lines[0])
    for line_no, attach in ((2, f"卡号{PAN}"), (3, f"card:{PAN};")):
        cells = wechat_cells(lines[line_no - 1])
        cells[header.index("商户数据包")] = attach
        lines[line_no - 1] = wechat_line(cells)
    cells = wechat_cells(lines[3])
    cells[header.index("商户数据包")] = PAN
    cells[header.index("应结订单金额")] = PAN  # quarantined: the value is in the reason text too
    lines[3] = wechat_line(cells)
    r, lake = _quarantined(tmp_path, name, encode(WECHAT, lines), [(4, 1, "pattern", mask_pans(lines[3]))])
    attach = {x["line_no"]: x["attach"] for x in raw_rows(lake) if x["line_no"] in (2, 3)}
    assert attach == {2: "卡号622202*********0128", 3: "card:622202*********0128;"}
    assert PAN in lines[3] and PAN not in q_rows(lake)[0][3]
    assert _reason(lake, 4) == (f"{name} line 4: {REASONS['pattern']}: column settlement_amount: "
                                r"'622202*********0128' does not match ^-?\d{1,15}\.\d{2}$")
    everything = repr([raw_rows(lake), quarantine(lake), ledger(lake)])
    assert PAN not in everything and "622202*********0128" in everything


def test_pan_in_a_rejected_files_message_is_masked(world: Path, tmp_path: Path):
    name, lines = text_file(world, WECHAT)
    lines[0] = lines[0].replace("商品名称", f"商品名称{PAN}")
    _rejected(tmp_path, name, encode(WECHAT, lines),
              f"{name} line 1: unknown column '商品名称622202*********0128' in the wechat_trade_bill header")
