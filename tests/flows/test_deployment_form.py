"""What a deployment's run form may change: an allow-list of override keys, and paths only
inside the served project (the Prefect server has no authentication)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.runtime import TrainParameters, check_form_parameters
from tasks.errors import ConfigError


@pytest.mark.parametrize(
    "overrides",
    [
        ["models=[logistic_regression]", "split.cv_folds=3", "split.test_size=0.3"],
        ["rebalance=[smote]", "threshold.objective=f1", "seed=9"],
        ["data=data/other.csv", "runs_dir=runs/form", "schema=schemas/tiny.yaml"],
    ],
)
def test_the_allowed_keys_pass(tmp_path: Path, overrides: list[str]) -> None:
    params = TrainParameters(config=str(tmp_path / "configs" / "tiny.yaml"), overrides=overrides)
    check_form_parameters(params, [tmp_path])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["grids.random_forest.max_depth=[1]"], "key 'grids.random_forest.max_depth' cannot"),
        (["n_jobs=64"], "key 'n_jobs' cannot be set from a deployment form"),
        (["runs_dir=/"], "'runs_dir' (/) lies outside the deployment roots"),
        (["data=../../etc/passwd"], "'data' (../../etc/passwd) lies outside"),
        (["schema=/elsewhere/s.yaml"], "'schema' (/elsewhere/s.yaml) lies outside"),
    ],
)
def test_other_keys_and_outside_paths_are_refused(
    tmp_path: Path, overrides: list[str], message: str
) -> None:
    params = TrainParameters(config=str(tmp_path / "configs" / "tiny.yaml"), overrides=overrides)
    with pytest.raises(ConfigError) as refused:
        check_form_parameters(params, [tmp_path])
    assert message in str(refused.value)


def test_a_config_or_data_file_outside_the_roots_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'config' \(/etc/x\.yaml\) lies outside"):
        check_form_parameters(TrainParameters(config="/etc/x.yaml"), [tmp_path])
    with pytest.raises(ConfigError, match=r"'data' \(/srv/secret\.csv\) lies outside"):
        check_form_parameters(TrainParameters(data="/srv/secret.csv", target="y"), [tmp_path])
