"""The landing benchmark runs end to end at a tiny size: it prints its figures, and Tally lands exactly the rows
the bare DuckDB read finds (a real count check; the timings themselves are not tested)."""

from __future__ import annotations

import io
from pathlib import Path

from tally.bench import bench_land


def test_bench_land_prints_figures_and_counts_match(tmp_path: Path):
    out = io.StringIO()
    result = bench_land(20_000, tmp_path, merchants=3, out=out)
    text = out.getvalue()
    for phase in ("baseline", "land", "land-nogx"):
        assert any(line.startswith(phase + " ") for line in text.splitlines()), text
    for column in ("seconds", "rows/s", "MB/s", "peak RSS MB", "x baseline"):
        assert column in text
    assert "WARNING" not in text
    baseline = result.best("baseline")["rows"]
    assert sum(baseline.values()) == result.lines > 15_000
    for phase in ("land", "land-nogx"):
        run = result.best(phase)
        assert run["rows"] == baseline and not run["rejected"] and run["quarantined"] == 0
        assert run["peak_rss"] > 0 and run["seconds"] > 0
    assert result.best("land")["gx_validations"] == 0  # a clean day: nothing flagged, nothing for GX to judge
    # rerunning reuses the cached world
    again = io.StringIO()
    bench_land(20_000, tmp_path, merchants=3, phases=("baseline",), out=again)
    assert "generated" not in again.getvalue()
