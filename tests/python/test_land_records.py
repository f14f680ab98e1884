"""The record rules of the columnar parser, line by line: plain lines are cut by Arrow's CSV reader, the rest by
the format's own rule (Python's csv, strict), and both must give what the format says."""

from __future__ import annotations

import csv
import io
import os
import random
import re
import shutil
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import tally.land
from tally.land import land, land_file

HEADER = "order_id,merchant_id,channel,channel_serial,amount_fen,currency,status,created_at,paid_at,payer_id,subject"


def _row(i: int, payer: str = "o1", subject: str = '"s"') -> str:
    return (f"ORD{i},M0001,wechat,42000000000000000000000000{i:02d},100,CNY,SUCCESS,2024-03-04 00:00:00,"
            f"2024-03-04 00:00:01,{payer},{subject}")


def _land(tmp: Path, name: str, data: bytes, gate: bool = False):
    src = tmp / "in"
    src.mkdir(exist_ok=True)
    (src / name).write_bytes(data)
    lake = tmp / "lake"
    r = land_file(src / name, src, lake, gate=gate)
    raw = [row for f in sorted((lake / "raw").rglob("*.parquet")) for row in pq.read_table(f).to_pylist()]
    q = [row for f in sorted((lake / "quarantine").glob("*.parquet")) for row in pq.read_table(f).to_pylist()]
    return r, raw, q


def _payments(tmp: Path, lines: list[str], eol: str = "\n", final: bool = True) -> tuple:
    text = eol.join([HEADER, *lines]) + (eol if final else "")
    return _land(tmp, "internal_payments_20240304.csv", text.encode())


def test_a_quoted_field_may_run_over_a_line_end(tmp_path: Path):
    r, raw, q = _payments(tmp_path, [_row(1, subject='"two'), 'lines"', _row(2)])
    assert r.status == "landed" and not q
    assert [(x["line_no"], x["line_span"], x["subject"]) for x in raw] == [(2, 2, "two\nlines"), (4, 1, "s")]


def test_an_unclosed_quote_takes_at_most_fifty_lines(tmp_path: Path):
    r, raw, q = _payments(tmp_path, [_row(1, subject='"open')] + [_row(i) for i in range(2, 62)])
    assert [(x["line_no"], x["line_span"], x["reason_code"]) for x in q] == [(2, 50, "field_count")]
    assert [x["line_no"] for x in raw] == list(range(52, 63))
    assert r.detail + 50 + r.other == 62


def test_quotes_inside_an_unquoted_field_are_text_but_still_count(tmp_path: Path):
    r, raw, q = _payments(tmp_path, [_row(1, payer='o"1"'), _row(2, payer='o"2'), _row(3), _row(4)])
    assert [(x["line_no"], x["payer_id"]) for x in raw] == [(2, 'o"1"')]
    # an odd number of quotes opens a record that runs on while the count stays odd (to the end here); csv refuses it
    assert [(x["line_no"], x["line_span"], x["reason_code"]) for x in q] == [(3, 3, "field_count")]


def test_text_after_a_closing_quote_refuses_the_line(tmp_path: Path):
    r, raw, q = _payments(tmp_path, [_row(1, subject='"s"x'), _row(2)])
    assert [(x["line_no"], x["reason_code"]) for x in q] == [(2, "field_count")]
    assert "not a 11-field CSV record" in q[0]["reason"]


def test_carriage_returns(tmp_path: Path):
    # CRLF ends, one CR too many before a line end (kept as part of the line), a bare CR inside (refused)
    r, raw, q = _payments(tmp_path, [_row(1), _row(2) + "\r", _row(3, payer="o\r1"), _row(4)], eol="\r\n")
    assert [(x["line_no"], x["subject"]) for x in raw] == [(2, "s"), (3, "s"), (5, "s")]
    assert [(x["line_no"], x["reason_code"]) for x in q] == [(4, "field_count")]


def test_bom_and_missing_final_newline(tmp_path: Path):
    text = "\ufeff" + "\n".join([HEADER, _row(1), _row(2)])
    r, raw, q = _land(tmp_path, "internal_payments_20240304.csv", text.encode())
    assert r.status == "landed" and [x["line_no"] for x in raw] == [2, 3] and raw[0]["order_id"] == "ORD1"


def test_line_level_reasons_and_doubled_quotes(tmp_path: Path):
    r, raw, q = _payments(tmp_path, [_row(1, subject='"say ""hi"""'), _row(2, payer="o\x071"),
                                     _row(3, subject="x" * 70000), _row(4, subject=""), ""])
    assert [x["subject"] for x in raw] == ['say "hi"', ""]
    # in line order, whichever check refused the line
    assert [(x["line_no"], x["reason_code"]) for x in q] == [(3, "control_char"), (4, "line_too_long"),
                                                             (6, "field_count")]


def test_wechat_fields_are_split_on_commas_only(tmp_path: Path, world: Path):
    f = next(p for p in sorted(world.glob("landing/*/wechat/*_ALL.csv")) if not p.read_bytes().startswith(b"<"))
    lines = f.read_text("utf-8").split("\n")
    cells = lines[1].split(",")
    cells[20] = '`a "quoted"\rname'  # 商品名称: a quote and a bare CR are text in a WeChat bill
    lines[1] = ",".join(cells)
    r, raw, q = _land(tmp_path, f.name, "\n".join(lines).encode())
    assert not q and raw[0]["body"] == 'a "quoted"\rname' and raw[1]["body"] != raw[0]["body"]


def test_unionpay_fixed_width_is_cut_by_gbk_bytes(tmp_path: Path, world: Path):
    src = next(iter(sorted(world.glob("landing/*/unionpay/*.zip"))))
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if "ZME" not in info.filename:
                ls = data.split(b"\r\n")
                ls[0] = ls[0][:327] + "银联商户".encode("gbk") + ls[0][335:]  # 8 bytes, 4 characters
                ls[1] = ls[1][:-1]
                data = b"\r\n".join(ls)
            zout.writestr(info.filename, data)
    r, raw, q = _land(tmp_path, src.name, buf.getvalue())
    assert raw[0]["sub_mer_abbr"] == "银联商户" and raw[0]["line_no"] == 1
    assert [(x["line_no"], x["reason_code"]) for x in q] == [(2, "line_length")]
    assert "606 bytes, expected 607" in q[0]["reason"]


TRICKY = ["", "0", "1e5", "12.00", "１２.00", "4111111111111111", "1234567890123", "x,y", 'a"b', "a\tb", " 12.00",
          "12.00 ", "\x07", "\ufeff1", "2024-03-04 00:00:00", "SUCCESS", "CNY", "M0001", "A" * 40, "9" * 28,
          "2024-02-30 10:00:00", "2024-03-04 24:00:00", "0000-01-01 00:00:00", "20240230093816", "20240304093860",
          "41111111111111"]


def _good_fields(world: Path, kind: str, full_times: bool = False) -> list[list[str]]:
    """Real field values from the simulated world's files, per record (payout times cut to 8 digits unless
    `full_times`)."""
    land_dir = world / "landing"
    if kind == "payments":
        text = next(iter(sorted(land_dir.glob("*/internal/internal_payments_*.csv")))).read_text("utf-8")
        return list(csv.reader(text.splitlines()[1:40]))
    if kind == "wechat":
        f = next(p for p in sorted(land_dir.glob("*/wechat/*_ALL.csv")) if p.read_text("utf-8").count(",") > 200
                 and len(p.read_text("utf-8").split("\n")[0].split(",")) == 27)
        return [[c[1:] for c in ln.split(",")] for ln in f.read_text("utf-8").splitlines()[1:40] if ln.startswith("`")]
    if kind == "payout":
        texts = (f.read_bytes().decode("gbk") for f in sorted(land_dir.glob("*/bank/PAYOUT_*.txt")))
        text = next(t for t in texts if t.count("\n") > 2)  # the first day's file is empty: nothing is due yet
        # 19-digit accounts and 14-digit times are PAN-shaped runs: such lines never pass the one scan
        rows = [ln.split("|") for ln in text.splitlines()[1:40]]
        return [[*r[:3], "6222******0029", *r[4:11], r[11] if full_times else r[11][:8]] for r in rows]
    with zipfile.ZipFile(next(iter(sorted(land_dir.glob("*/alipay/*.zip")))), metadata_encoding="gbk") as z:
        text = z.read(next(n for n in z.namelist() if n.endswith("_业务明细.csv"))).decode("gbk")
    return [[f.strip("\t ") for f in r] for r in csv.reader(ln for ln in text.splitlines()[5:40] if ln[:1] != "#")]


@pytest.mark.parametrize("real", [False, True], ids=["patterns", "calendar"])
@pytest.mark.parametrize("kind", ["payments", "wechat", "payout", "alipay"])
def test_the_line_scan_never_passes_a_bad_field(world: Path, kind: str, real: bool):
    """Whatever a line holds, if the one-scan regex accepts it, the format's own rule splits it into fields that
    all match their checked patterns, and the line has no PAN-like run or control character. With the landing's
    own rules (`real`: a date/time must exist, and date/time fields, never masked, may hold a 14-digit run), every
    checked date/time parses with strptime and the PAN-free rule holds outside the date/time fields."""
    import datetime as dt

    from tally.formats import ALIPAY_TRADE, BANK_PAYOUT_RESULT, INTERNAL_PAYMENTS, WECHAT_TRADE
    from tally.land import _plain_record_regex

    fmt, delim, quoted, backtick, strip = {
        "payments": (INTERNAL_PAYMENTS, ",", True, False, ""),
        "wechat": (WECHAT_TRADE, ",", False, True, ""),
        "payout": (BANK_PAYOUT_RESULT, "|", False, False, ""),
        "alipay": (ALIPAY_TRADE, ",", True, False, "\t "),
    }[kind]
    good = _good_fields(world, kind, full_times=real)
    patterns = [c.real_pattern if real else c.pattern for c in fmt.columns]
    unmasked = frozenset(i for i, c in enumerate(fmt.columns) if c.calendar) if real else frozenset()
    n = len(patterns)
    assert good and all(len(r) == n for r in good)
    rx, checked = _plain_record_regex(n, delim, quoted, backtick, True, patterns, strip, unmasked)
    assert checked
    if real and kind == "payout":
        assert 11 in checked  # finished_at: a 14-digit time no longer keeps the line from the scan
    rng = random.Random(kind)
    accepted = 0
    for _ in range(4000):
        values = [rng.choice(TRICKY) if rng.random() < 0.08 else rng.choice(good)[i] for i in range(n)]
        if strip and rng.random() < 0.3:
            values = [v + rng.choice(["\t", " ", ""]) for v in values]
        cells = []
        for v in values:
            if quoted and (rng.random() < 0.3 or '"' in v or delim in v):
                v = '"' + v.replace('"', '""') + '"'
            cells.append(("`" if backtick else "") + v)
        line = delim.join(cells) + "\n"
        if not pc.match_substring_regex(pa.array([line]), rx)[0].as_py():
            continue
        accepted += 1
        text = line[:-1]
        fields = next(csv.reader([text], strict=True)) if quoted else text.split(delim)
        assert len(fields) == n
        fields = [f[1:] if backtick else f.strip(strip) if strip else f for f in fields]
        for i in checked:
            assert pc.match_substring_regex(pa.array([fields[i]]), patterns[i])[0].as_py(), (fields[i], patterns[i])
            if real and fmt.columns[i].calendar and fields[i]:
                dt.datetime.strptime(fields[i], fmt.columns[i].calendar)
        masked_fields = [f for i, f in enumerate(fields) if i not in unmasked]
        assert not any(re.search(r"(?<![0-9])[0-9]{13,19}(?![0-9])", f) for f in masked_fields), text
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
    assert accepted > 100, accepted


def test_the_calendar_regex_is_strptime():
    """`Column.real_pattern` is the line scan's and the screen's word on whether a date/time exists; Great
    Expectations asks Python's strptime. They must agree on every value (of the column's pattern)."""
    import datetime as dt

    from tally.formats import CALENDAR, COMPACT_DATETIME, DATE, DATETIME, REAL_CALENDAR, TIME

    def parses(v: str, fmt: str) -> bool:
        try:
            dt.datetime.strptime(v, fmt)
        except ValueError:
            return False
        return True

    years = [0, 1, 4, 99, 100, 400, 999, 1000, 1600, 1900, 1999, 2000, 2023, 2024, 2100, 2400, 9996, 9999]
    dates = [f"{y:04d}-02-{d:02d}" for y in range(10000) for d in (28, 29, 30)]
    dates += [f"{y:04d}-{m:02d}-{d:02d}" for y in years for m in range(14) for d in range(33)]
    times = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(26) for m in (0, 1, 58, 59, 60, 99) for s in (0, 59, 60, 61)]
    cases = {
        DATE: dates,
        TIME: times,
        DATETIME: [f"{d} {t}" for d in dates[::97] for t in times[::7]],
        COMPACT_DATETIME: [f"{d}{t}".replace("-", "").replace(":", "") for d in dates[::97] for t in times[::7]],
    }
    for pattern, values in cases.items():
        assert all(re.search(pattern, v) for v in values)  # values of the column's pattern
        got = pc.match_substring_regex(pa.array(values), REAL_CALENDAR[pattern]).to_pylist()
        want = [parses(v, CALENDAR[pattern]) for v in values]
        assert got == want, [v for v, g, w in zip(values, got, want, strict=True) if g != w][:10]
        assert any(want) and not all(want)


def _lake_rows(lake: Path) -> dict[str, list[dict]]:
    """Every Parquet file of a lake by path, its rows in order (ledger rows without their landing time)."""
    return {f.relative_to(lake).as_posix(): [{k: v for k, v in row.items() if k != "landed_at"}
                                             for row in pq.read_table(f).to_pylist()]
            for f in sorted(lake.rglob("*.parquet"))}


def _dump_with_traps(n: int) -> str:
    """An internal payments dump whose cuts must step around records: quoted fields over two lines, an unclosed
    quote (it takes 50 lines), and refused lines."""
    rows = []
    for i in range(n):
        if i % 120 == 5:
            rows += [_row(i, subject='"two'), 'lines"']
        elif i % 91 == 7:
            rows.append(_row(i, payer="o\x071"))  # a control character: quarantined
        elif i == 250:  # more than 50 lines before the next two-line record: it does not pair with one
            rows.append(_row(i, subject='"never closed'))
        else:
            rows.append(_row(i))
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.mark.parametrize("gate", [False, True], ids=["screen", "gx"])
def test_a_file_cut_into_pieces_lands_exactly_as_whole(tmp_path: Path, world: Path, monkeypatch: pytest.MonkeyPatch,
                                                       gate: bool):
    """Big files are parsed, validated and written a piece at a time (`PIECE_BYTES`); the lake must not show it:
    the same raw rows in the same order, the same quarantine, the same ledger rows, for every format."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "internal_payments_20240309.csv").write_text(_dump_with_traps(400))
    if not gate:  # every format of the world (with GX on, each piece is a GX run: the crafted dump is enough)
        shutil.copytree(world / "landing", inbox / "world")
    land([inbox], tmp_path / "whole", out=None, gate=gate)
    monkeypatch.setattr(tally.land, "PIECE_BYTES", 1500)  # about a dozen lines a piece
    land([inbox], tmp_path / "pieces", out=None, gate=gate)

    want, got = _lake_rows(tmp_path / "whole"), _lake_rows(tmp_path / "pieces")
    assert got == want
    assert sum(len(rows) for k, rows in got.items() if k.startswith("quarantine/")) >= 5
    # it was cut: a row group per piece (the whole file is one)
    groups = {f.name: pq.ParquetFile(f).num_row_groups for f in (tmp_path / "pieces" / "raw").rglob("*.parquet")}
    assert max(groups.values()) >= 10
    if not gate:
        assert sum(n > 1 for n in groups.values()) >= 10
    assert not [p for p in (tmp_path / "pieces").rglob(".*") if p.is_file()]  # no temp file left behind


def test_raw_files_are_written_in_row_groups_every_core_can_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """DuckDB reads a Parquet file one row group per thread, so a dump is written in row groups of at most
    `ROW_GROUP_ROWS` (DuckDB's own size), whole or in pieces, not one row group per piece."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "internal_payments_20240309.csv").write_text(_dump_with_traps(400))
    monkeypatch.setattr(tally.land, "ROW_GROUP_ROWS", 64)
    land([inbox], tmp_path / "whole", out=None, gate=False)
    monkeypatch.setattr(tally.land, "PIECE_BYTES", 20_000)  # a few pieces of about 150 lines
    land([inbox], tmp_path / "pieces", out=None, gate=False)
    for lake in ("whole", "pieces"):
        (raw,) = (tmp_path / lake / "raw" / "internal_payments").glob("bill_date=2024-03-09/*.parquet")
        meta = pq.ParquetFile(raw).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert max(sizes) <= 64 and sum(sizes) == meta.num_rows > 300, (lake, sizes)
    assert _lake_rows(tmp_path / "pieces") == _lake_rows(tmp_path / "whole")


def test_a_file_refused_in_a_late_piece_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An id in E-notation refuses the whole file (bad input #24) even when earlier pieces were already written."""
    rows = [_row(i) for i in range(300)]
    rows[280] = rows[280].replace("ORD280", "4.2E+27")
    monkeypatch.setattr(tally.land, "PIECE_BYTES", 1500)
    r, raw, q = _land(tmp_path, "internal_payments_20240304.csv", "\n".join([HEADER, *rows, ""]).encode())
    assert r.status == "rejected" and "line 282" in r.message and "scientific notation" in r.message
    assert not raw and not q
    assert not list((tmp_path / "lake" / "raw" / "internal_payments").rglob("*.parquet*"))
    assert not [p for p in (tmp_path / "lake").rglob(".*") if p.is_file()]


@pytest.mark.parametrize("segment", [700, 4_000, 9_000])
def test_a_dump_read_a_segment_at_a_time_lands_exactly_as_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 segment: int):
    """An internal dump larger than `SEGMENT_BYTES` is read from disk a segment at a time, so landing never holds the
    whole file; the lake must not show it. Segments smaller than a piece, a quoted field over two lines, an unclosed
    quote (50 lines), refused lines, a BOM, CRLF line ends, a missing final newline, lines that begin with U+FEFF and
    a line longer than a segment all land as they do whole."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "internal_payments_20240309.csv").write_text(_dump_with_traps(400))
    crlf = "\ufeff" + "\r\n".join(_dump_with_traps(300).split("\n")).rstrip("\r\n")
    (inbox / "internal_payments_20240310.csv").write_bytes(crlf.encode())
    # lines that begin with U+FEFF are refused lines, not a BOM to drop, where a segment begins too
    boms = [("\ufeff" if i % 3 == 0 else "") + _row(i) for i in range(300)]
    (inbox / "internal_payments_20240311.csv").write_text("\n".join([HEADER, *boms, ""]))
    long = [_row(i, subject="x" * 12_000 if i == 40 else '"s"') for i in range(100)]  # a line longer than a segment
    (inbox / "internal_payments_20240312.csv").write_text("\n".join([HEADER, *long, ""]))
    monkeypatch.setattr(tally.land, "PIECE_BYTES", 1500)
    land([inbox], tmp_path / "whole", out=None, gate=False)

    read = []
    real = tally.land._internal_segments

    def segments(*args):
        read.append(args[2])
        return real(*args)

    monkeypatch.setattr(tally.land, "_internal_segments", segments)
    monkeypatch.setattr(tally.land, "SEGMENT_BYTES", segment)
    land([inbox], tmp_path / "segments", out=None, gate=False)
    assert sorted(read) == [f"internal_payments_202403{d}.csv" for d in ("09", "10", "11", "12")]
    want, got = _lake_rows(tmp_path / "whole"), _lake_rows(tmp_path / "segments")
    assert got == want
    assert sum(len(rows) for k, rows in got.items() if k.startswith("quarantine/")) >= 8
    assert not [p for p in (tmp_path / "segments").rglob(".*") if p.is_file()]


@pytest.mark.parametrize("limit", [3, 50])
def test_a_segment_ends_where_the_step_back_rule_says(monkeypatch: pytest.MonkeyPatch, limit: int):
    """`_safe_end` counts the quotes once and must end a segment exactly where stepping back `_JOIN_LIMIT` lines at a
    time while the lines before hold an odd number of quotes would (the rule `_cuts` uses). A join limit of 3 puts
    odd lines on a window's edges often."""
    monkeypatch.setattr(tally.land, "_JOIN_LIMIT", limit)
    rng = random.Random(7)
    for case in range(300):
        n = rng.randint(1, 400)
        odds = rng.choice([0.0, 0.002, 0.01, 0.05, 0.3, 0.6])
        text = "".join(('a"b' if rng.random() < odds else "ab") + "\n" for _ in range(n))
        lines = tally.land._text(text.encode(), "utf-8", "t.csv")
        a = rng.randint(0, min(n - 1, 3))
        b = n
        while b > a and tally.land._odd_quotes(lines, max(a, b - limit), b):
            b -= limit
        assert tally.land._safe_end(lines, a, n) == max(b, a), (case, n, a)


def test_a_dump_with_no_safe_end_is_read_a_bounded_number_of_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A dump whose segments never offer a safe end (a stray quote every few lines) carries everything forward; each
    read is then as large as what is carried, so a file of about 97 segments is read in a handful of reads, not one
    per segment each rescanning all before it, and still lands as whole."""
    rows = [_row(i, subject='a"b' if i % 7 == 0 else '"s"') for i in range(600)]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "internal_payments_20240309.csv").write_text("\n".join([HEADER, *rows, ""]))
    land([inbox], tmp_path / "whole", out=None, gate=False)
    size = (inbox / "internal_payments_20240309.csv").stat().st_size
    reads = []
    real_open = Path.open

    def counting_open(self, mode="r", *args, **kw):
        f = real_open(self, mode, *args, **kw)
        if "b" in mode and self.parent.name == "files":  # the kept copy, read a segment at a time
            real_readinto = f.readinto

            def readinto(view):
                reads.append(len(view))
                return real_readinto(view)

            f.readinto = readinto
        return f

    monkeypatch.setattr(Path, "open", counting_open)
    monkeypatch.setattr(tally.land, "SEGMENT_BYTES", 700)
    land([inbox], tmp_path / "segments", out=None, gate=False)
    assert size > 60 * 700 and 3 <= len(reads) <= 12, (size, reads)  # one read per segment: about 97
    assert _lake_rows(tmp_path / "segments") == _lake_rows(tmp_path / "whole")
    q = _lake_rows(tmp_path / "whole")
    assert sum(len(r) for k, r in q.items() if k.startswith("quarantine/")) >= 1


def test_a_dump_refused_in_a_late_segment_names_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Bytes that are not UTF-8 far into a big dump refuse it with the line counted from the file's start."""
    rows = [_row(i) for i in range(300)]
    data = "\n".join([HEADER, *rows, ""]).encode().replace(b"ORD280,", b"ORD\xff280,")
    monkeypatch.setattr(tally.land, "PIECE_BYTES", 1500)
    monkeypatch.setattr(tally.land, "SEGMENT_BYTES", 5000)
    r, raw, q = _land(tmp_path, "internal_payments_20240304.csv", data)
    assert r.status == "rejected" and "line 282" in r.message and "not valid utf-8" in r.message, r.message
    assert not raw and not q
    assert not [p for p in (tmp_path / "lake").rglob(".*") if p.is_file()]


@pytest.mark.parametrize("ending", ["at a segment's end", "a line past it", "header only"])
def test_a_dump_that_ends_on_a_segment_boundary_lands_as_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               ending: str):
    """A dump exactly two segments long, one line past that, and a header padded past a segment with no record:
    each lands as whole (and the read ends)."""
    monkeypatch.setattr(tally.land, "PIECE_BYTES", 1000)
    if ending == "header only":
        text = HEADER + " " * 6000 + "\n"
    else:
        text = "\n".join([HEADER, *(_row(i) for i in range(60))]) + "\n"
        text = text[: 5000 - 1] + "\n"  # the last line cut short: exactly 5,000 bytes, ending in a line end
        if ending == "a line past it":
            text += _row(99) + "\n"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "internal_payments_20240309.csv").write_text(text)
    land([inbox], tmp_path / "whole", out=None, gate=False)
    monkeypatch.setattr(tally.land, "SEGMENT_BYTES", 2500)
    land([inbox], tmp_path / "segments", out=None, gate=False)
    assert _lake_rows(tmp_path / "segments") == _lake_rows(tmp_path / "whole")


@pytest.mark.parametrize("change", ["grows", "touched"])
def test_a_file_that_changes_while_it_lands_is_refused_for_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               change: str):
    """Landing hashes a delivery as a stream, then keeps its own copy to parse: a file written to in between (a
    download still being written, or only its time set) is refused for this run, with nothing landed, kept or
    written to the ledger, and the next landing lands it."""
    src = tmp_path / "in"
    src.mkdir()
    f = src / "internal_payments_20240304.csv"
    f.write_text("\n".join([HEADER, _row(1), ""]))
    real_read = tally.land._read

    def read_then_write(*args, **kw):
        got = real_read(*args, **kw)
        if change == "grows":
            with f.open("a") as out:
                out.write(_row(2) + "\n")
        else:
            os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000_000))
        return got

    monkeypatch.setattr(tally.land, "_read", read_then_write)
    lake = tmp_path / "lake"
    r = land_file(f, src, lake, gate=False)
    assert r.status == "rejected" and "changed while it was landed" in r.message, r.message
    assert not list((lake / "files").iterdir())
    assert not list((lake / "raw").rglob("*.parquet"))
    assert not list((lake / "ledger").glob("*.parquet"))
    monkeypatch.setattr(tally.land, "_read", real_read)
    r = land_file(f, src, lake, gate=False)
    assert r.status == "landed" and r.detail == (2 if change == "grows" else 1), r
