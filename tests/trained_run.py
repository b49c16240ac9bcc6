"""One real training run for the saved-model tests (tiny data, one family, two folds)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_frame

DATASET = "tiny"


@dataclass(frozen=True)
class TrainedRun:
    runs_dir: Path
    run_dir: Path
    data: Path

    @property
    def model_path(self) -> Path:
        return self.run_dir / "models" / "best.skops"


def train_tiny(data: Path, runs_dir: Path) -> Path:
    """Train through the real flow (the caller holds the Prefect harness)."""
    from flows.runtime import TrainParameters
    from flows.train import train

    params = TrainParameters(
        data=str(data),
        target="label",
        overrides=[
            "models=[logistic_regression]",
            "split.cv_folds=2",
            f"runs_dir={runs_dir}",
            f"name={DATASET}",
        ],
    )
    return Path(train(params))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> TrainedRun:
    """The first run of dataset 'tiny' in its own runs directory (so it is the champion)."""
    root = tmp_path_factory.mktemp("serving")
    data = root / "tiny.csv"
    make_frame(n_rows=160, seed=3).to_csv(data, index=False)
    runs_dir = root / "runs"
    return TrainedRun(runs_dir, train_tiny(data, runs_dir), data)


@pytest.fixture
def run_copy(trained_run: TrainedRun, tmp_path: Path) -> TrainedRun:
    """A private copy of the trained run (tests may damage its files)."""
    runs_dir = tmp_path / "runs"
    run_dir = runs_dir / trained_run.run_dir.name
    shutil.copytree(trained_run.run_dir, run_dir)
    return TrainedRun(runs_dir, run_dir, trained_run.data)
