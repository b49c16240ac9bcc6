"""Run configuration: defaults, strictness, overrides, paths from the project root."""

from pathlib import Path

import pytest

from tasks.checks import load_config
from tasks.config import RunConfig, apply_overrides, build_config
from tasks.errors import ConfigError


def test_only_data_and_target_are_needed() -> None:
    config = RunConfig.model_validate({"data": "x.csv", "target": "y"})
    assert config.rebalance == ["auto"]
    assert config.split.cv_folds == 5
    assert config.dataset_name == "x"


def test_unknown_key_is_named_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'split\.folds'"):
        build_config({"data": "x.csv", "target": "y", "split": {"folds": 3}}, "c.yaml")


def test_wrong_type_is_named_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"key 'split\.cv_folds'"):
        build_config({"data": "x.csv", "target": "y", "split": {"cv_folds": "many"}}, "c.yaml")


def test_overrides_parse_values_as_yaml_and_leave_the_original_alone() -> None:
    raw = {"data": "x.csv", "target": "y", "split": {"cv_folds": 5}}
    merged = apply_overrides(raw, ["split.cv_folds=3", "models=[knn, svm]"])
    assert merged["split"]["cv_folds"] == 3
    assert merged["models"] == ["knn", "svm"]
    assert raw["split"]["cv_folds"] == 5


def test_data_paths_resolve_from_the_project_root(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    config_path = tmp_path / "configs" / "demo.yaml"
    config_path.write_text("data: data/demo.csv\ntarget: y\n")
    config = load_config(config_path)
    assert config.data == tmp_path.resolve() / "data" / "demo.csv"
    assert config.runs_dir == tmp_path.resolve() / "runs"


def test_bundled_configs_are_valid() -> None:
    root = Path(__file__).resolve().parents[3]
    for path in sorted((root / "configs").glob("*.yaml")):
        config = load_config(path)
        assert config.data.is_file(), path
