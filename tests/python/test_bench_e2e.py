"""The end-to-end benchmark runs at a tiny size: every stage and baseline reports figures, the build's breakdown
covers every layer, and the two hand-written baselines (bare DuckDB join, pandas merge) classify the same day
identically (a real check that the baselines do the same work; the timings themselves are not tested)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from tally.bench_e2e import LAYERS, run


def test_bench_e2e_reports_every_stage_and_the_baselines_agree(tmp_path: Path):
    out = io.StringIO()
    figures = run(3_000, tmp_path, merchants=3, out=out)
    text = out.getvalue()
    stages = {s["stage"]: s for s in figures["stages"]}
    assert {"land", "dbt build", "publish"} <= set(stages)
    for s in stages.values():
        assert s["seconds"] > 0 and s["cpu_seconds"] > 0 and s["peak_rss"] > 10_000_000
    assert set(LAYERS) | {"seeds", "tests"} <= set(figures["layers"]), figures["layers"]
    assert figures["layers"]["tests"] > 0
    engine, pandas = figures["baselines"]["engine floor"], figures["baselines"]["pandas"]
    assert engine["rows"] == pandas["rows"] > 3_000
    assert engine["breaks"] == pandas["breaks"]
    assert engine["breaks"]["matched"] > 2_500
    for name in ("end to end / parse floor", "reconciliation / engine floor", "pandas / end to end"):
        assert name in text and figures["ratios"][name] > 0
    saved = json.loads(next(tmp_path.rglob("result.json")).read_text())
    assert saved["ratios"] == figures["ratios"]
