"""The command line as a user types it: the venv finds the toolbelt, the toolbelt and dbt agree on their files, and
a world is never simulated on top of another."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tally.cli import build_parser, main
from tally.simulate import WorldParams, simulate

SMALL = WorldParams(seed=3, days=1, merchants=1, daily_volume=20)


def test_the_venv_runs_the_toolbelt_without_pythonpath(tmp_path: Path):
    """`make venv` leaves a .pth naming scripts/, so `.venv/bin/python -m tally` works from anywhere, unset
    PYTHONPATH and all (the README's commands rely on it)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "tally", "--help"], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "simulate" in proc.stdout and "publish" in proc.stdout


def test_the_toolbelt_defaults_to_the_files_dbt_uses(monkeypatch: pytest.MonkeyPatch):
    """dbt reads the lake under $TALLY_DATA_DIR and writes $TALLY_DUCKDB_PATH; the toolbelt's defaults follow the
    same variables, so setting them once points both at the same files."""
    for var in ("TALLY_DATA_DIR", "TALLY_DUCKDB_PATH"):
        monkeypatch.delenv(var, raising=False)
    plain = build_parser()
    assert plain.parse_args(["land", "x"]).lake == os.path.join("data", "lake")
    assert plain.parse_args(["score"]).warehouse == "data/warehouse/tally.duckdb"

    monkeypatch.setenv("TALLY_DATA_DIR", "/srv/tally")
    monkeypatch.setenv("TALLY_DUCKDB_PATH", "/srv/wh/t.duckdb")
    parser = build_parser()
    assert parser.parse_args(["land", "x"]).lake == "/srv/tally/lake"
    for command in (["score"], ["archive"], ["restore", "fct_recon_results", "2024-03-04"], ["publish"]):
        assert parser.parse_args(command).warehouse == "/srv/wh/t.duckdb", command
    for command in (["archive"], ["restore", "fct_recon_results", "2024-03-04"], ["publish"]):
        assert parser.parse_args(command).data_dir == "/srv/tally", command


def test_a_world_is_not_simulated_on_top_of_another(tmp_path: Path, capsys: pytest.CaptureFixture):
    """Two worlds in one folder would mix: the same file names and delivery times with other bytes, so landing would
    take some of each. Simulating into a folder that holds anything is refused, and nothing is written."""
    out = tmp_path / "world"
    out.mkdir()  # an empty folder is fine
    simulate(SMALL, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert before

    with pytest.raises(FileExistsError, match="not an empty directory"):
        simulate(SMALL, out)
    args = ["simulate", "--out", str(out), "--days", "1", "--merchants", "1", "--daily-volume", "20", "--seed", "4"]
    assert main(args) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
