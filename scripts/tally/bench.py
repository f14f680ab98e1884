"""Landing benchmark: Tally's `land` against a bare DuckDB typed `read_csv` of the same detail lines.

`python -m tally bench land --lines 1000000` simulates a one-day world of about that many detail lines (cached under
`data/bench/`, keyed by its parameters), writes UTF-8 copies of each file's detail lines for the baseline (unzip and
GBK transcoding are not DuckDB's job), then runs each phase in a fresh child process so time and peak memory are
per phase:

- `baseline`: DuckDB, 2 threads, one `read_csv` per detail file with a pinned dialect and explicit typed columns,
  materialised into a temporary table (fixed width: one VARCHAR column cut with `substring`);
- `land` / `land-nogx`: `tally.land.land` of the delivered files into a fresh lake, with and without the Great
  Expectations gate (as shipped: GX judges the rows the vectorised screen flags plus a sample of the others);
- `land-gxall` (on request): GX judges every row.

It prints seconds, rows/s, MB/s (of UTF-8 detail text, the same bytes for every phase), peak RSS and land/baseline.
This is a measuring tool, not a test: the figures depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from itertools import dropwhile, islice, takewhile
from pathlib import Path

from tally.formats import (
    ALIPAY_TRADE,
    BANK_PAYOUT_RESULT,
    BANK_STATEMENT,
    DATETIME,
    FEN,
    FORMATS,
    OPT,
    UNIONPAY_ZM,
    UNIONPAY_ZM_FIELDS,
    WECHAT_TRADE,
    Format,
)
from tally.simulate import WorldParams

# Detail lines per simulated payment (channel line + internal row + refunds, duplicates, payouts...), measured.
LINES_PER_PAYMENT = 2.09
DEFAULT_MERCHANTS = 10
LAYOUT = 2  # of the cached world + detail files; bump to regenerate
PHASES = ("baseline", "land", "land-nogx", "land-gxall")
DEFAULT_PHASES = ("baseline", "land", "land-nogx")
# Formats whose text values cast directly (no backticks, padding or thousands separators): typed in the baseline.
TYPED_FORMATS = {"internal_payments", "internal_refunds", "internal_payouts", "internal_recharges",
                 "bank_payout_result"}


def world_params(lines: int, merchants: int = DEFAULT_MERCHANTS, seed: int = 1) -> WorldParams:
    return WorldParams(seed=seed, days=1, merchants=merchants, daily_volume=max(100, round(lines / LINES_PER_PAYMENT)))


def _key(params: WorldParams) -> str:
    digest = hashlib.sha256(json.dumps(params.to_json(), sort_keys=True).encode()).hexdigest()[:10]
    return f"v{params.daily_volume}-m{params.merchants}-s{params.seed}-{digest}-b{LAYOUT}"


# ---------------------------------------------------------------------------------------------------------------
# The world and the baseline's detail files (generated once, cached)
# ---------------------------------------------------------------------------------------------------------------


def prepare(params: WorldParams, data_dir: Path, out=sys.stdout, detail: bool = True) -> Path:
    """Simulate the world and extract the baseline's detail files once; reruns reuse them. With `detail=False` the
    detail lines are only counted, not copied (the copy is as large as the day's text: 13 GB at 30M trades), and a
    later run that wants them extracts them then."""
    from tally.simulate import simulate

    root = Path(data_dir) / _key(params)
    ready = root / "ready.json"
    if not ready.exists():
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        t0 = time.perf_counter()
        simulate(params, root / "world")
        print(f"generated {root}: simulate {time.perf_counter() - t0:.1f}s", file=out)
    if not ready.exists() or (detail and not json.loads(ready.read_text()).get("detail_copy", True)):
        t0 = time.perf_counter()
        manifest = _extract(root / "world" / "landing", root / "detail", write=detail)
        ready.write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
        print(f"detail lines {'extracted' if detail else 'counted'} in {time.perf_counter() - t0:.1f}s", file=out)
    return root


def _lines(f: Iterable[str]) -> Iterator[str]:
    """The lines of a text stream opened to split at LF only, each without its LF and a CR before it: one at a time,
    so a 2.9 GB dump is never one string, nor a list of lines, in memory."""
    for ln in f:
        yield ln.removesuffix("\n").removesuffix("\r")


def _file_lines(path: Path, encoding: str) -> Iterator[str]:
    with open(path, encoding=encoding, newline="\n") as f:
        yield from _lines(f)


def _member_lines(path: Path, is_member: Callable[[str], bool], gbk_names: bool) -> Iterator[str]:
    """The lines of the first zip member whose name `is_member`, read from the zip as they are needed (GBK)."""
    with zipfile.ZipFile(path, metadata_encoding="gbk" if gbk_names else None) as zf:
        info = next(i for i in zf.infolist() if is_member(i.filename))
        with io.TextIOWrapper(zf.open(info), encoding="gbk", newline="\n") as f:
            yield from _lines(f)


def _detail_of(path: Path) -> tuple[Format, Iterator[str]] | None:
    """(format, its detail lines as text, read as they are iterated) of a delivered file, by the formats' documented
    layouts."""
    name = path.name
    if name.startswith("wechat_"):
        with open(path, "rb") as f:
            if f.read(5) == b"<xml>":
                return None  # an empty day: nothing to read
        lines = islice(_file_lines(path, "utf-8"), 1, None)  # after the header, up to the summary's header
        return WECHAT_TRADE, takewhile(lambda ln: not ln.startswith("总交易单数"), lines)
    if name.endswith(".csv.zip"):
        member = _member_lines(path, lambda k: k.endswith("_业务明细.csv"), gbk_names=True)
        lines = dropwhile(lambda ln: ln.startswith("#"), member)
        next(lines, None)  # the header: the detail lines follow it, up to the next "#" line
        return ALIPAY_TRADE, takewhile(lambda ln: not ln.startswith("#"), lines)
    if name.endswith(".zip"):
        zm = re.compile(r"INN\d{6}88ZM_\d{15}(\.txt)?")
        return UNIONPAY_ZM, _member_lines(path, lambda k: zm.fullmatch(k) is not None, gbk_names=False)
    if name.startswith("PAYOUT_"):
        return BANK_PAYOUT_RESULT, islice(_file_lines(path, "gbk"), 1, None)
    if name.startswith("bank_statement_"):
        lines = islice(_file_lines(path, "gbk"), 3, None)  # after the three header lines, up to the 合计 (totals) line
        return BANK_STATEMENT, takewhile(lambda ln: not ln.startswith("合计"), lines)
    m = re.fullmatch(r"internal_([a-z]+)_\d{8}\.csv", name)
    if m:
        return FORMATS[f"internal_{m.group(1)}"], islice(_file_lines(path, "utf-8"), 1, None)
    raise ValueError(f"{path}: not a file the benchmark world writes")


def _extract(landing: Path, out_dir: Path, write: bool = True) -> dict:
    """The manifest of the day's detail lines (per file: lines, UTF-8 bytes, fields), written to `out_dir` as UTF-8
    text for the baselines when `write`."""
    files = []
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        got = _detail_of(path)
        rel = path.relative_to(landing).as_posix()
        if got is None:  # an empty day: no detail lines to read
            files.append({"source": rel, "detail": None, "format": WECHAT_TRADE.name, "lines": 0, "bytes": 0,
                          "fields": 0})
            continue
        fmt, lines = got
        target = out_dir / (rel.replace("/", "__") + ".txt")
        target.parent.mkdir(parents=True, exist_ok=True)
        n_lines, n_bytes, n_fields = 0, 0, len(fmt.columns)
        with open(target if write else os.devnull, "w", encoding="utf-8", newline="\n") as f:
            for ln in lines:
                if n_lines == 0 and fmt is WECHAT_TRADE:  # the legacy layout has fewer columns
                    n_fields = len(ln.split(","))
                text = ln + "\n"
                f.write(text)
                n_lines += 1
                n_bytes += len(text.encode())
        files.append({"source": rel, "detail": target.name, "format": fmt.name, "lines": n_lines,
                      "bytes": n_bytes, "fields": n_fields})
    return {"files": files, "lines": sum(f["lines"] for f in files), "bytes": sum(f["bytes"] for f in files),
            "detail_copy": write}


def _baseline_sql(entry: dict, path: Path) -> str:
    """One pinned-dialect typed read: explicit columns, no sniffing, no header."""
    fmt = FORMATS[entry["format"]]
    common = "header = false, auto_detect = false, new_line = '\\n'"
    if fmt is UNIONPAY_ZM:
        cuts = ", ".join(f"substring(line, {off + 1}, {width}) as {name}" for name, off, width, _ in UNIONPAY_ZM_FIELDS)
        return (f"select {cuts} from read_csv('{path}', columns = {{'line': 'VARCHAR'}}, delim = '{chr(31)}', "
                f"quote = '', escape = '', {common})")
    typed = fmt.name in TYPED_FORMATS
    cols = []
    for c in fmt.columns[: entry["fields"]]:
        t = "VARCHAR"
        if typed and c.pattern == FEN:
            t = "BIGINT"
        elif typed and c.pattern in (DATETIME, DATETIME + OPT):
            t = "TIMESTAMP"
        cols.append(f"'{c.name}': '{t}'")
    if fmt in (WECHAT_TRADE, BANK_PAYOUT_RESULT):  # no quoting in these formats
        dialect = f"delim = '{'|' if fmt is BANK_PAYOUT_RESULT else ','}', quote = '', escape = ''"
    else:
        dialect = "delim = ',', quote = '\"', escape = '\"'"
    return f"select * from read_csv('{path}', columns = {{{', '.join(cols)}}}, {dialect}, {common})"


# ---------------------------------------------------------------------------------------------------------------
# Phases, each in its own process
# ---------------------------------------------------------------------------------------------------------------


def _peak_rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_phase(phase: str, root: Path) -> dict:
    """Run one phase in this process; returns seconds, rows per source file and peak RSS."""
    manifest = json.loads((root / "ready.json").read_text())
    t_import = time.perf_counter()
    if phase == "baseline":
        import duckdb

        t0, cpu0 = time.perf_counter(), _cpu()
        con = duckdb.connect()
        con.execute("set threads = 2")
        rows = {}
        for entry in manifest["files"]:
            if entry["detail"] is None:
                rows[entry["source"]] = 0
                continue
            con.execute(f"create or replace temp table t as {_baseline_sql(entry, root / 'detail' / entry['detail'])}")
            rows[entry["source"]] = con.execute("select count(*) from t").fetchall()[0][0]
        con.execute("drop table t")
        con.close()
        extra = {}
    else:
        from tally.gx_gate import Gate, load_gx
        from tally.land import land

        gate = {"land": Gate(), "land-nogx": False, "land-gxall": Gate(every_row=True)}[phase]
        if phase == "land-gxall":
            load_gx()  # GX's import is timed on its own there; `land` imports it only if the screen flags a value
        lake = root / f"lake-{phase}"
        shutil.rmtree(lake, ignore_errors=True)
        t0, cpu0 = time.perf_counter(), _cpu()
        results = land([root / "world" / "landing"], lake, out=None, gate=gate)
        rows = {r.path: r.detail + r.quarantined for r in results if r.status in ("landed", "duplicate")}
        extra = {"rejected": [r.path for r in results if r.status == "rejected"],
                 "quarantined": sum(r.quarantined for r in results)}
        if gate:
            extra.update(gx_validations=gate.validations, gx_rows=gate.rows_judged,
                         gx_disagreements=gate.disagreements)
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    if phase != "baseline":
        shutil.rmtree(lake, ignore_errors=True)  # the figures are what we came for; a 10M-line lake is ~1 GB
    return {"phase": phase, "seconds": seconds, "cpu_seconds": cpu, "import_seconds": t0 - t_import, "rows": rows,
            "peak_rss": _peak_rss_bytes(), **extra}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(phase: str, root: Path) -> dict:
    scripts = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=scripts + os.pathsep + os.environ.get("PYTHONPATH", ""),
               GX_ANALYTICS_ENABLED="false")
    proc = subprocess.run([sys.executable, "-m", "tally.bench", "--phase", phase, str(root)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench phase {phase} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@dataclasses.dataclass
class BenchResult:
    root: Path
    lines: int
    mb: float
    runs: dict[str, list[dict]]

    def best(self, phase: str) -> dict:
        return min(self.runs[phase], key=lambda r: r["seconds"])


def bench_land(lines: int, data_dir: Path, merchants: int = DEFAULT_MERCHANTS, seed: int = 1, repeat: int = 1,
               phases: tuple[str, ...] = DEFAULT_PHASES, out=sys.stdout) -> BenchResult:
    params = world_params(lines, merchants, seed)
    root = prepare(params, data_dir, out=out)
    manifest = json.loads((root / "ready.json").read_text())
    mb = manifest["bytes"] / 1e6
    print(f"world: {params.days} day, {params.merchants} merchants, {params.daily_volume} payments -> "
          f"{len(manifest['files'])} files, {manifest['lines']:,} detail lines, {mb:,.1f} MB UTF-8 detail text",
          file=out)
    runs: dict[str, list[dict]] = {p: [] for p in phases}
    for _ in range(repeat):  # phases take turns, so a noisy moment hits each of them
        for phase in phases:
            runs[phase].append(_child(phase, root))
    result = BenchResult(root, manifest["lines"], mb, runs)
    base = result.best("baseline")["seconds"] if "baseline" in phases else None
    print(f"{'phase':<10}{'seconds':>9}{'CPU s':>8}{'import s':>10}{'rows':>12}{'rows/s':>12}{'MB/s':>9}"
          f"{'peak RSS MB':>13}{'x baseline':>12}", file=out)
    for phase in phases:
        r = result.best(phase)
        n = sum(r["rows"].values())
        ratio = f"{r['seconds'] / base:.2f}" if base else "-"
        print(f"{phase:<10}{r['seconds']:>9.2f}{r['cpu_seconds']:>8.1f}{r['import_seconds']:>10.2f}{n:>12,}"
              f"{n / r['seconds']:>12,.0f}{mb / r['seconds']:>9.1f}{r['peak_rss'] / 1e6:>13,.0f}{ratio:>12}", file=out)
        if repeat > 1:
            print(f"{'':<10}all runs: " + ", ".join(f"{x['seconds']:.2f}" for x in runs[phase]), file=out)
        if "gx_validations" in r:
            print(f"{'':<10}GX: {r['gx_validations']} validations, {r['gx_rows']:,} rows judged, "
                  f"{r['gx_disagreements']} disagreements with the vectorised screen", file=out)
    if "baseline" in phases:
        expected = result.best("baseline")["rows"]
        for phase in phases:
            if phase != "baseline" and result.best(phase)["rows"] != expected:
                print(f"WARNING: {phase} row counts differ from the baseline's", file=out)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tally.bench")
    ap.add_argument("--phase", choices=PHASES, required=True)
    ap.add_argument("root")
    args = ap.parse_args(argv)
    print(json.dumps(run_phase(args.phase, Path(args.root))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
