"""Transition check: the columnar landing gives byte-for-byte the same lake as the row-by-row one it replaces.

Every file of a simulated world, plus a set of damaged variants that exercise each record rule (quoting over line
ends, stray quotes and carriage returns, control characters, BOM, CRLF, missing final newline, long lines, PANs,
wrong field counts and lengths, GBK fields), is landed by both implementations into separate lakes.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import _land_legacy as old
import pyarrow.parquet as pq
import pytest
import tally.land as new

PAN = "4111111111111111"


def _snapshot(lake: Path) -> dict[str, list]:
    snap = {}
    for f in sorted(lake.rglob("*.parquet")):
        rows = pq.read_table(f).to_pylist()
        for r in rows:
            r.pop("landed_at", None)
        snap[f.relative_to(lake).as_posix()] = rows  # row order too
    return snap


def _rezip(src: bytes, edit, gbk_names: bool) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src), metadata_encoding="gbk" if gbk_names else None) as zin, \
            zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            out = edit(info.filename, data)
            zout.writestr(info.filename, out)
    return buf.getvalue()


def _lines_edit(fn):
    """Apply fn(list of lines without line ends, eol) -> text to a text."""
    def edit(text: str) -> str:
        eol = "\r\n" if "\r\n" in text else "\n"
        return fn(text.split(eol)[:-1], eol)
    return edit


def _csv_mutations(detail_at: int) -> dict[str, object]:
    """Edits of a CSV-ish text: each returns the new text."""
    d = detail_at

    def at(i, fn):
        def edit(lines, eol):
            lines = list(lines)
            lines[d + i] = fn(lines[d + i])
            return eol.join(lines) + eol
        return _lines_edit(edit)

    def whole(fn):
        return _lines_edit(lambda lines, eol: fn(lines, eol))

    return {
        "extra_field": at(0, lambda ln: ln + ",x"),
        "nul": at(1, lambda ln: ln[:5] + "\x00" + ln[5:]),
        "bell_last_field": at(2, lambda ln: ln + "\x07"),
        "cr_inside": at(3, lambda ln: ln[:7] + "\r" + ln[7:]),
        "cr_cr_lf": at(4, lambda ln: ln + "\r"),
        "quote_mid": at(5, lambda ln: ln[:3] + '"' + ln[3:]),
        "quote_open": at(6, lambda ln: ln.replace(",", ',"', 1)),
        "bom_char": at(7, lambda ln: "\ufeff" + ln),
        "pan": at(8, lambda ln: ln[:-1] + PAN + ln[-1:] if ln else ln),
        "long": at(9, lambda ln: ln + "a" * 70000),
        "empty_line": at(10, lambda ln: ""),
        "quoted_newline": _lines_edit(lambda lines, eol: eol.join(
            lines[:d + 2] + [lines[d + 2] + ',"multi', 'line"'] + lines[d + 3:]) + eol),
        "crlf": whole(lambda lines, eol: "\r\n".join(lines) + "\r\n"),
        "lf": whole(lambda lines, eol: "\n".join(lines) + "\n"),
        "no_final_newline": whole(lambda lines, eol: eol.join(lines)),
        "no_final_newline_cr": whole(lambda lines, eol: eol.join(lines) + "\r"),
        "bom": whole(lambda lines, eol: "\ufeff" + eol.join(lines) + eol),
        "sci_id": at(11, lambda ln: ln.replace("ORD", "1E", 1) if "ORD" in ln else ln),
        "fullwidth": at(12, lambda ln: ln.replace("0", "０", 2)),
        "tab_spaces": at(13, lambda ln: ln.replace(",", " ,\t", 3)),
        "doubled_quotes": at(14, lambda ln: ln.replace(",", ',"a""b"', 1)),
        "quoted_newline_ok": at(15, lambda ln: ln.replace('"', '"x\ny', 1)),
        "quoted_newlines_ok": at(16, lambda ln: ln.replace('"', '"x\n\ny\n', 1)),
        "quote_then_text": at(17, lambda ln: ln.replace('"', '"x"y', 1)),
    }


def _variants(world: Path) -> list[tuple[str, bytes]]:
    landing = world / "landing"
    out: list[tuple[str, bytes]] = []
    for f in sorted(p for p in landing.rglob("*") if p.is_file()):
        out.append((f.relative_to(landing).as_posix(), f.read_bytes()))
    pick = {
        "wechat": next(p for p in sorted(landing.glob("*/wechat/*_ALL.csv")) if not p.read_bytes().startswith(b"<")),
        "payments": next(iter(sorted(landing.glob("*/internal/internal_payments_*.csv")))),
        "refunds": next(iter(sorted(landing.glob("*/internal/internal_refunds_*.csv")))),
        "payout": next(iter(sorted(landing.glob("*/bank/PAYOUT_*.txt")))),
        "statement": next(iter(sorted(landing.glob("*/bank/bank_statement_*.csv")))),
    }
    for kind, path in pick.items():
        enc = "gbk" if kind in ("payout", "statement") else "utf-8"
        text = path.read_bytes().decode(enc)
        detail_at = {"statement": 3}.get(kind, 1)
        for mname, edit in _csv_mutations(detail_at).items():
            try:
                data = edit(text).encode(enc if mname not in ("bom", "bom_char") else "utf-8")
            except (UnicodeEncodeError, IndexError):
                continue
            out.append((f"{kind}-{mname}/{path.name}", data))
    wechat = pick["wechat"].read_bytes()
    out.append((f"gz/{pick['wechat'].name}.gz", gzip.compress(wechat, mtime=0)))
    out.append((f"gbk/{pick['wechat'].name}", wechat.decode("utf-8").encode("gbk")))
    out.append((f"bad-utf8/{pick['payments'].name}", pick["payments"].read_bytes()[:300] + b"\xed\xa0\x80\n"))
    alipay = next(iter(sorted(landing.glob("*/alipay/*.zip"))))
    for mname, edit in _csv_mutations(5).items():
        def member(fname, data, edit=edit, mname=mname):
            if not fname.endswith("_业务明细.csv"):
                return data
            return edit(data.decode("gbk")).encode("gbk" if mname not in ("bom", "bom_char") else "utf-8")
        try:
            out.append((f"alipay-{mname}/{alipay.name}", _rezip(alipay.read_bytes(), member, True)))
        except (UnicodeEncodeError, IndexError):
            continue
    union = next(iter(sorted(landing.glob("*/unionpay/*.zip"))))
    zm_edits = {
        "short": lambda ls: [ls[0][:-1]] + ls[1:],
        "gbk_field": lambda ls: [ls[0][:327] + "银联商户".encode("gbk") + ls[0][335:]] + ls[1:],
        "bad_gbk_line_length": lambda ls: [ls[0] + "中".encode("gbk")] + ls[1:],
        "ctrl": lambda ls: [ls[0][:400] + b"\x01" + ls[0][401:]] + ls[1:],
        "bad_amount": lambda ls: [ls[0][:66] + b"00000000000X" + ls[0][78:]] + ls[1:],
        "pan_in_reserved": lambda ls: [ls[0][:509] + PAN.encode() + ls[0][509 + len(PAN):]] + ls[1:],
        "lf_only": lambda ls: ls,
    }
    zme = "ZME adjustment line 中".encode("gbk")
    for mname, fn in zm_edits.items():
        def member(fname, data, fn=fn, mname=mname):
            if "ZME" in fname:
                return zme + b"\r\n" + zme + b"\r\n" if mname == "short" else data
            if not fname.startswith("INN"):
                return data
            ls = data.split(b"\r\n")[:-1]
            return (b"\n" if mname == "lf_only" else b"\r\n").join(fn(ls)) + b"\r\n"
        out.append((f"unionpay-{mname}/{union.name}", _rezip(union.read_bytes(), member, False)))
    return out


@pytest.mark.parametrize("impl", ["both"])
def test_columnar_landing_equals_row_by_row(world: Path, tmp_path: Path, impl: str):
    variants = _variants(world)
    assert len(variants) > 100
    src = tmp_path / "src"
    for rel, data in variants:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    files = old.iter_files([src])
    old.init_lake(tmp_path / "old")
    new.init_lake(tmp_path / "new")
    statuses = set()
    for f, root in files:
        a = old.land_file(f, root, tmp_path / "old")
        b = new.land_file(f, root, tmp_path / "new")
        assert (a.status, a.format, a.detail, a.quarantined, a.other, a.message) == \
            (b.status, b.format, b.detail, b.quarantined, b.other, b.message), a.path
        statuses.add(a.status)
    assert {"landed", "rejected"} <= statuses
    sa, sb = _snapshot(tmp_path / "old"), _snapshot(tmp_path / "new")
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k] == sb[k], k
