"""Landing: files as delivered -> raw Parquet partitions, a quarantine and an append-only file ledger.

Identity is the SHA-256 of the bytes. Each delivery (bytes + where they were found) gets one ledger row; whether a
delivery is a duplicate, and which version of a (format, merchant, bill date) is current, is derived from the ledger
by a deterministic order (delivery time, then hash), so landing in any order, any number of times, gives the same
lake. Writes are temp-then-rename and the ledger row is written last: a crash leaves nothing half-visible and a
rerun finishes the job.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import hashlib
import io
import os
import re
import sys
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tally.formats import (
    ALIPAY_TRADE,
    BANK_PAYOUT_RESULT,
    BANK_STATEMENT,
    FORMATS,
    INTERNAL_PAYMENTS,
    INTERNAL_PAYOUTS,
    INTERNAL_RECHARGES,
    INTERNAL_REFUNDS,
    REASONS,
    SCI_NOTATION,
    UNIONPAY_ZM,
    UNIONPAY_ZM_FIELDS,
    UNIONPAY_ZM_LINE_BYTES,
    WECHAT_TRADE,
    Format,
    normalise_header,
)
from tally.masking import mask_pans, mask_pans_array

# Safety limits for archives (zip bombs) and lines.
MAX_MEMBERS = 16
MAX_EXPANDED_BYTES = 8 * 1024**3
MAX_RATIO = 200
MAX_LINE_CHARS = 64 * 1024
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

LEDGER_SCHEMA = pa.schema(
    [
        ("delivery_id", pa.string()),
        ("file_version_id", pa.string()),
        ("sha256", pa.string()),
        ("source_path", pa.string()),
        ("size_bytes", pa.int64()),
        ("format", pa.string()),
        ("channel", pa.string()),
        ("merchant_key", pa.string()),
        ("bill_type", pa.string()),
        ("bill_date", pa.date32()),
        ("delivered_at", pa.timestamp("s")),
        ("status", pa.string()),  # landed | rejected (duplicate / current / superseded are derived)
        ("reject_reason", pa.string()),
        ("is_empty_day", pa.bool_()),
        ("lines_total", pa.int64()),
        ("lines_detail", pa.int64()),
        ("lines_quarantined", pa.int64()),
        ("lines_other", pa.int64()),
        ("ctl_row_count", pa.int64()),
        ("ctl_payment_fen", pa.int64()),
        ("ctl_refund_fen", pa.int64()),
        ("ctl_fee_fen", pa.int64()),
        ("ctl_credit_fen", pa.int64()),
        ("ctl_debit_fen", pa.int64()),
        ("landed_at", pa.timestamp("s")),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("file_version_id", pa.string()),
        ("line_no", pa.int64()),
        ("line_span", pa.int64()),
        ("reason_code", pa.string()),
        ("reason", pa.string()),
        ("masked_line", pa.string()),
    ]
)


class Rejected(Exception):
    """The whole file is refused; the message names file, line and reason."""


@dataclasses.dataclass
class Parsed:
    fmt: Format
    merchant_key: str
    bill_date: dt.date | None
    lines_total: int
    lines_other: int
    # Candidate detail records, columnar: canonical column -> text values, plus lineage.
    columns: dict[str, list | pa.Array]
    line_no: list[int]
    line_span: list[int]
    raw: list[str]
    # Records already refused by the parser: (line_no, span, reason_code, detail, raw line).
    pre_quarantine: list[tuple[int, int, str, str, str]]
    controls: dict[str, int | None]
    is_empty_day: bool = False


# ---------------------------------------------------------------------------------------------------------------
# Bytes -> text
# ---------------------------------------------------------------------------------------------------------------


def _decode(data: bytes, encoding: str, name: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        encoding = "utf-8"
    try:
        return data.decode(encoding)  # strict: never errors='replace'
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise Rejected(f"{name} line {line}: bytes are not valid {encoding} ({e.reason}); wrong encoding?") from None


def _split_lines(text: str) -> list[str]:
    """Physical lines: LF or CRLF ends; a missing final newline still ends the last line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _safe_zip_members(data: bytes, name: str, gbk_names: bool) -> dict[str, bytes]:
    """Read an archive's members into memory with limits: no traversal, no bombs, no nesting."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data), metadata_encoding="gbk" if gbk_names else None)
    except zipfile.BadZipFile as e:
        raise Rejected(f"{name}: not a readable zip archive ({e}); truncated download?") from None
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise Rejected(f"{name}: {len(infos)} archive members, more than the limit of {MAX_MEMBERS}")
    out: dict[str, bytes] = {}
    total = 0
    for info in infos:
        n = info.filename
        if n.startswith(("/", "\\")) or ".." in re.split(r"[\\/]", n) or re.match(r"^[A-Za-z]:", n):
            raise Rejected(f"{name}: archive member {n!r} has an unsafe path (zip slip)")
        if info.is_dir():
            continue
        if info.file_size > MAX_EXPANDED_BYTES or info.file_size > MAX_RATIO * max(info.compress_size, 1) + 4096:
            raise Rejected(f"{name}: archive member {n!r} expands {info.file_size} bytes from "
                           f"{info.compress_size}: over the size/ratio limit (zip bomb?)")
        with zf.open(info) as fh:  # read with a counter: the header's size may lie
            chunk = fh.read(info.file_size + 1)
        if len(chunk) > info.file_size:
            raise Rejected(f"{name}: archive member {n!r} is larger than its header says (zip bomb?)")
        total += len(chunk)
        if total > MAX_EXPANDED_BYTES:
            raise Rejected(f"{name}: archive expands past {MAX_EXPANDED_BYTES} bytes (zip bomb?)")
        out[n] = chunk
    try:
        bad = zf.testzip()
    except Exception as e:  # noqa: BLE001 - any failure here means a damaged archive
        raise Rejected(f"{name}: archive CRC check failed ({e})") from None
    if bad:
        raise Rejected(f"{name}: archive member {bad!r} fails its CRC check; truncated download?")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Format detection and parsers
# ---------------------------------------------------------------------------------------------------------------


def _yuan_to_fen(s: str, name: str, what: str) -> int:
    m = re.fullmatch(r"(-?)(\d{1,15})\.(\d{2})(\d{3})?", s.replace(",", ""))
    if not m or (m.group(4) and m.group(4) != "000"):
        raise Rejected(f"{name}: control total {what} {s!r} is not a plain amount in yuan")
    v = int(m.group(2)) * 100 + int(m.group(3))
    return -v if m.group(1) else v


def _header_index(fmt: Format, header: list[str], name: str, line_no: int) -> dict[str, int]:
    """Map canonical columns to positions by header name; unknown or missing required columns reject the file."""
    hmap = fmt.header_map()
    idx: dict[str, int] = {}
    for i, h in enumerate(header):
        key = normalise_header(h)
        if key not in hmap:
            raise Rejected(f"{name} line {line_no}: unknown column {h!r} in the {fmt.name} header")
        if hmap[key] in idx:
            raise Rejected(f"{name} line {line_no}: column {h!r} appears twice in the header")
        idx[hmap[key]] = i
    missing = [c.name for c in fmt.columns if c.required and c.name not in idx]
    if missing:
        raise Rejected(f"{name} line {line_no}: the {fmt.name} header lacks required column(s) {missing}")
    return idx


def _columns_from_rows(fmt: Format, idx: dict[str, int], rows: list[list[str]]) -> dict[str, list]:
    return {c.name: ([r[idx[c.name]] for r in rows] if c.name in idx else [None] * len(rows)) for c in fmt.columns}


def _csv_records(lines: list[str], first_line_no: int, n_fields: int, strip: str = ""):
    """RFC 4180 records over a block of physical lines; yields (line_no, span, fields or None, raw)."""
    pos = 0
    while pos < len(lines):
        start = pos
        buf = lines[pos]
        pos += 1
        # A quoted field may hold a newline: keep joining while quotes are unbalanced (bounded).
        while buf.count('"') % 2 == 1 and pos < len(lines) and pos - start < 50:
            buf += "\n" + lines[pos]
            pos += 1
        try:
            fields = next(csv.reader([buf], strict=True))
        except csv.Error:
            fields = None
        if fields is not None and strip:
            fields = [f.strip(strip) for f in fields]
        if fields is not None and len(fields) != n_fields:
            fields = None
        yield first_line_no + start, pos - start, fields, buf


def _collect_csv(lines: list[str], first_line_no: int, n_fields: int, strip: str = ""):
    """Split CSV records into accepted rows (with lineage) and refused ones (pre-quarantine)."""
    rows, line_no, spans, raws, pre = [], [], [], [], []
    for ln_no, span, fields, raw in _csv_records(lines, first_line_no, n_fields, strip):
        if fields is None:
            pre.append((ln_no, span, "field_count", f"not a {n_fields}-field CSV record", raw))
        else:
            rows.append(fields)
            line_no.append(ln_no)
            spans.append(span)
            raws.append(raw)
    return rows, line_no, spans, raws, pre


def parse_wechat(data: bytes, name: str) -> Parsed:
    text = _decode(data, "utf-8", name)
    m = re.search(r"wechat_(\d{8,10})_(\d{8})_(ALL|SUCCESS|REFUND)", name)
    if text.lstrip().startswith("<xml>"):
        if "No Bill Exist" in text or "NO_STATEMENT_EXIST" in text:
            if not m:
                raise Rejected(f"{name}: WeChat 'No Bill Exist' body, but the file name does not say merchant/date")
            return Parsed(WECHAT_TRADE, m.group(1), _ymd(m.group(2)), len(_split_lines(text)),
                          len(_split_lines(text)), {}, [], [], [], [], {"ctl_row_count": 0}, is_empty_day=True)
        raise Rejected(f"{name} line 1: WeChat returned an error body instead of a bill")
    lines = _split_lines(text)
    if m is None:
        raise Rejected(f"{name}: a WeChat bill must be named wechat_<mch_id>_<yyyymmdd>_<ALL|SUCCESS|REFUND>")
    header = lines[0].split(",")
    idx = _header_index(WECHAT_TRADE, header, name, 1)
    summary_at = next((i for i, ln in enumerate(lines) if ln.startswith(("总交易单数",))), None)
    if summary_at is None or summary_at + 1 >= len(lines):
        raise Rejected(f"{name}: no summary rows at the end (truncated file?); line count {len(lines)}")
    if len(lines) > summary_at + 2:
        raise Rejected(f"{name} line {summary_at + 3}: unexpected content after the summary row")
    s_head = lines[summary_at].split(",")
    s_val = [v.lstrip("`") for v in lines[summary_at + 1].split(",")]
    if len(s_head) != len(s_val):
        raise Rejected(f"{name} line {summary_at + 2}: summary row has {len(s_val)} fields, header {len(s_head)}")
    summ = dict(zip(s_head, s_val, strict=True))
    if not re.fullmatch(r"\d+(\.0)?", summ.get("总交易单数", "")):
        raise Rejected(f"{name} line {summary_at + 2}: summary count {summ.get('总交易单数')!r} is not a count")
    controls = {
        "ctl_row_count": int(float(summ["总交易单数"])),
        "ctl_payment_fen": _yuan_to_fen(summ.get("应结订单总金额", summ.get("总交易额", "")), name, "应结订单总金额"),
        "ctl_refund_fen": _yuan_to_fen(summ.get("退款总金额", summ.get("总退款金额", "")), name, "退款总金额"),
        "ctl_fee_fen": _yuan_to_fen(summ["手续费总金额"], name, "手续费总金额"),
    }
    detail = lines[1:summary_at]
    n = len(header)
    rows, line_no, spans, raws, pre = [], [], [], [], []
    for i, ln in enumerate(detail, start=2):
        cells = ln.split(",")
        if len(cells) != n:
            pre.append((i, 1, "field_count", f"{len(cells)} fields, header has {n}", ln))
        elif not all(c.startswith("`") for c in cells):
            col = header[next(j for j, c in enumerate(cells) if not c.startswith("`"))]
            pre.append((i, 1, "missing_backtick", f"column {col}", ln))
        else:
            rows.append([c[1:] for c in cells])
            line_no.append(i)
            spans.append(1)
            raws.append(ln)
    return Parsed(WECHAT_TRADE, m.group(1), _ymd(m.group(2)), len(lines), len(lines) - len(detail),
                  _columns_from_rows(WECHAT_TRADE, idx, rows), line_no, spans, raws, pre, controls)


def parse_alipay(data: bytes, name: str) -> Parsed:
    members = _safe_zip_members(data, name, gbk_names=True)
    detail_name = next((k for k in members if k.endswith("_业务明细.csv")), None)
    summary_name = next((k for k in members if k.endswith("_业务明细(汇总).csv")), None)
    if detail_name is None:
        raise Rejected(f"{name}: no member ending _业务明细.csv in the Alipay zip (members: {sorted(members)})")
    text = _decode(members[detail_name], "gbk", f"{name}!{detail_name}")
    lines = _split_lines(text)
    comments = [ln for ln in lines if ln.startswith("#")]
    acct = next((re.search(r"\[(\d{16})0156\]", c) for c in comments if c.startswith("#账号")), None)
    start = next((re.search(r"(\d{4})年(\d{2})月(\d{2})日", c) for c in comments if c.startswith("#起始日期")), None)
    if not acct or not start:
        raise Rejected(f"{name}: the #账号 / #起始日期 comment lines are missing or malformed")
    if not any(c.startswith("#交易合计") for c in comments):
        raise Rejected(f"{name}: no #交易合计 footer (truncated file?)")
    head_at = next(i for i, ln in enumerate(lines) if not ln.startswith("#"))
    header = [h.strip("\t ") for h in next(csv.reader([lines[head_at]]))]
    idx = _header_index(ALIPAY_TRADE, header, name, head_at + 1)
    end_at = next((i for i in range(head_at + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    if any(not ln.startswith("#") for ln in lines[end_at:]):
        raise Rejected(f"{name}: detail lines after the #…明细列表结束 footer")
    rows, line_no, spans, raws, pre = _collect_csv(lines[head_at + 1:end_at], head_at + 2, len(header), "\t ")
    controls: dict[str, int | None] = {}
    for c in comments:
        if mt := re.match(r"#交易合计：(\d+)笔，商家实收共(-?[\d.]+)元", c):
            controls["ctl_row_count"] = int(mt.group(1))
            controls["ctl_payment_fen"] = _yuan_to_fen(mt.group(2), name, "#交易合计")
        if mt := re.match(r"#退款合计：(\d+)笔，商家实收退款共(-?[\d.]+)元", c):
            controls["ctl_row_count"] = controls.get("ctl_row_count", 0) + int(mt.group(1))
            controls["ctl_refund_fen"] = _yuan_to_fen(mt.group(2), name, "#退款合计")
    other = len(lines) - sum(spans) - sum(p[1] for p in pre)
    total = len(lines)
    if summary_name:
        s_lines = _split_lines(_decode(members[summary_name], "gbk", f"{name}!{summary_name}"))
        total += len(s_lines)
        other += len(s_lines)
        s_head_at = next((i for i, ln in enumerate(s_lines) if not ln.startswith("#")), None)
        s_total = next((ln for ln in s_lines if ln.startswith("合计")), None)
        if s_head_at is not None and s_total:
            sh = [normalise_header(h) for h in s_lines[s_head_at].split(",")]
            sv = s_total.split(",")
            if "服务费(元)" in sh:
                controls["ctl_fee_fen"] = _yuan_to_fen(sv[sh.index("服务费(元)")], name, "汇总 服务费")
    return Parsed(ALIPAY_TRADE, acct.group(1), dt.date(*map(int, start.groups())), total, other,
                  _columns_from_rows(ALIPAY_TRADE, idx, rows), line_no, spans, raws, pre, controls)


def parse_unionpay(data: bytes, name: str) -> Parsed:
    members = _safe_zip_members(data, name, gbk_names=False)
    zm = [k for k in members if re.fullmatch(r"INN(\d{6})88ZM_(\d{15})(\.txt)?", k)]
    if len(zm) != 1:
        raise Rejected(f"{name}: expected one INN<yymmdd>88ZM_<merId> member, found {sorted(members)}")
    mt = re.fullmatch(r"INN(\d{6})88ZM_(\d{15})(\.txt)?", zm[0])
    bill_date = dt.datetime.strptime("20" + mt.group(1), "%Y%m%d").date()
    raw_lines = members[zm[0]].split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    raw_lines = [b[:-1] if b.endswith(b"\r") else b for b in raw_lines]
    pre = []
    good_idx = []
    for i, b in enumerate(raw_lines):
        if len(b) != UNIONPAY_ZM_LINE_BYTES:
            pre.append((i + 1, 1, "line_length", f"{len(b)} bytes, expected {UNIONPAY_ZM_LINE_BYTES}",
                        b.decode("gbk", errors="backslashreplace")))
        else:
            good_idx.append(i)
    good = pa.array([raw_lines[i] for i in good_idx], type=pa.binary())
    columns: dict[str, pa.Array] = {}
    for fname, off, width, _ in UNIONPAY_ZM_FIELDS:
        sliced = pc.binary_slice(good, off, off + width)
        try:
            txt = sliced.cast(pa.string())
        except pa.ArrowInvalid:  # a non-ASCII (GBK) field: decode it by bytes, as the SDK does
            txt = pa.array([v.decode("gbk") for v in sliced.to_pylist()], type=pa.string())
        columns[fname] = pc.utf8_trim_whitespace(txt)
    raws = [raw_lines[i].decode("gbk", errors="backslashreplace") for i in good_idx]
    # ZME (error/adjustment) rows are not parsed yet: they are quarantined, never silently ignored.
    zme = [k for k in members if re.fullmatch(r"INN\d{6}88ZME_\d{15}(\.txt)?", k)]
    total = len(raw_lines)
    for k in zme:
        for j, b in enumerate(ln for ln in members[k].split(b"\r\n") if ln):
            total += 1
            pre.append((len(raw_lines) + j + 1, 1, "unsupported_record", f"{k}: ZME adjustment rows are not staged",
                        b.decode("gbk", errors="backslashreplace")))
    return Parsed(UNIONPAY_ZM, mt.group(2), bill_date, total, 0, columns, [i + 1 for i in good_idx],
                  [1] * len(good_idx), raws, pre, {})


def parse_payout_result(data: bytes, name: str) -> Parsed:
    lines = _split_lines(_decode(data, "gbk", name))
    if not lines or not lines[0].startswith("H|"):
        raise Rejected(f"{name} line 1: a payout result file starts with an H| batch header")
    h = lines[0].split("|")
    if len(h) != 9 or not all(x.isdigit() for x in h[2:]):
        raise Rejected(f"{name} line 1: malformed batch header {lines[0]!r}")
    m = re.search(r"PAYOUT_([A-Za-z0-9]+)_([A-Za-z0-9]+)_(\d{8})_RESULT", name)
    merchant = f"{m.group(1)}/{h[1]}" if m else h[1]
    rows, line_no, raws, pre = [], [], [], []
    n = len(BANK_PAYOUT_RESULT.columns)
    for i, ln in enumerate(lines[1:], start=2):
        cells = ln.split("|")
        if len(cells) != n:
            pre.append((i, 1, "field_count", f"{len(cells)} fields, expected {n}", ln))
        else:
            rows.append(cells)
            line_no.append(i)
            raws.append(ln)
    idx = {c.name: i for i, c in enumerate(BANK_PAYOUT_RESULT.columns)}
    controls = {"ctl_row_count": int(h[3]), "ctl_payment_fen": int(h[4])}
    return Parsed(BANK_PAYOUT_RESULT, merchant, _ymd(h[2]), len(lines), 1,
                  _columns_from_rows(BANK_PAYOUT_RESULT, idx, rows), line_no, [1] * len(rows), raws, pre, controls)


def parse_bank_statement(data: bytes, name: str) -> Parsed:
    lines = _split_lines(_decode(data, "gbk", name))
    if len(lines) < 3 or not lines[0].startswith("账号:"):
        raise Rejected(f"{name} line 1: a bank statement starts with the 账号: block")
    acct = lines[0].split(",")[1].strip()
    dm = re.match(r"起始日期:,(\d{4}-\d{2}-\d{2}),终止日期:,(\d{4}-\d{2}-\d{2})", lines[1])
    if not dm or dm.group(1) != dm.group(2):
        raise Rejected(f"{name} line 2: expected a one-day 起始日期/终止日期 range")
    header = next(csv.reader([lines[2]]))
    idx = _header_index(BANK_STATEMENT, header, name, 3)
    total_at = next((i for i in range(3, len(lines)) if lines[i].startswith("合计")), None)
    if total_at is None:
        raise Rejected(f"{name}: no 合计 totals row at the end (truncated file?)")
    if total_at != len(lines) - 1:
        raise Rejected(f"{name} line {total_at + 2}: content after the 合计 row")
    tot = next(csv.reader([lines[total_at]]))
    rows, line_no, spans, raws, pre = _collect_csv(lines[3:total_at], 4, len(header))
    controls = {
        "ctl_row_count": None,
        "ctl_debit_fen": _yuan_to_fen(tot[idx["debit_amount"]], name, "合计 借方"),
        "ctl_credit_fen": _yuan_to_fen(tot[idx["credit_amount"]], name, "合计 贷方"),
    }
    return Parsed(BANK_STATEMENT, acct, _ymd(dm.group(1).replace("-", "")), len(lines), 4,
                  _columns_from_rows(BANK_STATEMENT, idx, rows), line_no, spans, raws, pre, controls)


def _parse_internal(fmt: Format):
    def parse(data: bytes, name: str) -> Parsed:
        lines = _split_lines(_decode(data, "utf-8", name))
        m = re.search(rf"internal_{fmt.bill_type}_(\d{{8}})\.csv", name)
        if not m:
            raise Rejected(f"{name}: internal dumps are named internal_{fmt.bill_type}_<yyyymmdd>.csv")
        if not lines:
            raise Rejected(f"{name}: empty file, not even a header (an empty dump still has its header)")
        header = next(csv.reader([lines[0]]))
        idx = _header_index(fmt, header, name, 1)
        rows, line_no, spans, raws, pre = _collect_csv(lines[1:], 2, len(header))
        return Parsed(fmt, "", _ymd(m.group(1)), len(lines), 1, _columns_from_rows(fmt, idx, rows), line_no,
                      spans, raws, pre, {})

    return parse


def _ymd(s: str) -> dt.date:
    return dt.datetime.strptime(s, "%Y%m%d").date()


def detect(data: bytes, name: str):
    """Pick the parser by name and content; an unknown file is rejected, never guessed."""
    base = os.path.basename(name)
    head = data[:4096]
    if re.fullmatch(r"wechat_\d+_\d{8}_(ALL|SUCCESS|REFUND)(\.[A-Za-z0-9]+)?\.csv", base):
        return parse_wechat  # the parser decodes strictly and checks the header, with a precise message
    if base.endswith(".csv.zip") and re.match(r"\d{16}0156_\d{8}", base) and head.startswith(b"PK"):
        return parse_alipay
    if re.fullmatch(r"\d{15}_\d{8}(\.[A-Za-z0-9]+)?\.zip", base) and head.startswith(b"PK"):
        return parse_unionpay
    if re.fullmatch(r"PAYOUT_[A-Za-z0-9]+_[A-Za-z0-9]+_\d{8}_RESULT\.txt", base) and head.startswith(b"H|"):
        return parse_payout_result
    if base.startswith("bank_statement_") and head.startswith("账号:".encode("gbk")):
        return parse_bank_statement
    for fmt in (INTERNAL_PAYMENTS, INTERNAL_REFUNDS, INTERNAL_PAYOUTS, INTERNAL_RECHARGES):
        if re.fullmatch(rf"internal_{fmt.bill_type}_\d{{8}}\.csv", base):
            return _parse_internal(fmt)
    raise Rejected(f"{name}: unknown file format (not a format Tally knows by name and content)")


# ---------------------------------------------------------------------------------------------------------------
# Validation: strict patterns, vectorised; the first failing column per row is the quarantine reason.
# ---------------------------------------------------------------------------------------------------------------


def validate(p: Parsed, name: str) -> tuple[pa.Table, list[tuple[int, int, str, str, str]]]:
    n = len(p.line_no)
    cols = {k: (v if isinstance(v, pa.Array) else pa.array(v, type=pa.string())) for k, v in p.columns.items()}
    # Excel damage: an id column in E-notation cannot be repaired, so the file is refused (bad input #24).
    for c in p.fmt.columns:
        if c.is_id and n:
            sci = pc.fill_null(pc.match_substring_regex(cols[c.name], SCI_NOTATION.pattern), False)
            if pc.any(sci).as_py():
                i = pc.indices_nonzero(sci)[0].as_py()
                raise Rejected(f"{name} line {p.line_no[i]} column {c.name}: id {cols[c.name][i].as_py()!r} is in "
                               "scientific notation (file re-saved by Excel?); ids cannot be recovered")
    reason = np.full(n, "", dtype=object)
    raw = pa.array(p.raw, type=pa.string())
    if n:
        bad_ctrl = pc.match_substring_regex(raw, CONTROL_CHARS.pattern).to_numpy(zero_copy_only=False)
        reason[bad_ctrl] = "control_char|line holds NUL or control characters"
        too_long = pc.utf8_length(raw).to_numpy(zero_copy_only=False) > MAX_LINE_CHARS
        reason[too_long & (reason == "")] = f"line_too_long|over {MAX_LINE_CHARS} characters"
    for c in p.fmt.columns:
        if not c.pattern or not n or cols[c.name].null_count == n:
            continue
        ok = pc.fill_null(pc.match_substring_regex(cols[c.name], c.pattern), False).to_numpy(zero_copy_only=False)
        fresh = (~ok) & (reason == "")
        if fresh.any():
            vals = cols[c.name].to_pylist()
            for i in np.flatnonzero(fresh):
                reason[i] = f"pattern|column {c.name}: {mask_pans(str(vals[i]))!r} does not match {c.pattern}"
    quarantine = list(p.pre_quarantine)
    bad = np.flatnonzero(reason != "")
    for i in bad:
        code, detail = reason[i].split("|", 1)
        quarantine.append((p.line_no[i], p.line_span[i], code, detail, p.raw[i]))
    keep = pa.array(reason == "") if n else pa.array([], type=pa.bool_())
    table = pa.table({k: mask_pans_array(pc.filter(v, keep)) for k, v in cols.items()}) if n else pa.table(
        {k: pa.array([], type=pa.string()) for k in cols} or {c.name: pa.array([], pa.string()) for c in p.fmt.columns})
    table = table.append_column("line_no", pa.array(np.asarray(p.line_no, dtype=np.int64)[reason == ""]
                                                      if n else [], type=pa.int64()))
    table = table.append_column("line_span", pa.array(np.asarray(p.line_span, dtype=np.int64)[reason == ""]
                                                        if n else [], type=pa.int64()))
    return table, quarantine


# ---------------------------------------------------------------------------------------------------------------
# Writing the lake
# ---------------------------------------------------------------------------------------------------------------


def _atomic_write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _raw_schema(fmt: Format) -> pa.Schema:
    return pa.schema([(c, pa.string()) for c in fmt.column_names]
                     + [("file_version_id", pa.string()), ("line_no", pa.int64()), ("line_span", pa.int64())])


def init_lake(lake: Path) -> None:
    """Zero-row schema files so every dbt source exists before its first file lands."""
    for fmt in FORMATS.values():
        p = lake / "raw" / fmt.name / "bill_date=1970-01-01" / "_schema.parquet"
        if not p.exists():
            _atomic_write_parquet(_raw_schema(fmt).empty_table(), p)
    for sub, schema in (("quarantine", QUARANTINE_SCHEMA), ("ledger", LEDGER_SCHEMA)):
        p = lake / sub / "_schema.parquet"
        if not p.exists():
            _atomic_write_parquet(schema.empty_table(), p)


@dataclasses.dataclass
class LandResult:
    path: str
    status: str  # landed | duplicate | already_landed | rejected
    format: str = ""
    detail: int = 0
    quarantined: int = 0
    other: int = 0
    message: str = ""
    seconds: float = 0.0


def land_file(path: Path, root: Path, lake: Path) -> LandResult:
    t0 = time.perf_counter()
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    fvid = sha[:20]
    delivery_id = hashlib.sha256(f"{sha}\n{rel}".encode()).hexdigest()[:20]
    ledger_path = lake / "ledger" / f"{delivery_id}.parquet"
    if ledger_path.exists():
        return LandResult(rel, "already_landed", seconds=time.perf_counter() - t0)
    delivered_at = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone(dt.timedelta(hours=8)))
    row = {f.name: None for f in LEDGER_SCHEMA}
    row.update(delivery_id=delivery_id, file_version_id=fvid, sha256=sha, source_path=rel, size_bytes=len(data),
               delivered_at=delivered_at.replace(tzinfo=None, microsecond=0),
               landed_at=dt.datetime.now().replace(microsecond=0), is_empty_day=False)
    same_bytes_landed = any((lake / "raw").glob(f"*/*/{fvid}.parquet"))
    result = LandResult(rel, "landed")
    try:
        if rel.endswith(".gz"):
            data = _gunzip(data, rel)
            rel_inner = rel[:-3]
        else:
            rel_inner = rel
        parser = detect(data, rel_inner)
        parsed = parser(data, rel_inner)
        table, quarantine = validate(parsed, rel_inner)
        fmt = parsed.fmt
        row.update(format=fmt.name, channel=fmt.channel, merchant_key=parsed.merchant_key, bill_type=fmt.bill_type,
                   bill_date=parsed.bill_date, status="landed", is_empty_day=parsed.is_empty_day,
                   lines_total=parsed.lines_total, lines_detail=table.num_rows,
                   lines_quarantined=sum(q[1] for q in quarantine), lines_other=parsed.lines_other)
        row.update({k: v for k, v in parsed.controls.items() if k in row})
        conserved = row["lines_other"] + sum(table.column("line_span").to_pylist()) + row["lines_quarantined"]
        if conserved != parsed.lines_total:  # the parser lost or invented a line: refuse rather than guess
            raise Rejected(f"{rel}: line conservation failed: {parsed.lines_total} lines read, {conserved} accounted")
        part = f"bill_date={parsed.bill_date.isoformat()}"
        if True:  # rewritten even for a duplicate: identical bytes, and it repairs a crash before the ledger row
            table = table.append_column("file_version_id", pa.array([fvid] * table.num_rows, type=pa.string()))
            table = table.select(_raw_schema(fmt).names).cast(_raw_schema(fmt))
            _atomic_write_parquet(table, lake / "raw" / fmt.name / part / f"{fvid}.parquet")
            if quarantine:
                q = pa.table(
                    {
                        "file_version_id": [fvid] * len(quarantine),
                        "line_no": [x[0] for x in quarantine],
                        "line_span": [x[1] for x in quarantine],
                        "reason_code": [x[2] for x in quarantine],
                        "reason": [f"{rel} line {x[0]}: {REASONS.get(x[2], x[2])}: {mask_pans(x[3])}"
                                   for x in quarantine],
                        "masked_line": [mask_pans(x[4])[:4096] for x in quarantine],
                    },
                    schema=QUARANTINE_SCHEMA,
                )
                _atomic_write_parquet(q, lake / "quarantine" / f"{fvid}.parquet")
        result = LandResult(rel, "duplicate" if same_bytes_landed else "landed", fmt.name, table.num_rows,
                            len(quarantine), parsed.lines_other)
    except Rejected as e:
        msg = mask_pans(str(e))
        row.update(status="rejected", reject_reason=msg, format=row["format"] or "unknown")
        result = LandResult(rel, "rejected", row["format"], message=msg)
    # The file's own copy, by hash: the warehouse can always be rebuilt from these bytes.
    keep = lake / "files" / sha
    if not keep.exists():
        keep.parent.mkdir(parents=True, exist_ok=True)
        tmp = keep.with_name(f".{sha}.tmp-{os.getpid()}")
        tmp.write_bytes(path.read_bytes())
        os.replace(tmp, keep)
    _atomic_write_parquet(pa.Table.from_pylist([row], schema=LEDGER_SCHEMA), ledger_path)  # last: commits
    result.seconds = time.perf_counter() - t0
    return result


def _gunzip(data: bytes, name: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
            out = g.read(MAX_EXPANDED_BYTES + 1)
    except (OSError, EOFError) as e:
        raise Rejected(f"{name}: not a complete gzip stream ({e}); truncated download?") from None
    if len(out) > MAX_EXPANDED_BYTES or len(out) > MAX_RATIO * len(data) + 4096:
        raise Rejected(f"{name}: gzip expands past the size/ratio limit (gzip bomb?)")
    return out


def iter_files(paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """(file, root) pairs, sorted so terminal output is stable; order does not change the result."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend((f, p) for f in sorted(p.rglob("*")) if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            out.append((p, p.parent))
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return out


def land(paths: Iterable[Path], lake: Path, out=sys.stdout) -> list[LandResult]:
    lake = Path(lake)
    init_lake(lake)
    results = []
    for f, root in iter_files(paths):
        r = land_file(f, root, lake)
        results.append(r)
        if out is not None:
            extra = f" ({r.message})" if r.message else ""
            print(f"{r.status:>14}  {r.format or '-':<20} {r.path}: {r.detail} detail, {r.quarantined} "
                  f"quarantined, {r.other} other lines, {r.seconds:.2f}s{extra}", file=out)
    if out is not None:
        by = {s: sum(1 for r in results if r.status == s) for s in ("landed", "duplicate", "already_landed",
                                                                     "rejected")}
        print(f"landing: {len(results)} files: {by['landed']} landed, {by['duplicate']} duplicate, "
              f"{by['already_landed']} already landed, {by['rejected']} rejected; "
              f"{sum(r.detail for r in results)} detail rows, {sum(r.quarantined for r in results)} quarantined",
              file=out)
    return results
