"""Landing: files as delivered -> raw Parquet partitions, a quarantine and an append-only file ledger.

Identity is the SHA-256 of the bytes. Each delivery (bytes + where they were found) gets one ledger row; whether a
delivery is a duplicate, and which version of a (format, merchant, bill date) is current, is derived from the ledger
by a deterministic order (delivery time, then hash), so landing in any order, any number of times, gives the same
lake. Writes are temp-then-rename and the ledger row is written last: a crash leaves nothing half-visible and a
rerun finishes the job.

Parsing is columnar: a file's text is held once and split into lines by a zero-copy Arrow view; one strict regex
per format picks the lines that are plainly well-formed (field count, quoting, no control characters), and those
are cut into columns by Arrow's CSV reader with a pinned dialect and explicit all-text columns (never a sniffer).
Only the rare remaining lines (a quoted field running over a line end, a stray quote, a wrong field count) go
through the format's own record rule one at a time, so both kinds give exactly the same fields and reasons.
Validation is a vectorised screen over every value (the same scan checks the patterns that fit in it); Great
Expectations (gx_gate.py) is the gate: wherever the screen flags a value it checks the file's columns and decides
every flagged row (a piece with nothing flagged gives it nothing to judge).
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
import shutil
import sys
import threading
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from re import _constants as _sre
from re import _parser as _sre_parse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tally.formats import (
    ALIPAY_TRADE,
    BANK_PAYOUT_RESULT,
    BANK_STATEMENT,
    BILL_WINDOW_DAYS_AFTER,
    BILL_WINDOW_DAYS_BEFORE,
    FORMATS,
    INTERNAL_DISPOSITIONS,
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
from tally.gx_gate import WINDOW_SUFFIX, Gate
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


class NotReady(Rejected):
    """The delivery changed (or vanished) while it was landed: refused for this run only, with no ledger row, so
    landing it again once it is complete lands it."""


@dataclasses.dataclass
class Parsed:
    """One piece of a parsed file: a run of consecutive records (most files are one piece, see `_pieces`). The
    file's own figures (line counts, control totals, empty day) are on its first piece; later pieces carry zeros."""

    fmt: Format
    merchant_key: str
    bill_date: dt.date | None
    lines_total: int
    lines_other: int
    # Candidate detail records, columnar: canonical column -> text values (all null: column absent), plus lineage.
    columns: dict[str, pa.Array | pa.ChunkedArray]
    line_no: np.ndarray
    line_span: np.ndarray
    # Each record's raw text followed by its line end, as in the file (see `_strip_eol`).
    raw: pa.Array | pa.ChunkedArray
    # Records already refused by the parser: (line_no, span, reason_code, detail, raw line).
    pre_quarantine: list[tuple[int, int, str, str, str]]
    controls: dict[str, int | None]
    is_empty_day: bool = False
    # Hints from the parser, per record (None: unknown, validate checks every record): no control character in
    # the line; no PAN-like digit run in any field that is masked (date/time columns never are).
    no_ctrl: np.ndarray | None = None
    pan_free: np.ndarray | None = None
    # ... and the records whose `valid_columns` are known to match their patterns (`Column.real_pattern`: a date or
    # time also exists on the calendar).
    valid_rows: np.ndarray | None = None
    valid_columns: frozenset[str] = frozenset()


# ---------------------------------------------------------------------------------------------------------------
# Bytes -> text -> lines
# ---------------------------------------------------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"
_SCAN_CHUNK = 1 << 26  # newline scan in 64 MiB steps: bounded scratch memory for any file size
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Two workers for column-wise Arrow kernels (they release the GIL): the machine's two cores."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tally-land")
        return _POOL


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False))


class Lines:
    """The physical lines of a text, without copying it: LF or CRLF ends; a missing final newline still ends the last
    line (the rule `_split_lines` states, and what Python's `text.split("\\n")` minus one `\\r` gives).

    `arr` is a zero-copy Arrow view with one value per line *including* its line end, for vectorised work;
    `lines[i]` is line i itself.
    """

    def __init__(self, data: bytes | pa.Buffer, binary: bool = False):
        self.buf = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
        self.u8 = np.frombuffer(self.buf, dtype=np.uint8)
        ends = [np.flatnonzero(self.u8[i:i + _SCAN_CHUNK] == 10) + (i + 1)
                for i in range(0, len(self.u8), _SCAN_CHUNK)]
        offsets = np.concatenate([np.zeros(1, np.int64), *ends]).astype(np.int64)
        if offsets[-1] != len(self.u8):
            offsets = np.append(offsets, np.int64(len(self.u8)))
        self.offsets = offsets
        kind = pa.large_binary() if binary else pa.large_string()
        self.arr = pa.Array.from_buffers(kind, len(offsets) - 1, [None, pa.py_buffer(offsets), self.buf])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int):
        return _strip_eol(self.arr[i].as_py())

    def starts_with(self, prefix: str, start: int = 0) -> np.ndarray:
        """Which lines from `start` on begin with `prefix`."""
        return _np(pc.starts_with(self.arr.slice(start), prefix))

    def first(self, prefix: str, start: int = 0) -> int | None:
        hit = np.flatnonzero(self.starts_with(prefix, start))
        return int(hit[0]) + start if len(hit) else None

    def byte_lengths(self) -> np.ndarray:
        """Each line's length in bytes without its line end."""
        if not len(self):
            return np.zeros(0, np.int64)
        start, end = self.offsets[:-1], self.offsets[1:]
        size = end - start - (self.u8[end - 1] == 10)  # every line holds at least its own LF or one byte
        return size - ((size > 0) & (self.u8[np.maximum(start + size - 1, 0)] == 13))

    def block(self, a: int, b: int) -> pa.Buffer:
        """The bytes of lines a..b-1, line ends included."""
        return self.buf.slice(int(self.offsets[a]), int(self.offsets[b] - self.offsets[a]))


def _strip_eol(s):
    """A line from its Arrow view: drop the final LF, then one CR (bytes or str)."""
    nl, cr = (b"\n", b"\r") if isinstance(s, bytes) else ("\n", "\r")
    if s.endswith(nl):
        s = s[:-1]
    return s[:-1] if s.endswith(cr) else s


def _with_eol(s: str) -> str:
    """The inverse of `_strip_eol`, for records built in Python (a joined multi-line CSV record)."""
    return s + "\r\n" if s.endswith("\r") else s + "\n"


def _text(data: bytes | memoryview, encoding: str, name: str, first_line: int = 1) -> Lines:
    """Bytes as delivered -> lines of UTF-8 text. Strict (never errors='replace'); a BOM means UTF-8.
    `first_line` > 1: a later segment of a file (`_internal_segments`), whose BOM, if any, was at the file's start."""
    buf = pa.py_buffer(data)
    if first_line == 1 and data[:3] == _BOM:
        buf, encoding = buf.slice(3), "utf-8"
    if encoding == "utf-8":
        try:  # Arrow checks UTF-8 without making a Python string of the whole file
            pa.Array.from_buffers(pa.large_string(), 1, [None, pa.py_buffer(np.array([0, buf.size], np.int64)),
                                                         buf]).validate(full=True)
        except pa.ArrowInvalid:  # raises Rejected with line and reason
            return Lines(_decode(bytes(data), encoding, name, first_line).encode("utf-8"))
        return Lines(buf)
    return Lines(_decode(bytes(data), encoding, name, first_line).encode("utf-8"))


def _decode(data: bytes, encoding: str, name: str, first_line: int = 1) -> str:
    if first_line == 1 and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        encoding = "utf-8"
    try:
        return data.decode(encoding)  # strict: never errors='replace'
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + first_line
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
        try:
            with zf.open(info) as fh:  # read with a counter: the header's size may lie
                chunk = fh.read(info.file_size + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
            raise Rejected(f"{name}: archive member {n!r} cannot be read ({e}); truncated download?") from None
        if len(chunk) > info.file_size:
            raise Rejected(f"{name}: archive member {n!r} is larger than its header says (zip bomb?)")
        total += len(chunk)
        if total > MAX_EXPANDED_BYTES:
            raise Rejected(f"{name}: archive expands past {MAX_EXPANDED_BYTES} bytes (zip bomb?)")
        out[n] = chunk
    return out


# ---------------------------------------------------------------------------------------------------------------
# Delimited detail records, vectorised
# ---------------------------------------------------------------------------------------------------------------

# CONTROL_CHARS as a class body, plus U+FEFF (Arrow's CSV reader drops a BOM at the start of its input).
_NOT_PLAIN = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{feff}"
_JOIN_LIMIT = 50  # a quoted field may run over at most this many physical lines
# A file's records are parsed, validated and written a piece of about this many bytes at a time, so a big dump's
# Arrow columns and validation copies are held for one piece, not for the whole file (see `_pieces`).
PIECE_BYTES = 1 << 27
# An internal dump larger than this is read from disk a segment at a time (`_internal_segments`): landing never
# holds the whole of the largest file of a day in memory.
SEGMENT_BYTES = 4 * PIECE_BYTES


_CTRL_CHARS = "".join(map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])) + "\ufeff"
_RE2_SPACE = "\t\n\f\r "
_CATEGORIES = {
    _sre.CATEGORY_DIGIT: str.isdigit,
    _sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    _sre.CATEGORY_SPACE: lambda c: c in _RE2_SPACE,  # what the scan's engine means by \s, not Python's re
    _sre.CATEGORY_NOT_SPACE: lambda c: c not in _RE2_SPACE,
    _sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    _sre.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
}


def _atom_matches(op, av, ch: str) -> bool:
    """Whether a one-character regex atom may match `ch` (True when unsure)."""
    if op is _sre.LITERAL:
        return av == ord(ch)
    if op is _sre.NOT_LITERAL:
        return av != ord(ch)
    if op is not _sre.IN:
        return True
    negate, hit = False, False
    for o, a in av:
        if o is _sre.NEGATE:
            negate = True
        elif o is _sre.LITERAL:
            hit |= a == ord(ch)
        elif o is _sre.RANGE:
            hit |= a[0] <= ord(ch) <= a[1]
        else:
            hit |= _CATEGORIES.get(a, lambda c: True)(ch) if o is _sre.CATEGORY else True
    return hit != negate


def _atoms(items) -> Iterable[tuple]:
    """The one-character atoms of a parsed regex; ValueError on anything this analysis does not know."""
    for op, av in items:
        if op in (_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN):
            yield op, av
        elif op is _sre.SUBPATTERN:
            yield from _atoms(av[3])
        elif op is _sre.BRANCH:
            for branch in av[1]:
                yield from _atoms(branch)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            yield from _atoms(av[2])
        elif op is not _sre.AT:
            raise ValueError(op)


def _digit_only(items) -> bool:
    """Every atom matches ASCII digits only (RE2's \\d is [0-9])."""
    def only(op, av) -> bool:
        if op is _sre.LITERAL:
            return 48 <= av <= 57
        return op is _sre.IN and all(
            (o is _sre.LITERAL and 48 <= a <= 57) or (o is _sre.RANGE and 48 <= a[0] and a[1] <= 57)
            or (o is _sre.CATEGORY and a is _sre.CATEGORY_DIGIT) for o, a in av)
    return all(only(op, av) for op, av in _atoms(items))


def _longest_digit_run(items, run: int = 0) -> tuple[int, int]:
    """An upper bound of the longest run of consecutive digits the regex can produce, and of the run still open at
    its end (given `run` digits before it). 10**9 stands for unbounded."""
    best = run
    for op, av in items:
        if op in (_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN):
            run = run + 1 if any(_atom_matches(op, av, d) for d in "0123456789") else 0
        elif op is _sre.SUBPATTERN:
            inner, run = _longest_digit_run(av[3], run)
            best = max(best, inner)
        elif op is _sre.BRANCH:
            ends = [_longest_digit_run(b, run) for b in av[1]]
            best, run = max([best] + [e[0] for e in ends]), max(e[1] for e in ends)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            lo, hi, sub = av
            if hi > 100:
                if any(_atom_matches(o, a, "0") for o, a in _atoms(sub)):
                    return 10**9, 10**9
                hi = 1  # digit-free: one pass shows it ends any run
            for _ in range(hi):
                inner, run = _longest_digit_run(sub, run)
                best = max(best, inner)
        elif op is not _sre.AT:
            return 10**9, 10**9
        best = max(best, run)
    return best, run


def _pan_safe(items) -> bool:
    """No text this regex matches holds a PAN-like run (13-19 digits between non-digits)."""
    items = [x for x in items if x[0] is not _sre.AT]
    if len(items) == 1:
        op, av = items[0]
        if op is _sre.SUBPATTERN:
            return _pan_safe(av[3])
        if op is _sre.BRANCH:
            return all(_pan_safe(b) for b in av[1])
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            lo, hi, sub = av
            if lo >= 20 and _digit_only(sub):
                return True
            if (lo, hi) == (0, 1):
                return _pan_safe(sub)
    return _longest_digit_run(items)[0] <= 12


def _top_level_alternatives(pattern: str) -> list[str]:
    parts, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]" or pattern[i - 1] in "[^"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    return parts + [pattern[start:]]


def _embeddable(pattern: str | None, forbidden: str, pan_free: bool) -> str | None:
    """A registry pattern `^A$|^B$...` as an anchor-free regex `(?:A|B...)` that can sit inside a line regex, or
    None when it cannot: it may match a character that would change how the line splits (`forbidden`), or (with
    `pan_free`) a PAN-like digit run, or it uses anything this analysis does not know."""
    if not pattern:
        return None
    bodies = []
    for alt in _top_level_alternatives(pattern):
        if not (alt.startswith("^") and alt.endswith("$") and not alt.endswith("\\$")):
            return None
        bodies.append(alt[1:-1])
    body = "(?:" + "|".join(bodies) + ")"
    try:
        tree = _sre_parse.parse(body)
        if any(op is _sre.AT for op, _ in _walk(tree)):
            return None
        if any(_atom_matches(op, av, ch) for op, av in _atoms(tree) for ch in forbidden):
            return None
        if pan_free and not _pan_safe(tree):
            return None
    except (ValueError, re.error):
        return None
    return body


def _walk(items) -> Iterable[tuple]:
    for op, av in items:
        yield op, av
        if op is _sre.SUBPATTERN:
            yield from _walk(av[3])
        elif op is _sre.BRANCH:
            for branch in av[1]:
                yield from _walk(branch)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            yield from _walk(av[2])


def _plain_record_regex(n: int, delim: str, quoted: bool, backtick: bool, pan_free: bool = False,
                        patterns: list[str | None] | None = None, strip: str = "",
                        unmasked: frozenset[int] = frozenset()) -> tuple[str, set[int]]:
    """Lines whose record is plain: exactly n fields, no line break or control character inside, RFC 4180 quoting
    (quoted formats) or none at all. For such a line Arrow's CSV reader and the format's record rule agree.
    (Quoted formats with n == 1 also need the line not to be empty: csv reads an empty line as no fields.)

    With `pan_free`, also no run of 13-19 digits (between non-digits) anywhere in the line. With `patterns` (per
    field), each field whose pattern can be embedded (see `_embeddable`) must also match it, after the format's
    `strip`. Fields at the `unmasked` positions (date/time columns, never PAN-masked) may hold a long digit run when
    their pattern says so (a 14-digit timestamp). Returns the regex and the positions of the fields it checks that
    way: one scan for all of it."""
    d = re.escape(delim)
    bare = "[^" + d + r"\r\n" + _NOT_PLAIN + "]"  # a character of an unquoted field
    inner = r'(?:[^"\r\n' + _NOT_PLAIN + r']|"")'  # a character of a quoted field's text
    if quoted:
        bare = '[^"' + bare[2:]
    forbidden = _CTRL_CHARS + "\r\n" + delim + ('"' if quoted else "") + strip

    def text(atom: str) -> str:  # any run of `atom`s; with pan_free, its digit runs are 1-12 or 20+ long
        if not pan_free:
            return atom + "*"
        atom = atom.replace("[^", "[^0-9", 1)
        run = "(?:[0-9]{1,12}|[0-9]{20,})"
        return f"{atom}*(?:{run}{atom}+)*{run}?"

    fields, checked = [], set()
    for i in range(n):
        body = _embeddable((patterns or [None] * n)[i], forbidden, pan_free and i not in unmasked)
        if body is not None:
            checked.add(i)
            if strip:
                pad = "[" + re.escape(strip) + "]*"
                body = pad + body + pad
            field = f'(?:{body}|"{body}")' if quoted else body
        elif quoted:
            field = f'(?:{text(bare)}|"{text(inner)}")'
        else:
            field = text(bare)
        fields.append(("`" if backtick else "") + field)
    return "^" + d.join(fields) + r"\r?\n$", checked


@dataclasses.dataclass
class _Records:
    fields: list[pa.Array | pa.ChunkedArray]  # by position in the record
    line_no: np.ndarray
    line_span: np.ndarray
    raw: pa.Array | pa.ChunkedArray
    pre: list[tuple[int, int, str, str, str]]
    no_ctrl: np.ndarray
    pan_free: np.ndarray
    valid: np.ndarray  # per record: the `checked` fields are known to match their patterns
    checked: set[int]


def _records(lines: Lines, a: int, b: int, n: int, split: Callable[[str], list[str] | tuple[str, str]], *,
             delim: str = ",", quoted: bool = True, backtick: bool = False, strip: str = "",
             patterns: list[str | None] | None = None, unmasked: frozenset[int] = frozenset(),
             line_base: int = 0) -> _Records:
    """The records of lines[a:b], each `n` fields of text (line numbers count from 1, after `line_base` lines that
    came before `lines`: a later segment of a file).

    `split(text)` is the format's rule for one record's text: its fields (backtick and `strip` already removed) or
    (reason_code, detail) when it is refused. Plain lines are cut by Arrow's CSV reader instead, with the same result;
    `split` only sees the rest. In quoted formats an odd number of quotes starts a record that runs over the following
    lines until its quotes balance (at most `_JOIN_LIMIT` lines), joined with LF. `patterns` (per field, optional)
    are checked in the same scan where they can be (see `_plain_record_regex`, also for `unmasked`).
    """
    block = lines.arr.slice(a, b - a)
    nb = len(block)
    # One scan finds the plain lines without PAN-like digit runs (a field is a piece of its line between delimiters,
    # never digits: such a line has no field with one) whose checkable fields are valid; a second looks at the rest
    # for plain structure only.
    rx, checked = _plain_record_regex(n, delim, quoted, backtick, True, patterns, strip, unmasked)
    valid = _np(pc.match_substring_regex(block, rx))
    plain = valid.copy()
    if not valid.all():
        rest = np.flatnonzero(~valid)
        plain[rest] = _np(pc.match_substring_regex(block.take(pa.array(rest)),
                                                   _plain_record_regex(n, delim, quoted, backtick)[0]))
    if quoted and n == 1:
        plain &= lines.byte_lengths()[a:b] > 0
    starts = np.ones(nb, bool)  # the line begins a record
    spans: dict[int, int] = {}
    if quoted and not plain.all():
        other = np.flatnonzero(~plain)  # plain lines hold an even number of quotes
        odd = dict(zip(other.tolist(), (_np(pc.count_substring(block.take(pa.array(other)), '"')) % 2).tolist(),
                       strict=True))
        done = 0
        for s in (i for i, v in odd.items() if v):
            if s < done:
                continue  # inside the record an earlier line opened
            pos, parity = s + 1, 1
            while parity and pos < nb and pos - s < _JOIN_LIMIT:
                parity ^= odd.get(pos, 0)
                pos += 1
            if pos - s > 1:
                spans[s] = pos - s
                starts[s + 1:pos] = False
            done = pos
    fast = plain & starts
    n_fast = int(fast.sum())

    # The rest, one record at a time, by the format's own rule.
    pre, slow_rows, slow_idx, slow_raw = [], [], [], []
    for i in np.flatnonzero(starts & ~fast).tolist():
        span = spans.get(i, 1)
        text = "\n".join(lines[a + j] for j in range(i, i + span))
        got = split(text)
        if isinstance(got, tuple):
            pre.append((line_base + a + i + 1, span, got[0], got[1], text))
        else:
            slow_rows.append(got)
            slow_idx.append(i)
            slow_raw.append(_with_eol(text))

    fields: list = []
    if n_fast:
        data = lines.block(a, b) if n_fast == nb else _values_buffer(block.filter(pa.array(fast)))
        fields = _read_plain(data, n, delim, quoted, backtick)
        if strip:
            fields = [pc.utf8_trim(f, strip) for f in fields]
    fast_idx = np.flatnonzero(fast)
    raw = block if n_fast == nb else block.filter(pa.array(fast))
    line_no = fast_idx + (line_base + a + 1)
    span = np.ones(n_fast, np.int64)
    no_ctrl = np.ones(n_fast, bool)
    valid = valid[fast_idx]
    if slow_rows:  # merge in line order
        s_idx = np.asarray(slow_idx, np.int64)
        order = np.argsort(np.concatenate([fast_idx, s_idx]), kind="stable")
        take = pa.array(order)
        slow_fields = [pa.array([r[j] for r in slow_rows], type=pa.string()) for j in range(n)]
        fields = [_concat([f, s], pa.string()).take(take) for f, s in zip(fields, slow_fields, strict=True)] \
            if n_fast else slow_fields
        raw = _concat([raw, pa.array(slow_raw, type=pa.large_string())], pa.large_string()).take(take)
        line_no = np.concatenate([line_no, s_idx + (line_base + a + 1)])[order]
        span = np.concatenate([span, [spans.get(i, 1) for i in slow_idx]]).astype(np.int64)[order]
        no_ctrl = np.concatenate([no_ctrl, np.zeros(len(slow_idx), bool)])[order]
        valid = np.concatenate([valid, np.zeros(len(slow_idx), bool)])[order]
    if not fields:
        fields = [pa.array([], type=pa.string()) for _ in range(n)]
    return _Records(fields, line_no.astype(np.int64), span, raw, pre, no_ctrl, valid, valid, checked)


def _cuts(lines: Lines, a: int, b: int, quoted: bool) -> list[tuple[int, int]]:
    """lines[a:b] as consecutive runs of about `PIECE_BYTES`, never cutting a record. In quoted formats a line with
    an odd number of quotes may open a record that `_records` joins with up to `_JOIN_LIMIT - 1` following lines, so a
    cut goes only where the `_JOIN_LIMIT` lines before it hold no such line: then no joined record crosses it, and the
    pieces parse exactly as the whole would."""
    cuts = [a]
    while True:
        lo = cuts[-1]
        at = max(int(np.searchsorted(lines.offsets, lines.offsets[lo] + PIECE_BYTES)), lo + 1)
        while quoted and at < b and _odd_quotes(lines, max(lo, at - _JOIN_LIMIT), at):
            at += _JOIN_LIMIT
        if at >= b:
            return list(zip(cuts, [*cuts[1:], b], strict=True))
        cuts.append(at)


def _odd_quotes(lines: Lines, a: int, b: int) -> bool:
    """Does any of lines[a:b] hold an odd number of double quotes?"""
    return bool((_np(pc.count_substring(lines.arr.slice(a, b - a), '"')) % 2).any())


def _safe_end(lines: Lines, a: int, b: int) -> int:
    """Where lines[a:b] may end without splitting a record, by `_cuts`' rule stepping back from `b`: the first of
    b, b - `_JOIN_LIMIT`, b - 2 `_JOIN_LIMIT`, ... above `a` whose `_JOIN_LIMIT` lines before it hold no odd number of
    quotes; `a` if none does. The quotes are counted once, not once per step."""
    if not _odd_quotes(lines, max(a, b - _JOIN_LIMIT), b):
        return b
    odd = np.flatnonzero(_np(pc.count_substring(lines.arr.slice(a, b - a), '"')) % 2) + a
    ends = np.arange(b, a, -_JOIN_LIMIT)
    clear = np.searchsorted(odd, ends) == np.searchsorted(odd, np.maximum(ends - _JOIN_LIMIT, a))
    return int(ends[clear.argmax()]) if clear.any() else a


def _pieces(fmt: Format, merchant_key: str, bill_date: dt.date, total: int, other: int, idx: dict[str, int],
            controls: dict[str, int | None], lines: Lines, a: int, b: int, n: int,
            split: Callable[[str], list[str] | tuple[str, str]], **kw) -> Iterator[Parsed]:
    """The records of lines[a:b] (`_records` with the format's rules and `kw`), one `Parsed` per piece of about
    `PIECE_BYTES`: the caller validates and writes each before the next is parsed. Always at least one piece."""
    for i, (lo, hi) in enumerate(_cuts(lines, a, b, kw.get("quoted", True))):
        r = _records(lines, lo, hi, n, split, **kw, **_rules(fmt, idx, n))
        yield _parsed(fmt, merchant_key, bill_date, total if i == 0 else 0, other if i == 0 else 0, idx, r,
                      controls if i == 0 else {})


def _concat(parts: list, kind: pa.DataType) -> pa.ChunkedArray:
    chunks = [c for p in parts for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])]
    return pa.chunked_array([c.cast(kind) for c in chunks], type=kind)


def _values_buffer(arr: pa.Array) -> pa.Buffer:
    """The contiguous bytes behind a (freshly filtered) binary/string array."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    return arr.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _read_plain(data: pa.Buffer, n: int, delim: str, quoted: bool, backtick: bool) -> list[pa.ChunkedArray]:
    """Plain lines -> n text columns: Arrow's CSV reader, pinned dialect, explicit columns, no type inference."""
    if backtick:  # every field starts with a backtick and holds no delimiter: drop the ones after delimiters
        data = pa.py_buffer(data.to_pybytes().replace(f"{delim}`".encode(), delim.encode()))
    names = [f"f{i}" for i in range(n)]
    table = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 22),
        parse_options=pacsv.ParseOptions(delimiter=delim, quote_char='"' if quoted else False, double_quote=True,
                                         escape_char=False, newlines_in_values=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), check_utf8=False,
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    cols = [table.column(i) for i in range(n)]
    if backtick:
        cols[0] = pc.utf8_slice_codeunits(cols[0], 1)
    return cols


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


def _columns(fmt: Format, idx: dict[str, int], fields: list, n_rows: int) -> dict[str, pa.Array | pa.ChunkedArray]:
    return {c.name: (fields[idx[c.name]] if c.name in idx else pa.nulls(n_rows, pa.string())) for c in fmt.columns}


def _parsed(fmt: Format, merchant_key: str, bill_date: dt.date, total: int, other: int, idx: dict[str, int],
            r: _Records, controls: dict[str, int | None]) -> Parsed:
    return Parsed(fmt, merchant_key, bill_date, total, other, _columns(fmt, idx, r.fields, len(r.line_no)), r.line_no,
                  r.line_span, r.raw, r.pre, controls, no_ctrl=r.no_ctrl, pan_free=r.pan_free, valid_rows=r.valid,
                  valid_columns=frozenset(c for c, i in idx.items() if i in r.checked))


def _rules(fmt: Format, idx: dict[str, int], n: int) -> dict:
    """`_records` arguments: each field's pattern by its position in the record (a date/time must also exist), and
    the positions of the date/time fields, which are never PAN-masked."""
    by_pos: list[str | None] = [None] * n
    for c in fmt.columns:
        if c.name in idx:
            by_pos[idx[c.name]] = c.real_pattern
    return {"patterns": by_pos, "unmasked": frozenset(idx[c.name] for c in fmt.columns if c.calendar and c.name in idx)}


def _csv_split(n_fields: int, strip: str = "") -> Callable[[str], list[str] | tuple[str, str]]:
    """RFC 4180 (Python's csv, strict) for one record's text; refused unless it has exactly n_fields fields."""

    def split(text: str) -> list[str] | tuple[str, str]:
        try:
            fields = next(csv.reader([text], strict=True))
        except csv.Error:
            fields = None
        if fields is not None and strip:
            fields = [f.strip(strip) for f in fields]
        if fields is None or len(fields) != n_fields:
            if len(text) > MAX_LINE_CHARS:  # e.g. csv's own field size limit refused it: say why
                return "line_too_long", f"over {MAX_LINE_CHARS} characters"
            return "field_count", f"not a {n_fields}-field CSV record"
        return fields

    return split


def parse_wechat(data: bytes, name: str) -> Iterable[Parsed]:
    m = re.search(r"wechat_(\d{8,10})_(\d{8})_(ALL|SUCCESS|REFUND)", name)
    lines = _text(data, "utf-8", name)
    if _lstripped_head(lines).startswith("<xml>"):
        if b"No Bill Exist" in data or b"NO_STATEMENT_EXIST" in data:
            if not m:
                raise Rejected(f"{name}: WeChat 'No Bill Exist' body, but the file name does not say merchant/date")
            return [Parsed(WECHAT_TRADE, m.group(1), _ymd(m.group(2), name), len(lines), len(lines), {},
                           np.zeros(0, np.int64), np.zeros(0, np.int64), pa.array([], pa.large_string()), [],
                           {"ctl_row_count": 0}, is_empty_day=True)]
        raise Rejected(f"{name} line 1: WeChat returned an error body instead of a bill")
    if m is None:
        raise Rejected(f"{name}: a WeChat bill must be named wechat_<mch_id>_<yyyymmdd>_<ALL|SUCCESS|REFUND>")
    header = lines[0].split(",")
    idx = _header_index(WECHAT_TRADE, header, name, 1)
    summary_at = lines.first("总交易单数")
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
        "ctl_fee_fen": _yuan_to_fen(summ.get("手续费总金额", ""), name, "手续费总金额"),
    }
    n = len(header)

    def split(text: str) -> list[str] | tuple[str, str]:
        cells = text.split(",")
        if len(cells) != n:
            return "field_count", f"{len(cells)} fields, header has {n}"
        if not all(c.startswith("`") for c in cells):
            return "missing_backtick", f"column {header[next(j for j, c in enumerate(cells) if not c.startswith('`'))]}"
        return [c[1:] for c in cells]

    return _pieces(WECHAT_TRADE, m.group(1), _ymd(m.group(2), name), len(lines), len(lines) - max(summary_at - 1, 0),
                   idx, controls, lines, 1, max(summary_at, 1), n, split, quoted=False, backtick=True)


def _lstripped_head(lines: Lines) -> str:
    """The text with leading whitespace removed, as far as needed to see how it starts."""
    head = lines.buf.slice(0, min(lines.buf.size, 4096)).to_pybytes().decode("utf-8", errors="ignore").lstrip()
    if head or lines.buf.size <= 4096:
        return head
    return lines.buf.to_pybytes().decode("utf-8").lstrip()[:4096]


def parse_alipay(data: bytes, name: str) -> Iterable[Parsed]:
    members = _safe_zip_members(data, name, gbk_names=True)
    detail_name = next((k for k in members if k.endswith("_业务明细.csv")), None)
    summary_name = next((k for k in members if k.endswith("_业务明细(汇总).csv")), None)
    if detail_name is None:
        raise Rejected(f"{name}: no member ending _业务明细.csv in the Alipay zip (members: {sorted(members)})")
    lines = _text(members[detail_name], "gbk", f"{name}!{detail_name}")
    is_comment = lines.starts_with("#")
    comments = [lines[int(i)] for i in np.flatnonzero(is_comment)]
    acct_at, start_at = lines.first("#账号"), lines.first("#起始日期")
    acct = re.search(r"\[(\d{16})0156\]", lines[acct_at]) if acct_at is not None else None
    start = re.search(r"(\d{4})年(\d{2})月(\d{2})日", lines[start_at]) if start_at is not None else None
    if not acct or not start:
        raise Rejected(f"{name}: the #账号 / #起始日期 comment lines are missing or malformed")
    # The header must describe the file that was asked for (bad input #7): account and day from the file name.
    where, want = f"{name}!{detail_name}", re.match(r"(\d{16})0156_(\d{8})", os.path.basename(name))
    if acct.group(1) != want.group(1):
        raise Rejected(f"{where} line {acct_at + 1}: #账号 [{acct.group(1)}0156] does not match the file name's "
                       f"account {want.group(1)}0156")
    bill_date, name_date = _ymd("".join(start.groups()), where), _ymd(want.group(2), name)
    if bill_date != name_date:
        raise Rejected(f"{where} line {start_at + 1}: #起始日期 {bill_date} does not match the file name's bill date "
                       f"{name_date}")
    if not any(c.startswith("#交易合计") for c in comments):
        raise Rejected(f"{name}: no #交易合计 footer (truncated file?)")
    head_at = next(iter(np.flatnonzero(~is_comment).tolist()), None)
    if head_at is None:
        raise Rejected(f"{name}!{detail_name}: only # comment lines, no header line (truncated file?)")
    header = [h.strip("\t ") for h in next(csv.reader([lines[head_at]]))]
    idx = _header_index(ALIPAY_TRADE, header, name, head_at + 1)
    after = np.flatnonzero(is_comment[head_at + 1:])
    end_at = head_at + 1 + int(after[0]) if len(after) else len(lines)
    if not is_comment[end_at:].all():
        raise Rejected(f"{name}: detail lines after the #…明细列表结束 footer")
    controls: dict[str, int | None] = {}
    for c in comments:
        if mt := re.match(r"#交易合计：(\d+)笔，商家实收共(-?[\d.]+)元", c):
            controls["ctl_row_count"] = int(mt.group(1))
            controls["ctl_payment_fen"] = _yuan_to_fen(mt.group(2), name, "#交易合计")
        if mt := re.match(r"#退款合计：(\d+)笔，商家实收退款共(-?[\d.]+)元", c):
            controls["ctl_row_count"] = controls.get("ctl_row_count", 0) + int(mt.group(1))
            controls["ctl_refund_fen"] = _yuan_to_fen(mt.group(2), name, "#退款合计")
    other = len(lines) - (end_at - head_at - 1)  # every line between header and footer is a record's (or refused)
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
    return _pieces(ALIPAY_TRADE, acct.group(1), bill_date, total, other, idx, controls, lines, head_at + 1, end_at,
                   len(header), _csv_split(len(header), "\t "), strip="\t ")


def parse_unionpay(data: bytes, name: str) -> Iterable[Parsed]:
    members = _safe_zip_members(data, name, gbk_names=False)
    zm = [k for k in members if re.fullmatch(r"INN(\d{6})88ZM_(\d{15})(\.txt)?", k)]
    if len(zm) != 1:
        raise Rejected(f"{name}: expected one INN<yymmdd>88ZM_<merId> member, found {sorted(members)}")
    mt = re.fullmatch(r"INN(\d{6})88ZM_(\d{15})(\.txt)?", zm[0])
    bill_date = _ymd("20" + mt.group(1), f"{name}!{zm[0]}")
    want = re.match(r"(\d{15})_(\d{8})", os.path.basename(name))
    name_date = _ymd(want.group(2), name)
    if mt.group(2) != want.group(1) or bill_date != name_date:  # the member must be the file asked for (#7)
        raise Rejected(f"{name}: member {zm[0]} is for merchant {mt.group(2)} on {bill_date}, the file name says "
                       f"merchant {want.group(1)} on {name_date}")
    lines = Lines(members[zm[0]], binary=True)  # fixed width counts GBK bytes: cut before decoding
    sizes = lines.byte_lengths()
    pre = [(int(i) + 1, 1, "line_length", f"{sizes[i]} bytes, expected {UNIONPAY_ZM_LINE_BYTES}",
            lines[int(i)].decode("gbk", errors="backslashreplace"))
           for i in np.flatnonzero(sizes != UNIONPAY_ZM_LINE_BYTES)]
    good = sizes == UNIONPAY_ZM_LINE_BYTES
    good_idx = np.flatnonzero(good)
    good_lines = lines.arr if good.all() else lines.arr.filter(pa.array(good))
    ascii_ = ~_np(pc.match_substring_regex(good_lines, r"[^\x20-\x7e\r\n]"))  # printable ASCII (or a CR)

    def cut(field: tuple) -> pa.Array:
        fname, off, width, _ = field
        sliced = pc.binary_slice(good_lines, off, off + width)
        try:
            txt = sliced.cast(pa.large_string())
        except pa.ArrowInvalid:  # a non-ASCII (GBK) field: decode it by bytes, as the SDK does
            txt = pa.array([_gbk_field(v, name, int(good_idx[j]) + 1, fname) for j, v in enumerate(sliced.to_pylist())],
                           type=pa.large_string())
        return pc.utf8_trim_whitespace(txt).cast(pa.string())

    columns = dict(zip((f[0] for f in UNIONPAY_ZM_FIELDS), _pool().map(cut, UNIONPAY_ZM_FIELDS), strict=True))
    if ascii_.all():  # printable ASCII: GBK and UTF-8 agree byte for byte
        raws = good_lines.cast(pa.large_string())
    else:
        plain = np.flatnonzero(ascii_)
        other = np.flatnonzero(~ascii_)
        parts = [good_lines.take(pa.array(plain)).cast(pa.large_string()),
                 pa.array([_with_eol(lines[int(good_idx[i])].decode("gbk", errors="backslashreplace")) for i in other],
                          type=pa.large_string())]
        raws = pa.chunked_array(parts).take(pa.array(np.argsort(np.concatenate([plain, other]), kind="stable")))
    # ZME (error/adjustment) rows are not parsed yet: they are quarantined, never silently ignored.
    zme = [k for k in members if re.fullmatch(r"INN\d{6}88ZME_\d{15}(\.txt)?", k)]
    total = len(lines)
    for k in zme:
        for j, b in enumerate(ln for ln in members[k].split(b"\r\n") if ln):
            total += 1
            pre.append((len(lines) + j + 1, 1, "unsupported_record", f"{k}: ZME adjustment rows are not staged",
                        b.decode("gbk", errors="backslashreplace")))
    # one piece: fixed-width lines are cut column-wise without per-record work, and come zipped (members in memory)
    return [Parsed(UNIONPAY_ZM, mt.group(2), bill_date, total, 0, columns, good_idx + 1,
                   np.ones(len(good_idx), np.int64), raws, pre, {}, no_ctrl=ascii_)]


def _gbk_field(b: bytes, name: str, line_no: int, column: str) -> str:
    try:
        return b.decode("gbk")
    except UnicodeDecodeError as e:
        raise Rejected(f"{name} line {line_no} column {column}: bytes are not valid gbk ({e.reason}); "
                       "wrong encoding?") from None


def parse_payout_result(data: bytes, name: str) -> Iterable[Parsed]:
    lines = _text(data, "gbk", name)
    if not len(lines) or not lines[0].startswith("H|"):
        raise Rejected(f"{name} line 1: a payout result file starts with an H| batch header")
    h = lines[0].split("|")
    if len(h) != 9 or not all(x.isdigit() for x in h[2:]):
        raise Rejected(f"{name} line 1: malformed batch header {lines[0]!r}")
    m = re.search(r"PAYOUT_([A-Za-z0-9]+)_([A-Za-z0-9]+)_(\d{8})_RESULT", name)
    if (h[1], h[2]) != (m.group(2), m.group(3)):
        raise Rejected(f"{name} line 1: header batch {h[1]} date {h[2]} does not match the file name's batch "
                       f"{m.group(2)} date {m.group(3)}")
    if len(lines) - 1 != int(h[3]):
        raise Rejected(f"{name}: the H| header announces {int(h[3])} records, the file has {len(lines) - 1} "
                       "record lines (truncated file?)")
    merchant = f"{m.group(1)}/{h[1]}"
    n = len(BANK_PAYOUT_RESULT.columns)

    def split(text: str) -> list[str] | tuple[str, str]:
        cells = text.split("|")
        return cells if len(cells) == n else ("field_count", f"{len(cells)} fields, expected {n}")

    idx = {c.name: i for i, c in enumerate(BANK_PAYOUT_RESULT.columns)}
    controls = {"ctl_row_count": int(h[3]), "ctl_payment_fen": int(h[4])}
    return _pieces(BANK_PAYOUT_RESULT, merchant, _ymd(h[2], name), len(lines), 1, idx, controls, lines, 1, len(lines),
                   n, split, delim="|", quoted=False)


def parse_bank_statement(data: bytes, name: str) -> Iterable[Parsed]:
    lines = _text(data, "gbk", name)
    if len(lines) < 3 or not lines[0].startswith("账号:"):
        raise Rejected(f"{name} line 1: a bank statement starts with the 账号: block")
    want = re.fullmatch(r"bank_statement_(\d+)_(\d{8})\.csv", os.path.basename(name))
    if want is None:
        raise Rejected(f"{name}: a bank statement must be named bank_statement_<account>_<yyyymmdd>.csv")
    acct = (lines[0].split(",") + [""])[1].strip()
    if acct != want.group(1):  # the header must describe the file that was asked for (bad input #7)
        raise Rejected(f"{name} line 1: 账号 {acct!r} does not match the file name's account {want.group(1)!r}")
    dm = re.match(r"起始日期:,(\d{4}-\d{2}-\d{2}),终止日期:,(\d{4}-\d{2}-\d{2})", lines[1])
    if not dm or dm.group(1) != dm.group(2):
        raise Rejected(f"{name} line 2: expected a one-day 起始日期/终止日期 range")
    bill_date, name_date = _ymd(dm.group(1).replace("-", ""), name), _ymd(want.group(2), name)
    if bill_date != name_date:
        raise Rejected(f"{name} line 2: 起始日期 {bill_date} does not match the file name's bill date {name_date}")
    header = next(csv.reader([lines[2]]))
    idx = _header_index(BANK_STATEMENT, header, name, 3)
    total_at = lines.first("合计", 3)
    if total_at is None:
        raise Rejected(f"{name}: no 合计 totals row at the end (truncated file?)")
    if total_at != len(lines) - 1:
        raise Rejected(f"{name} line {total_at + 2}: content after the 合计 row")
    tot = next(csv.reader([lines[total_at]]))
    if len(tot) != len(header):
        raise Rejected(f"{name} line {total_at + 1}: the 合计 row has {len(tot)} fields, the header {len(header)}")
    controls = {
        "ctl_row_count": None,
        "ctl_debit_fen": _yuan_to_fen(tot[idx["debit_amount"]], name, "合计 借方"),
        "ctl_credit_fen": _yuan_to_fen(tot[idx["credit_amount"]], name, "合计 贷方"),
    }
    return _pieces(BANK_STATEMENT, acct, bill_date, len(lines), 4, idx, controls, lines, 3, total_at, len(header),
                   _csv_split(len(header)))


def _internal_bill_date(fmt: Format, name: str) -> dt.date:
    m = re.search(rf"internal_{fmt.bill_type}_(\d{{8}})\.csv", name)
    if not m:
        raise Rejected(f"{name}: internal dumps are named internal_{fmt.bill_type}_<yyyymmdd>.csv")
    return _ymd(m.group(1), name)


def _parse_internal(fmt: Format):
    def parse(data: bytes, name: str) -> Iterable[Parsed]:
        lines = _text(data, "utf-8", name)
        bill_date = _internal_bill_date(fmt, name)
        if not len(lines):
            raise Rejected(f"{name}: empty file, not even a header (an empty dump still has its header)")
        header = next(csv.reader([lines[0]]))
        idx = _header_index(fmt, header, name, 1)
        return _pieces(fmt, "", bill_date, len(lines), 1, idx, {}, lines, 1, len(lines), len(header),
                       _csv_split(len(header)))

    parse.fmt = fmt  # `_parse` reads a dump larger than SEGMENT_BYTES with `_internal_segments` instead
    return parse


def _internal_segments(fmt: Format, path: Path, name: str) -> Iterator[Parsed]:
    """An internal dump read from disk a segment of about `SEGMENT_BYTES` at a time, parsed as `_parse_internal`
    parses it whole: the same records, line numbers and counts, so landing holds a segment of it, not the file.
    A segment ends at a line end, and where a quoted field might still run on (`_cuts`' rule: an odd number of quotes
    in the last `_JOIN_LIMIT` lines) the lines from there wait for the next segment, so no record is split."""
    bill_date = _internal_bill_date(fmt, name)
    idx: dict[str, int] = {}
    n = base = 0  # fields per record; lines of the file before this segment
    carry = b""
    with path.open("rb") as f:
        while True:
            buf = data = lines = None  # the last segment's rows may still point into its buffer: a new one
            # a carry with nowhere safe to end (a line longer than a segment, stray quotes throughout) doubles the
            # next read, so such a file is read and scanned a bounded number of times, not once per segment; never
            # more than what is left (+1, so that reading it all says so)
            held = len(carry)
            want = min(max(SEGMENT_BYTES, held), os.fstat(f.fileno()).st_size - f.tell() + 1)
            buf = bytearray(held + want)
            buf[:held] = carry
            carry = b""  # copied: not held twice
            got = f.readinto(memoryview(buf)[held:])
            eof = got < want
            data = memoryview(buf)[:held + got]
            if eof and not data:
                return  # the file ended exactly where the last segment did
            cut = len(data) if eof else buf.rfind(b"\n", 0, len(data)) + 1
            if cut == 0:  # not one line end yet: read on with all of it
                carry = bytes(data)
                continue
            lines = _text(data[:cut], "utf-8", name, first_line=base + 1)
            a = 0
            if base == 0:
                header = next(csv.reader([lines[0]]))
                idx, n, a = _header_index(fmt, header, name, 1), len(header), 1
            b = len(lines)
            if not eof:
                b = _safe_end(lines, a, b)
                if b <= a:  # nowhere safe to end this segment: read on with all of it
                    carry = bytes(data)
                    continue
            carry = bytes(lines.block(b, len(lines))) + bytes(data[cut:])
            yield from _pieces(fmt, "", bill_date, b, 1 if base == 0 else 0, idx, {}, lines, a, b, n,
                               _csv_split(n), line_base=base)
            if eof:
                return
            base += b


def _ymd(s: str, name: str) -> dt.date:
    try:
        return dt.datetime.strptime(s, "%Y%m%d").date()
    except ValueError:
        raise Rejected(f"{name}: {s!r} is not a real date (yyyymmdd)") from None


def detect(data: bytes, name: str):
    """Pick the parser by name and content; an unknown file is rejected, never guessed."""
    base = os.path.basename(name)
    head = data[:4096]
    if not data:  # no format is empty: an empty day still has its header or the channel's 'no bill' body
        raise Rejected(f"{name}: zero-byte file (failed download?); an empty day still has a header or 'no bill' body")
    if re.fullmatch(r"wechat_\d+_\d{8}_(ALL|SUCCESS|REFUND)(\.[A-Za-z0-9]+)?\.csv", base):
        return parse_wechat  # the parser decodes strictly and checks the header, with a precise message
    if base.endswith(".csv.zip") and re.match(r"\d{16}0156_\d{8}", base) and head.startswith(b"PK"):
        return parse_alipay
    if re.fullmatch(r"\d{15}_\d{8}(\.[A-Za-z0-9]+)?\.zip", base) and head.startswith(b"PK"):
        return parse_unionpay
    if re.fullmatch(r"PAYOUT_[A-Za-z0-9]+_[A-Za-z0-9]+_\d{8}_RESULT\.txt", base) and head.startswith(b"H|"):
        return parse_payout_result
    if base.startswith("bank_statement_"):  # the parser decodes strictly and checks the 账号: block by line
        return parse_bank_statement
    for fmt in (INTERNAL_PAYMENTS, INTERNAL_REFUNDS, INTERNAL_PAYOUTS, INTERNAL_RECHARGES, INTERNAL_DISPOSITIONS):
        if re.fullmatch(rf"internal_{fmt.bill_type}_\d{{8}}\.csv", base):
            return _parse_internal(fmt)
    raise Rejected(f"{name}: unknown file format (not a format Tally knows by name and content)")


# ---------------------------------------------------------------------------------------------------------------
# Validation: strict patterns, vectorised; the first failing column per row is the quarantine reason.
# ---------------------------------------------------------------------------------------------------------------


def _hits(values: pa.Array | pa.ChunkedArray, pattern: str, rows: np.ndarray | None = None,
          negate: bool = False) -> np.ndarray:
    """Which values match (or, negated, miss) `pattern`, testing only `rows` (a mask; None: all): the others count
    as matching when negated, as not matching otherwise. A null never matches."""
    n = len(values)
    if rows is None:
        hit = _np(pc.fill_null(pc.match_substring_regex(values, pattern), False))
        return ~hit if negate else hit
    out = np.zeros(n, bool)
    where = np.flatnonzero(rows)
    if len(where):
        hit = _np(pc.fill_null(pc.match_substring_regex(values.take(pa.array(where)), pattern), False))
        out[where] = ~hit if negate else hit
    return out


def _e_free(pattern: str | None) -> bool:
    """The pattern can never match a text with an e or E in it (so such a text is not in E-notation either)."""
    if not pattern:
        return False
    try:
        return not any(_atom_matches(op, av, ch) for op, av in _atoms(_sre_parse.parse(pattern)) for ch in "eE")
    except (ValueError, re.error):
        return False


def _mask(values: pa.Array | pa.ChunkedArray, rows: np.ndarray | None, fill: str = "*") -> pa.Array | pa.ChunkedArray:
    """PAN-masked values: only `rows` (None: every row) can hold a PAN-like digit run."""
    if rows is None:
        longest = pc.max(pc.utf8_length(values)).as_py()
        return values if longest is None or longest < 13 else mask_pans_array(values, fill)  # 13 digits: 13 chars
    if not len(rows):
        return values
    sub = values.take(pa.array(rows))
    masked = mask_pans_array(sub, fill)
    if masked is sub:
        return values
    hit = np.zeros(len(values), bool)
    hit[rows] = True
    return pc.replace_with_mask(values, pa.array(hit), masked.cast(values.type))


def _raw_text(raw: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> list[str]:
    return [_strip_eol(s) for s in raw.take(pa.array(rows, type=pa.int64())).to_pylist()]


def validate(p: Parsed, name: str, gate: Gate | None = None) -> tuple[pa.Table, list[tuple[int, int, str, str, str]]]:
    """Strict checks of the parsed records: the rows to land (PAN-masked, with lineage) and the quarantine.

    A vectorised screen tests every value (Arrow regexes, two columns at a time; values the parser's line scan
    already checked are skipped): its pattern, that a date/time exists (`bad_datetime`) and that the format's window
    column falls in the bill window (`outside_bill_window`). With a `gate`, where the screen flagged a value, Great
    Expectations then validates the file's columns and judges the rows the screen flags, plus a sample of the others
    (see gx_gate.py); its verdict decides for them, the screen's word stands for the rest. A row's reason is its
    first failure: control character, line length, patterns (in column order), then dates/times and the window (in
    column order).
    """
    if not isinstance(p.raw, pa.Array | pa.ChunkedArray):  # a Parsed built by hand: raw lines as Python strings
        p = dataclasses.replace(p, raw=pa.array([_with_eol(t) for t in p.raw], type=pa.large_string()))
    n = len(p.line_no)
    cols = {k: (v if isinstance(v, pa.Array | pa.ChunkedArray) else pa.array(v, type=pa.string()))
            for k, v in p.columns.items()}
    ids = [c for c in p.fmt.columns if c.is_id and n]
    patterned = [c for c in p.fmt.columns if c.pattern and n and cols[c.name].null_count != n]
    unknown = np.ones(n, bool) if p.valid_rows is None else ~np.asarray(p.valid_rows)

    def screen(c) -> tuple[np.ndarray, np.ndarray | None]:
        """(misses the pattern, matches it but is no real date/time) for the values the line scan did not check.
        A real date/time matches the pattern: the pattern is only tested where the real pattern failed."""
        rows = unknown if c.name in p.valid_columns else None
        if not c.calendar:
            return _hits(cols[c.name], c.pattern, rows, negate=True), None
        unreal = _hits(cols[c.name], c.real_pattern, rows, negate=True)
        miss = _hits(cols[c.name], c.pattern, unreal, negate=True)
        return miss, unreal & ~miss

    # The screen: each pattern (and calendar) on the values not already checked by the parser's line scan, then
    # E-notation on ids (only where the value missed a pattern that cannot match an e).
    screened = dict(zip((c.name for c in patterned), _pool().map(screen, patterned), strict=True))
    miss = {k: v[0] for k, v in screened.items()}
    cal = {k: v[1] for k, v in screened.items() if v[1] is not None}
    sci = dict(zip((c.name for c in ids), _pool().map(
        lambda c: _hits(cols[c.name], SCI_NOTATION.pattern, miss[c.name] if c.name in miss and _e_free(c.pattern)
                        else None), ids), strict=True))
    lo, hi = _bill_window(p.bill_date) if p.bill_date else (None, None)
    win = {}
    if (wc := p.fmt.window_column) in cal and lo is not None:  # real dates/times compare as text
        fmt = next(c.calendar for c in p.fmt.columns if c.name == wc)
        v = cols[wc]
        inside = pc.and_(pc.greater_equal(v, _calendar_text(lo, fmt)), pc.less(v, _calendar_text(hi, fmt)))
        win[wc] = ~_np(pc.fill_null(pc.or_(inside, pc.equal(v, "")), True)) & ~miss[wc] & ~cal[wc]
    # GX judges what the screen flagged: a piece with nothing flagged gives it nothing to judge (the parser has
    # already refused a file that lacks a required column), so a clean day never imports GX
    if gate is not None and n and (gate.every_row or any(a.any() for s in (miss, cal, win, sci) for a in s.values())):
        _judge(p, name, cols, gate, sci, miss, cal, win)
    # Excel damage: an id column in E-notation cannot be repaired, so the file is refused (bad input #24).
    for c in ids:
        if sci[c.name].any():
            i = int(np.flatnonzero(sci[c.name])[0])
            raise Rejected(f"{name} line {p.line_no[i]} column {c.name}: id {cols[c.name][i].as_py()!r} is in "
                           "scientific notation (file re-saved by Excel?); ids cannot be recovered")
    bad = np.zeros(n, bool)
    reasons: dict[int, tuple[str, str]] = {}
    if n:
        check = np.flatnonzero(~p.no_ctrl) if p.no_ctrl is not None else np.arange(n)
        if len(check):
            sub = p.raw if len(check) == n else p.raw.take(pa.array(check))
            for i in check[_np(pc.match_substring_regex(sub, CONTROL_CHARS.pattern))].tolist():
                reasons[i] = ("control_char", "line holds NUL or control characters")
        # a line end adds at most two characters: only lines near the limit need their exact length
        near = np.flatnonzero(_np(pc.utf8_length(p.raw)) > MAX_LINE_CHARS)
        for i, text in zip(near.tolist(), _raw_text(p.raw, near), strict=True):
            if len(text) > MAX_LINE_CHARS and i not in reasons:
                reasons[i] = ("line_too_long", f"over {MAX_LINE_CHARS} characters")
        bad[list(reasons)] = True
    for c in p.fmt.columns:
        if c.name not in miss:
            continue
        fresh = np.flatnonzero(miss[c.name] & ~bad)
        if len(fresh):
            vals = cols[c.name].take(pa.array(fresh)).to_pylist()
            for i, v in zip(fresh.tolist(), vals, strict=True):
                reasons[i] = ("pattern", f"column {c.name}: {mask_pans(str(v))!r} does not match {c.pattern}")
            bad[fresh] = True
    for c in p.fmt.columns:  # like patterns, only a row's first failure is its reason
        for code, flags in (("bad_datetime", cal), ("outside_bill_window", win)):
            fresh = np.flatnonzero(flags[c.name] & ~bad) if c.name in flags else []
            if not len(fresh):
                continue
            for i, v in zip(fresh.tolist(), cols[c.name].take(pa.array(fresh)).to_pylist(), strict=True):
                reasons[i] = (code, f"column {c.name}: {v!r} is not a real date/time ({c.calendar})"
                              if code == "bad_datetime" else f"column {c.name}: {v!r} is outside [{lo:%Y-%m-%d}, "
                              f"{hi:%Y-%m-%d}) for bill date {p.bill_date}")
            bad[fresh] = True
    quarantine = list(p.pre_quarantine)
    rows = sorted(reasons)
    for i, text in zip(rows, _raw_text(p.raw, np.asarray(rows, np.int64)), strict=True):
        quarantine.append((int(p.line_no[i]), int(p.line_span[i]), *reasons[i], text))
    keep = ~bad
    if n:
        names = list(cols)
        kept = [cols[k] if not rows else cols[k].filter(pa.array(keep)) for k in names]
        suspect = None if p.pan_free is None else np.flatnonzero(~np.asarray(p.pan_free)[keep])
        dated = {c.name for c in p.fmt.columns if c.calendar}  # proven dates/times above, not card numbers
        table = pa.table(dict(zip(names, _pool().map(lambda k, v: v if k in dated else _mask(v, suspect), names, kept),
                                  strict=True)))
    else:
        table = pa.table({k: pa.array([], type=pa.string()) for k in cols}
                         or {c.name: pa.array([], pa.string()) for c in p.fmt.columns})
    table = table.append_column("line_no", pa.array(np.asarray(p.line_no, dtype=np.int64)[keep]))
    table = table.append_column("line_span", pa.array(np.asarray(p.line_span, dtype=np.int64)[keep]))
    return table, quarantine


def _bill_window(bill_date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[bill date - 366 days, bill date + 2 days), as midnights (clamped to the calendar's ends)."""
    day = dt.datetime.combine(bill_date, dt.time())
    try:
        lo = day - dt.timedelta(days=BILL_WINDOW_DAYS_BEFORE)
    except OverflowError:
        lo = dt.datetime.min
    try:
        hi = day + dt.timedelta(days=BILL_WINDOW_DAYS_AFTER)
    except OverflowError:
        hi = dt.datetime.max.replace(microsecond=0)
    return lo, hi


def _calendar_text(when: dt.datetime, fmt: str) -> str:
    """`when` as a column of strptime format `fmt` writes it (a four-digit year whatever the platform's %Y does)."""
    return when.strftime(fmt.replace("%Y", f"{when.year:04d}"))


def _judge(p: Parsed, name: str, cols: dict, gate: Gate, sci: dict[str, np.ndarray], miss: dict[str, np.ndarray],
           cal: dict[str, np.ndarray], win: dict[str, np.ndarray]) -> None:
    """Let Great Expectations decide what it judges (see gx_gate.py): updates the screen's `sci`, `miss`, `cal` and
    `win`. GX judges a date/time where its pattern holds, and the window where the date/time is also real: that is
    where those reasons apply (a row's first failure is its reason)."""
    n = len(p.line_no)
    flagged = np.zeros(n, bool)
    for screen in (miss, cal, win):
        for a in screen.values():
            flagged |= a
    rows_level = gate.every_row or bool(flagged.any())
    sci_columns = frozenset(k for k, a in sci.items() if a.any())
    for k in sci_columns:
        flagged |= sci[k]
    rows = gate.batch(n, flagged)
    take = pa.array(rows)
    present = [k for k, v in cols.items() if v.null_count < n]  # a column absent from the file is all null
    dated = {c.name for c in p.fmt.columns if c.calendar}

    def masked(k: str):
        """PAN-masked before GX sees them, with digits for the masked ones so the patterns judge as on the originals.
        A date/time that matches its pattern is not masked (neither is it in the lake): only the others can be."""
        values = cols[k].take(take)
        if k in dated:
            return _mask(values, np.flatnonzero(miss[k][rows]) if k in miss else None, "0")
        return _mask(values, None, "0")

    frame = dict(zip(present, _pool().map(masked, present), strict=True))
    wc = p.fmt.window_column
    if wc in win and wc in frame:  # GX compares the time with the bill day, as seconds from its midnight
        fmt = next(c.calendar for c in p.fmt.columns if c.name == wc)
        when = pc.strptime(frame[wc], format=fmt, unit="s", error_is_null=True)
        day = pa.scalar(dt.datetime.combine(p.bill_date, dt.time()), pa.timestamp("s"))
        frame[wc + WINDOW_SUFFIX] = pc.cast(pc.subtract(when, day), pa.int64()).cast(pa.float64())
    verdict = gate.judge(p.fmt, frame, rows, sci_columns, rows_level)
    if verdict.missing_columns:
        raise Rejected(f"{name}: the {p.fmt.name} columns {verdict.missing_columns} are missing "
                       "(Great Expectations: expect_table_columns_to_match_set)")
    judged = np.zeros(n, bool)
    judged[rows] = True

    def decide(screen: dict, decided: dict, columns, eligible=None) -> None:
        for col in columns:
            gx = np.zeros(n, bool)
            gx[decided.get(col, [])] = True
            before = screen.get(col, np.zeros(n, bool))
            where = rows if eligible is None else rows[eligible(col)[rows]]
            gate.disagreements += int((before[where] != gx[where]).sum())
            if eligible is not None:
                gx &= eligible(col)
            screen[col] = np.where(judged, gx, before)

    decide(sci, verdict.sci, set(sci) if rows_level else sci_columns)
    if rows_level:
        decide(miss, verdict.failing, set(miss) | set(verdict.failing))
        decide(cal, verdict.calendar, set(cal), lambda col: ~miss[col])
        decide(win, verdict.window, set(win), lambda col: ~miss[col] & ~cal[col]
               & _np(pc.fill_null(pc.not_equal(cols[col], ""), True)))


# ---------------------------------------------------------------------------------------------------------------
# Writing the lake
# ---------------------------------------------------------------------------------------------------------------


_PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": False}  # zstd does better on text ids
# DuckDB splits a Parquet scan across its threads by row group: a dump written as one or two row groups (a piece is
# up to PIECE_BYTES) is staged by one core. Row groups of at most its own size (122,880 rows) give every core a share.
ROW_GROUP_ROWS = 122_880


def _tmp_path(path: Path) -> Path:
    """Where `path` is written before its rename: a dot-file no source glob (*.parquet) matches."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")


def _atomic_write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, **_PARQUET_OPTIONS)
    os.replace(tmp, path)


def _raw_schema(fmt: Format) -> pa.Schema:
    return pa.schema([(c, pa.string()) for c in fmt.column_names]
                     + [("file_version_id", pa.string()), ("line_no", pa.int64()), ("line_span", pa.int64())])


# The zero-row schema file's partition sorts after every real bill date on purpose: DuckDB estimates a glob's rows
# from its first file, and a zero-row first file made it estimate 0 rows for 10M and build its hash tables on the
# lake side of every join (the 10M-trade day ran out of memory in a semi join on file_version_id).
SCHEMA_PARTITION = "bill_date=9999-12-31"


def init_lake(lake: Path) -> None:
    """Zero-row schema files so every dbt source exists before its first file lands."""
    for fmt in FORMATS.values():
        p = lake / "raw" / fmt.name / SCHEMA_PARTITION / "_schema.parquet"
        if not p.exists():
            _atomic_write_parquet(_raw_schema(fmt).empty_table(), p)
        # lakes initialised before the move kept it in the first partition
        old = lake / "raw" / fmt.name / "bill_date=1970-01-01" / "_schema.parquet"
        if old.exists():
            old.unlink()
            if not any(old.parent.iterdir()):
                old.parent.rmdir()
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


class _Claims:
    """What a landing run has taken on ahead of its workers: file versions and deliveries not yet on disk."""

    def __init__(self) -> None:
        self.versions: set[str] = set()
        self.deliveries: set[str] = set()


@dataclasses.dataclass
class _Prepared:
    """A delivery read (`_read`), then parsed and validated in memory (`_parse`); `_commit` writes it."""

    result: LandResult
    t0: float
    path: Path
    lake: Path
    row: dict | None = None  # the ledger row (None: nothing to write)
    stat: tuple[int, ...] | None = None  # the delivered file's `_identity` when hashed (None: it moved meanwhile)
    raw: _RawSink | None = None
    quarantine: tuple[pa.Table, Path] | None = None


class _RawSink:
    """A file version's raw Parquet, added a piece at a time. A file of one piece (most) stays in memory until
    `_commit` writes it; from a second piece on, the pieces go to a temp file (in row groups of at most
    `ROW_GROUP_ROWS`) that `_commit` renames, so a big dump never has all its rows in memory."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema, self.rows = path, schema, 0
        self.table: pa.Table | None = None
        self.writer: pq.ParquetWriter | None = None
        self.tmp = _tmp_path(path)

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        if self.writer is None and self.table is None:
            self.table = table
            return
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.tmp, self.schema, **_PARQUET_OPTIONS)
            self.writer.write_table(self.table, row_group_size=ROW_GROUP_ROWS)
            self.table = None
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abandon(self) -> None:
        """The file was refused after some pieces were written: nothing of it may stay."""
        self.close()
        self.tmp.unlink(missing_ok=True)

    def commit(self) -> None:
        if self.writer is None:
            _atomic_write_parquet(self.table, self.path)
        else:
            os.replace(self.tmp, self.path)


_GATE: Gate | None = None


def _gate(gate: Gate | bool | None) -> Gate | None:
    """True: the process's shared Great Expectations gate; False/None: none (the vectorised screen decides)."""
    global _GATE
    if gate is True:
        if _GATE is None:
            _GATE = Gate()
        return _GATE
    return gate or None


def land_file(path: Path, root: Path, lake: Path, gate: Gate | bool = True) -> LandResult:
    prep, todo = _read(path, root, lake)
    return _land_prepared(prep, todo, _gate(gate))


def _land_prepared(prep: _Prepared, todo: bool, gate: Gate | None) -> LandResult:
    return _commit(_parse(prep, gate) if todo else prep)


def _read(path: Path, root: Path, lake: Path, claims: _Claims | None = None) -> tuple[_Prepared, bool]:
    """Identify a delivery by its bytes' hash (read as a stream, not held); decide whether it is already landed or
    the same bytes as a landed version. Runs in file order (claims are taken here); says whether `_parse` has
    anything to do."""
    t0 = time.perf_counter()
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    with path.open("rb") as f:
        before = os.fstat(f.fileno())
        sha = hashlib.file_digest(f, "sha256").hexdigest()
        stat = os.fstat(f.fileno())
    fvid = sha[:20]
    delivery_id = hashlib.sha256(f"{sha}\n{rel}".encode()).hexdigest()[:20]
    ledger_path = lake / "ledger" / f"{delivery_id}.parquet"
    if ledger_path.exists() or (claims is not None and delivery_id in claims.deliveries):
        return _Prepared(LandResult(rel, "already_landed"), t0, path, lake), False
    if claims is not None:
        claims.deliveries.add(delivery_id)
    delivered_at = dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.timezone(dt.timedelta(hours=8)))
    row = {f.name: None for f in LEDGER_SCHEMA}
    row.update(delivery_id=delivery_id, file_version_id=fvid, sha256=sha, source_path=rel, size_bytes=stat.st_size,
               delivered_at=delivered_at.replace(tzinfo=None, microsecond=0),
               landed_at=dt.datetime.now().replace(microsecond=0), is_empty_day=False)
    same_bytes_landed = any((lake / "raw").glob(f"*/*/{fvid}.parquet")) or (
        claims is not None and fvid in claims.versions)
    if claims is not None:
        claims.versions.add(fvid)  # identical bytes parse identically: landed or rejected alike
    result = LandResult(rel, "duplicate" if same_bytes_landed else "landed")
    return _Prepared(result, t0, path, lake, row, stat=_identity(stat) if _identity(before) == _identity(stat)
                     else None), True


def _identity(st: os.stat_result) -> tuple[int, ...]:
    """What moves when a file is written or replaced: size, modification and change time (a change time cannot be
    set back), inode and device."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


def _keep(prep: _Prepared) -> Path:
    """The delivery's own copy in the lake's file store, by hash (the warehouse can always be rebuilt from these
    bytes), made first so that the parse reads our copy: the delivered file was hashed as a stream, not held, and a
    file whose size or modification time moved since (a download still being written) is refused rather than
    landed under the hash read first."""
    keep = prep.lake / "files" / prep.row["sha256"]
    if keep.exists() and keep.stat().st_size == prep.row["size_bytes"]:  # these bytes were kept before
        return keep
    keep.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(keep)
    try:
        shutil.copyfile(prep.path, tmp)
        moved = prep.stat is None or _identity(prep.path.stat()) != prep.stat
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise NotReady(f"{prep.result.path}: could not be kept ({e.strerror}); land it again") from None
    if moved:
        tmp.unlink()
        raise NotReady(f"{prep.result.path}: the file changed while it was landed (it was written to since it was "
                       "hashed); land it again once it is complete")
    os.replace(tmp, keep)
    return keep


def _parse(prep: _Prepared, gate: Gate | None = None) -> _Prepared:
    """Parse and validate (a piece at a time; a big internal dump read a segment at a time); `_commit` writes the
    result."""
    row, rel, fvid, lake = prep.row, prep.result.path, prep.row["file_version_id"], prep.lake
    try:
        keep = _keep(prep)
        rel_inner = rel[:-3] if rel.endswith(".gz") else rel
        if rel.endswith(".gz"):
            data = _gunzip(keep.read_bytes(), rel)
        elif row["size_bytes"] > SEGMENT_BYTES:
            with keep.open("rb") as f:
                data = f.read(4096)  # enough to know the format by
        else:
            data = keep.read_bytes()
        parser = detect(data, rel_inner)
        if len(data) < row["size_bytes"] and not rel.endswith(".gz"):
            if getattr(parser, "fmt", None) is None:  # not an internal dump: a channel's file is read whole
                data = keep.read_bytes()
                pieces = iter(parser(data, rel_inner))
            else:
                pieces = _internal_segments(parser.fmt, keep, rel_inner)
        else:
            pieces = iter(parser(data, rel_inner))
        del data
        # Piece by piece (one for most files): validate, then hand the rows to the sink before the next is parsed.
        quarantine: list[tuple[int, int, str, str, str]] = []
        first, total, other, detail = None, 0, 0, 0
        for parsed in pieces:
            table, refused = validate(parsed, rel_inner, gate)
            if first is None:
                first, fmt = parsed, parsed.fmt
                part = f"bill_date={parsed.bill_date.isoformat()}"
                # rewritten even for a duplicate: identical bytes, and it repairs a crash before the ledger row
                prep.raw = _RawSink(lake / "raw" / fmt.name / part / f"{fvid}.parquet", _raw_schema(fmt))
            quarantine += refused
            total, other = total + parsed.lines_total, other + parsed.lines_other
            detail += pc.sum(table.column("line_span")).as_py() or 0
            table = table.append_column("file_version_id", pa.repeat(pa.scalar(fvid, pa.string()), table.num_rows))
            prep.raw.add(table.select(_raw_schema(fmt).names).cast(_raw_schema(fmt)))
            del table, parsed
        prep.raw.close()
        quarantine.sort(key=lambda q: q[0])  # in line order, however the file was cut into pieces
        row.update(format=fmt.name, channel=fmt.channel, merchant_key=first.merchant_key, bill_type=fmt.bill_type,
                   bill_date=first.bill_date, status="landed", is_empty_day=first.is_empty_day,
                   lines_total=total, lines_detail=detail, lines_quarantined=sum(q[1] for q in quarantine),
                   lines_other=other)
        row.update({k: v for k, v in first.controls.items() if k in row})
        conserved = row["lines_other"] + row["lines_detail"] + row["lines_quarantined"]
        if conserved != total:  # the parser lost or invented a line: refuse rather than guess
            raise Rejected(f"{rel}: line conservation failed: {total} lines read, {conserved} accounted")
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
            prep.quarantine = (q, lake / "quarantine" / f"{fvid}.parquet")
        prep.result = LandResult(rel, prep.result.status, fmt.name, prep.raw.rows, len(quarantine), other)
    except Rejected as e:
        if prep.raw is not None:
            prep.raw.abandon()
            prep.raw = None
        msg = mask_pans(str(e))
        row.update(status="rejected", reject_reason=msg, format=row["format"] or "unknown")
        prep.result = LandResult(rel, "rejected", row["format"], message=msg)
        if isinstance(e, NotReady):
            prep.row = None  # no ledger row: this run only
    return prep


def _commit(prep: _Prepared) -> LandResult:
    """Write a prepared file: raw Parquet and quarantine, then the ledger row (the delivered bytes were kept first,
    by `_parse`)."""
    if prep.row is not None:
        if prep.raw is not None:
            prep.raw.commit()
        if prep.quarantine is not None:
            _atomic_write_parquet(*prep.quarantine)
        ledger_path = prep.lake / "ledger" / f"{prep.row['delivery_id']}.parquet"
        _atomic_write_parquet(pa.Table.from_pylist([prep.row], schema=LEDGER_SCHEMA), ledger_path)  # last: commits
    prep.result.seconds = time.perf_counter() - prep.t0
    return prep.result


def _gunzip(data: bytes, name: str) -> bytes:
    limit = min(MAX_EXPANDED_BYTES, MAX_RATIO * len(data) + 4096)  # never expand a bomb in memory to find out
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
            out = g.read(limit + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise Rejected(f"{name}: not a complete gzip stream ({e}); truncated download?") from None
    if len(out) > limit:
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


def land(paths: Iterable[Path], lake: Path, out=sys.stdout, gate: Gate | bool = True) -> list[LandResult]:
    lake = Path(lake)
    gate = _gate(gate)
    init_lake(lake)
    results: list[LandResult] = []

    def done(r: LandResult) -> None:
        results.append(r)
        if out is not None:
            extra = f" ({r.message})" if r.message else ""
            print(f"{r.status:>14}  {r.format or '-':<20} {r.path}: {r.detail} detail, {r.quarantined} "
                  f"quarantined, {r.other} other lines, {r.seconds:.2f}s{extra}", file=out)

    # Files are hashed and claimed in order (so duplicates and re-deliveries are decided as one by one), then kept,
    # parsed and written by two workers, each file on its own, in whatever order they finish: every file's writes are
    # its own, its ledger row last. The report keeps the input order. At most three files are claimed and not yet
    # landed; a worker holds one file (a big internal dump: one segment of it) at a time.
    claims = _Claims()
    judged = gate.validations if gate else 0
    with ThreadPoolExecutor(2, thread_name_prefix="tally-land") as workers:
        pending: deque[Future] = deque()
        for f, root in iter_files(paths):
            prep, todo = _read(f, root, lake, claims)
            pending.append(workers.submit(_land_prepared, prep, todo, gate))
            while len(running := [x for x in pending if not x.done()]) >= 3:
                wait(running, return_when=FIRST_COMPLETED)
            while pending and pending[0].done():
                done(pending.popleft().result())
        while pending:
            done(pending.popleft().result())
    if out is not None:
        by = {s: sum(1 for r in results if r.status == s) for s in ("landed", "duplicate", "already_landed",
                                                                     "rejected")}
        print(f"landing: {len(results)} files: {by['landed']} landed, {by['duplicate']} duplicate, "
              f"{by['already_landed']} already landed, {by['rejected']} rejected; "
              f"{sum(r.detail for r in results)} detail rows, {sum(r.quarantined for r in results)} quarantined"
              + (f"; Great Expectations judged {gate.validations - judged} piece(s)" if gate else ""), file=out)
    return results
