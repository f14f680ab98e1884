"""The end-to-end benchmark runs at a tiny size: every stage and baseline reports figures, the build's breakdown
covers every layer, and the two hand-written baselines (bare DuckDB join, pandas merge) classify the same day
identically (a real check that the baselines do the same work; the timings themselves are not tested)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from tally import bench
from tally.bench_e2e import FIXED_COST_TRADES, LAYERS, build_breakdown, run, world


def test_bench_e2e_reports_every_stage_and_the_baselines_agree(tmp_path: Path):
    out = io.StringIO()
    figures = run(3_000, tmp_path, merchants=3, out=out)
    text = out.getvalue()
    stages = {s["stage"]: s for s in figures["stages"]}
    assert {"land", "dbt build", "publish"} <= set(stages)
    for s in stages.values():
        assert s["seconds"] > 0 and s["cpu_seconds"] > 0 and s["peak_rss"] > 10_000_000
    # every model counts in a layer named by its folder: models/staging/*, models/history, models/<kind>/<layer>
    assert set(figures["layers"]) == set(LAYERS) | {"seeds", "tests", "startup and parse", "settlement", "lineage",
                                                    "history"}, figures["layers"]
    assert all(f"  {layer:<20}" in text for layer in figures["layers"])
    assert figures["layers"]["tests"] > 0
    # dbt starts and parses the project before its first node: a part of the stage, never all of it
    assert 0 < figures["layers"]["startup and parse"] < stages["dbt build"]["seconds"]
    # the build reuses the parse the bench made first (as a daily job reuses the day before's), reported apart
    assert figures["cold_parse"]["seconds"] > 0 and "dbt's cold parse" in text
    dbt_log = next(tmp_path.glob("v3000-*/e2e/logs/dbt.log")).read_text()
    parse_run, build_run = dbt_log.split("Running with dbt=")[1:]
    assert "Starting full parse" in parse_run
    assert "no changes found, skipping parsing" in build_run and "full parse" not in build_run
    # the slowest nodes are named as dbt names them, longest first, each at most the build's own time
    slowest = figures["slowest_nodes"]
    assert len(slowest) == 8 and [t for _, t in slowest] == sorted((t for _, t in slowest), reverse=True)
    assert all("." not in name and 0 < t < stages["dbt build"]["seconds"] for name, t in slowest)
    assert slowest[0][0] in text
    engine, pandas = figures["baselines"]["engine floor"], figures["baselines"]["pandas"]
    assert engine["rows"] == pandas["rows"] > 3_000
    assert engine["breaks"] == pandas["breaks"]
    assert engine["breaks"]["matched"] > 2_500
    for name in ("end to end / parse floor", "reconciliation / engine floor", "pandas / end to end"):
        assert name in text and figures["ratios"][name] > 0
    # the fixed cost: the same pipeline on its own nearly empty world, every stage and node, and the best ratios
    fixed = figures["fixed_cost"]
    assert fixed["trades"] == FIXED_COST_TRADES < 3_000
    assert [s["stage"] for s in fixed["stages"]] == [s["stage"] for s in figures["stages"]]
    assert fixed["end_to_end"]["seconds"] == sum(s["seconds"] for s in fixed["stages"]) > 0
    assert set(LAYERS) | {"seeds", "tests", "startup and parse"} <= set(fixed["layers"])
    small = next(p for p in tmp_path.glob("v*") if p.name.startswith(f"v{FIXED_COST_TRADES}-"))
    small_results = json.loads((small / "e2e" / "target" / "run_results.json").read_text())
    built = json.loads((next(tmp_path.glob("v3000-*")) / "e2e" / "target" / "run_results.json").read_text())
    assert sorted(r["unique_id"] for r in small_results["results"]) == sorted(r["unique_id"] for r in built["results"])
    assert all(r["status"] in ("success", "pass") for r in small_results["results"])
    floors = figures["baselines"]
    assert figures["best_ratios"] == {
        "end to end / parse floor": fixed["end_to_end"]["seconds"] / floors["parse floor"]["seconds"],
        "reconciliation / engine floor": fixed["layers"]["reconciliation"] / floors["engine floor"]["seconds"],
        "pandas / end to end": floors["pandas"]["seconds"] / fixed["end_to_end"]["seconds"],
    }
    assert "fixed cost: the same pipeline on a day of 1,000 trades" in text and "this day's volume adds" in text
    assert all(f"best {v:.2f}x" in text for v in figures["best_ratios"].values())
    saved = json.loads(next(tmp_path.rglob("v3000-*/e2e/result.json")).read_text())
    assert saved["ratios"] == figures["ratios"] and saved["best_ratios"] == figures["best_ratios"]


def test_bench_e2e_without_the_parse_floor_counts_the_same_lines_and_copies_none(tmp_path: Path):
    out = io.StringIO()
    figures = run(3_000, tmp_path, merchants=3, parse_floor=False, fixed_cost=False, out=out)
    assert set(figures["baselines"]) == {"engine floor"}
    assert "fixed_cost" not in figures and "fixed cost" not in out.getvalue()
    assert set(figures["ratios"]) == {"reconciliation / engine floor"}
    assert "parse floor" not in out.getvalue()
    [root] = tmp_path.glob("v*")
    assert not (root / "detail").exists() or not any((root / "detail").iterdir())
    counted = json.loads((root / "ready.json").read_text())
    assert counted["detail_copy"] is False and counted["lines"] == figures["lines"] > 3_000
    # a later run that wants the copy extracts it from the same world: the same lines and bytes, now on disk
    bench.prepare(world(3_000, 3, 1), tmp_path, out=io.StringIO(), detail=True)
    copied = json.loads((root / "ready.json").read_text())
    assert copied["detail_copy"] is True
    assert [(f["source"], f["lines"], f["bytes"]) for f in copied["files"]] == \
        [(f["source"], f["lines"], f["bytes"]) for f in counted["files"]]
    for f in copied["files"]:
        if f["lines"]:
            assert (root / "detail" / f["detail"]).stat().st_size == f["bytes"]


def test_bench_e2e_command_passes_its_options(monkeypatch):
    # `scripts/bench` is `python -m tally bench e2e`: its flags must reach the run, not only parse
    import tally.bench_e2e
    from tally.cli import main

    calls = []
    monkeypatch.setattr(tally.bench_e2e, "run", lambda *a, **kw: calls.append((a, kw)))
    assert main(["bench", "e2e", "--trades", "5000", "--no-fixed-cost", "--no-pandas"]) == 0
    assert main(["bench", "e2e", "--trades", "5000"]) == 0
    (args, first), (_, second) = calls
    assert args[0] == 5000
    assert first["fixed_cost"] is False and first["skip_pandas"] is True and first["parse_floor"] is True
    assert second["fixed_cost"] is True and second["skip_pandas"] is False


def test_a_layer_counts_only_the_time_its_models_ran(tmp_path: Path):
    """A layer is the time at least one of its models ran: models side by side (or one inside another's run) count
    once, and the data tests dbt runs between a layer's models are not the layer's, nor the gap between its models."""
    def node(uid: str, start: float, end: float) -> dict:
        at = lambda t: f"2026-11-26T08:00:{t:06.3f}Z"  # noqa: E731
        return {"unique_id": uid, "execution_time": end - start,
                "timing": [{"name": "execute", "started_at": at(start), "completed_at": at(end)}]}

    models = {n: f"models/intermediate/reconciliation/{n}.sql" for n in "abcd"}
    models |= {n: f"models/history/{n}.sql" for n in ("h1", "h2")}
    nodes = {f"model.tally.{n}": {"resource_type": "model", "original_file_path": p} for n, p in models.items()}
    nodes["test.tally.t"] = {"resource_type": "test", "original_file_path": "tests/dbt/t.sql"}
    (tmp_path / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    results = [node("model.tally.c", 15, 16),  # listed first: the order of the results does not matter
               node("model.tally.a", 0, 4), node("model.tally.b", 2, 5),  # side by side: 5 s, not 7
               node("model.tally.d", 1, 3),  # inside a's run: nothing more
               node("test.tally.t", 5, 15),  # a data test between the layer's models
               node("model.tally.h1", 1, 2), node("model.tally.h2", 30, 31)]
    layers = build_breakdown(tmp_path, {"results": results})
    assert layers == {"reconciliation": 6.0, "history": 2.0, "tests": 10.0}
