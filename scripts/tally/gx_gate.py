"""Great Expectations as the raw-file gate (DESIGN.md flow step 2).

Expectation suites per format (and set of columns present), built from the format registry in formats.py:

- file level: the required columns are present (`ExpectTableColumnsToMatchSet`), and no id is in scientific
  notation (`ExpectColumnValuesToNotMatchRegex`: a file re-saved by Excel, its ids cannot be recovered);
- row level: every value matches its column's strict pattern (`ExpectColumnValuesToMatchRegex`), no key is
  null (`ExpectColumnValuesToNotBeNull`), every date/time exists (`ExpectColumnValuesToMatchStrftimeFormat`,
  Python's strptime: `bad_datetime`) and the format's window column lies in the bill window
  (`ExpectColumnValuesToBeBetween` on its seconds from the bill day's midnight, a column land.py adds as
  `<column>__seconds_from_bill_day`: `outside_bill_window`).

`validate` in land.py runs the gate on every parsed piece in which a vectorised screen (the same regexes in Arrow,
over every value) has flagged a value that looks bad; a piece with nothing flagged gives GX nothing to judge (the
parser has already refused a file that lacks a required column), so a clean day never imports GX. GX validates the
flagged rows plus a deterministic sample of the others (`SAMPLE_ROWS`, evenly spaced) with: the column set; the
E-notation expectation of each id column the screen flagged; and the whole suite when the screen flagged a bad
value. A file-level failure rejects the file; row-level failures, read from `unexpected_index_list` (result format
COMPLETE), quarantine those rows. GX's verdict decides everything it judged: every rejection and every quarantined
value; the values the screen passed are not judged again. GX gets a pandas frame of PAN-masked values, so no full
card number reaches its results or logs.

Why not every value: GX costs about 4.5 ms per expectation per validation whatever the batch size (it builds its
metric graph), 1.5-2 s to import, and more than the screen's time per value. A WeChat bill has 30 expectations,
so the whole suite costs ~0.14 s per file before any row is read. Judging every value with GX takes 9.8x the bare
DuckDB read of a 1M-line day here (5.2x before the date and window expectations, the date one calling Python's
strptime per value; 3.4x and 4.1 GB of a 10M-line day then), against a target of 2.5x.
`Gate(every_row=True)` (the benchmark's `land-gxall` phase) does just that, and is the reference the screen is
checked against: its `disagreements` count must stay 0.

GX's pandas regexes are not quite the screen's RE2: pandas 3 hands `\\d` on non-ASCII text and `$` before a
trailing newline to Python's `re`, where `１２.00` matches `^\\d{2}\\.\\d{2}$` and so does `"12.00\\n"`. The
suites therefore spell each registry pattern engine-neutrally (`[0-9]`, `\\Z`, non-capturing groups), which means
the same in both engines.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

import numpy as np
import pyarrow as pa

from tally.formats import BILL_WINDOW_DAYS_AFTER, BILL_WINDOW_DAYS_BEFORE, SCI_NOTATION, Format

SAMPLE_ROWS = 1000
WINDOW_SUFFIX = "__seconds_from_bill_day"  # the window column's time, as seconds from the bill day's midnight
_RE2_SPACE = r"\t\n\f\r "  # RE2's \s (Python's re adds \v and Unicode spaces)
_GX = None
_LOCK = threading.Lock()  # an ephemeral GX context is not meant for concurrent use


def load_gx():
    """Import Great Expectations quietly: offline, no analytics, no progress bars, warnings only."""
    global _GX
    if _GX is None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        for name in ("great_expectations", "great_expectations.core", "tqdm"):
            logging.getLogger(name).setLevel(logging.ERROR)
        import great_expectations as gx

        _GX = gx
    return _GX


def engine_neutral(pattern: str) -> str:
    """The registry pattern with the same meaning under RE2 and Python's re: `\\d` -> `[0-9]`, `\\s` -> RE2's
    `[\\t\\n\\f\\r ]` (`\\S` its negation, outside a class), `$` -> `\\Z`, `(` -> `(?:`. Escapes whose meaning
    differs between the engines and are not rewritten here are refused."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            esc = pattern[i + 1]
            if esc == "d":
                out.append("0-9" if in_class else "[0-9]")
            elif esc == "s":
                out.append(_RE2_SPACE if in_class else f"[{_RE2_SPACE}]")
            elif esc == "S" and not in_class:
                out.append(f"[^{_RE2_SPACE}]")
            elif esc in "DwWsSbBAZzuUNx" or esc.isdigit():
                raise ValueError(f"pattern {pattern!r}: \\{esc} is not engine-neutral; spell it out")
            else:
                out.append(ch + esc)
            i += 2
            continue
        if in_class:
            in_class = ch != "]" or out[-1] == "["
        elif ch == "[":
            in_class = True
        elif ch == "$":
            ch = "\\Z"
        elif ch == "(" and not pattern.startswith("(?", i):
            ch = "(?:"
        out.append(ch)
        i += 1
    return "".join(out)


@dataclasses.dataclass
class Verdict:
    """What GX decided for one batch. Row numbers are positions in the parsed file's records."""

    missing_columns: list[str]
    sci: dict[str, list[int]]  # id column -> rows holding an id in E-notation
    failing: dict[str, list[int]]  # column -> rows whose value misses the pattern or is a null key
    result: object  # the GX validation result, for inspection
    calendar: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # column -> rows: no such date/time
    window: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # window column -> rows outside the window


class Gate:
    def __init__(self, every_row: bool = False, sample_rows: int = SAMPLE_ROWS):
        self.every_row = every_row
        self.sample_rows = sample_rows
        self._context = None
        self._definitions: dict[tuple, tuple] = {}
        self.validations = 0
        self.rows_judged = 0
        self.disagreements = 0  # rows where GX and the vectorised screen differ (GX decides)

    def batch(self, n: int, flagged: np.ndarray) -> np.ndarray:
        """The rows GX judges: every row; or, if any is flagged, the flagged ones plus an evenly spaced sample;
        else none (the column set needs no rows)."""
        if self.every_row:
            return np.arange(n)
        if not flagged.any():
            return np.zeros(0, np.int64)
        if n <= self.sample_rows:
            return np.arange(n)
        sample = np.unique(np.linspace(0, n - 1, self.sample_rows).round().astype(np.int64))
        return np.union1d(sample, np.flatnonzero(flagged))

    def _definition(self, fmt: Format, present: tuple[str, ...], sci: frozenset[str], rows_level: bool):
        key = (fmt.name, present, sci, rows_level)
        if key not in self._definitions:
            gx = load_gx()
            if self._context is None:
                from great_expectations.data_context.types.base import ProgressBarsConfig

                self._context = gx.get_context(mode="ephemeral")
                self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
                self._source = self._context.data_sources.add_pandas("tally_raw")
            name = f"{fmt.name}__{len(self._definitions)}"
            batch = self._source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("parsed")
            suite = self._context.suites.add(gx.ExpectationSuite(name=name))
            suite.add_expectation(gx.expectations.ExpectTableColumnsToMatchSet(
                column_set=[c.name for c in fmt.columns if c.required], exact_match=False))
            for c in fmt.columns:
                if c.name not in present:
                    continue
                if c.is_id and (rows_level or c.name in sci):
                    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotMatchRegex(
                        column=c.name, regex=engine_neutral(SCI_NOTATION.pattern)))
                if not rows_level:
                    continue
                if c.is_id:
                    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=c.name))
                if c.pattern:
                    suite.add_expectation(gx.expectations.ExpectColumnValuesToMatchRegex(
                        column=c.name, regex=engine_neutral(c.pattern)))
                if c.calendar:  # an empty value is the pattern's business (allowed or not), not the calendar's
                    from great_expectations.expectations.row_conditions import Column

                    suite.add_expectation(gx.expectations.ExpectColumnValuesToMatchStrftimeFormat(
                        column=c.name, strftime_format=c.calendar, row_condition=Column(c.name) != ""))
            if rows_level and fmt.window_column and fmt.window_column + WINDOW_SUFFIX in present:
                suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(
                    column=fmt.window_column + WINDOW_SUFFIX, min_value=-BILL_WINDOW_DAYS_BEFORE * 86400,
                    max_value=BILL_WINDOW_DAYS_AFTER * 86400, strict_max=True))
            self._definitions[key] = (batch, suite)
        return self._definitions[key]

    def judge(self, fmt: Format, columns: dict[str, pa.Array], rows: np.ndarray, sci: frozenset[str] = frozenset(),
              rows_level: bool = False) -> Verdict:
        """Validate the (already PAN-masked) values of `rows`; `columns` holds only the file's own columns (and the
        window column's seconds from the bill day, `WINDOW_SUFFIX`).
        Always the column set; the E-notation check of the id columns in `sci`; with `rows_level` (or `every_row`)
        the whole suite."""
        frame = pa.table(columns).to_pandas()
        frame.index = rows
        rows_level = rows_level or self.every_row
        with _LOCK:
            batch, suite = self._definition(fmt, tuple(columns), frozenset() if rows_level else sci, rows_level)
            result = batch.get_batch(batch_parameters={"dataframe": frame}).validate(
                suite, result_format={"result_format": "COMPLETE"})
            self.validations += 1
            self.rows_judged += len(rows)
        missing: list[str] = []
        sci: dict[str, list[int]] = {}
        failing: dict[str, list[int]] = {}
        calendar: dict[str, list[int]] = {}
        window: dict[str, list[int]] = {}
        for r in result.results:
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(f"Great Expectations failed on {fmt.name}: {r.exception_info}")
            if r.success:
                continue
            kind = r.expectation_config.type
            column = r.expectation_config.kwargs.get("column")
            if kind == "expect_table_columns_to_match_set":
                missing = r.result.get("details", {}).get("mismatched", {}).get("missing", [])
            elif kind == "expect_column_values_to_not_match_regex":
                sci[column] = sorted(int(i) for i in r.result["unexpected_index_list"])
            elif kind == "expect_column_values_to_match_strftime_format":
                calendar[column] = sorted(int(i) for i in r.result["unexpected_index_list"])
            elif kind == "expect_column_values_to_be_between":
                window[column.removesuffix(WINDOW_SUFFIX)] = sorted(int(i) for i in r.result["unexpected_index_list"])
            else:
                failing.setdefault(column, [])
                failing[column] = sorted(set(failing[column]) | {int(i) for i in r.result["unexpected_index_list"]})
        return Verdict(missing, sci, failing, result, calendar, window)
