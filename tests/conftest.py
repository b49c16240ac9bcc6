"""Shared fixtures: tiny seeded frames for units, one Prefect test harness for flow tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Quiet, offline Prefect for every test process (see ../shared/STACK.md).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def make_frame(n_rows: int = 120, positive_share: float = 0.25, seed: int = 0) -> pd.DataFrame:
    """Binary data with signal, two numeric and one categorical feature, ~10% missing cells."""
    rng = np.random.default_rng(seed)
    y = rng.random(n_rows) < positive_share
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n_rows) + 1.5 * y,
            "x2": rng.normal(size=n_rows) - 0.5 * y,
            "colour": rng.choice(["red", "green", "blue"], size=n_rows),
            "label": np.where(y, "yes", "no"),
        }
    )
    for column in ("x1", "x2", "colour"):
        frame.loc[rng.random(n_rows) < 0.1, column] = np.nan
    return frame


@pytest.fixture
def binary_frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def binary_csv(tmp_path: Path, binary_frame: pd.DataFrame) -> Path:
    path = tmp_path / "tiny.csv"
    binary_frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (about 9 s to start)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield
