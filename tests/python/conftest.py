"""Shared fixtures: one small simulated world, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tally.simulate import WorldParams, simulate

SMALL_WORLD = WorldParams(seed=7, days=3, merchants=4, daily_volume=600)


@pytest.fixture(scope="session")
def world_params() -> WorldParams:
    return SMALL_WORLD


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, world_params: WorldParams) -> Path:
    """Root of the simulated world (landing/, ground_truth/, world.json)."""
    out = tmp_path_factory.mktemp("world")
    simulate(world_params, out)
    return out
