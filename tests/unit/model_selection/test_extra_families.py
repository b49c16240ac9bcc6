"""Families from other packages (LightGBM): searched like any family when installed, opt-in, and
a clear config error when their package is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tasks.checks import load_config
from tasks.errors import ConfigError
from tasks.model_selection.pipeline import (
    default_families,
    family_for,
)
from tests.unit.model_selection.tiny_search import search_on, tiny_split


def test_lightgbm_is_searched_with_rebalancing_and_refit() -> None:
    split, profile = tiny_split(240, positive_share=0.25, seed=6)
    result = search_on(
        split,
        profile,
        "lightgbm",
        {"num_leaves": [7], "n_estimators": [20]},
        ["class_weight", "random_under"],
    )

    assert result.status == "completed", result.error
    assert {row["params"]["rebalance"] for row in result.candidates} == {
        "class_weight",
        "random_under",
    }
    assert set(result.estimator.predict(split.X_test)) <= {"yes", "no"}


def test_lightgbm_is_opt_in() -> None:
    assert "lightgbm" not in default_families("binary")
    assert "lightgbm" not in default_families("regression")
    assert family_for("regression", "lightgbm").supports_class_weight is False


def test_a_family_whose_package_is_missing_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("data: d.csv\ntarget: y\nmodels: [logistic_regression, lightgbm]\n")
    real_find_spec = importlib.util.find_spec

    def without_lightgbm(name: str, *args: Any) -> Any:
        return None if name == "lightgbm" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_lightgbm)
    with pytest.raises(ConfigError, match=r"models\.1.*'lightgbm'.*pip install lightgbm==4\.7\.0"):
        load_config(config)
