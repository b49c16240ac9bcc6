"""prefect.yaml (for `prefect deploy` and a worker) says what configs/ says."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.deployments import deployment_tags
from tasks.checks import load_config
from tests.conftest import PROJECT_ROOT


def prefect_yaml_deployments() -> dict[str, dict[str, Any]]:
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    return {deployment["name"]: deployment for deployment in spec["deployments"]}


def bundled_configs() -> list[Path]:
    """The configs the repository ships (git's list), not the ones a user added with init."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "configs"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the bundled configs are not known")
    return [PROJECT_ROOT / name for name in listed if name.endswith((".yaml", ".yml"))]


def test_every_bundled_config_has_a_deployment_and_no_more() -> None:
    configs = {load_config(p).dataset_name for p in bundled_configs()}
    assert configs
    assert set(prefect_yaml_deployments()) == configs


@pytest.mark.parametrize("name", sorted(prefect_yaml_deployments()))
def test_deployment_matches_its_config(name: str) -> None:
    deployment = prefect_yaml_deployments()[name]
    config_path = deployment["parameters"]["params"]["config"]
    config = load_config(PROJECT_ROOT / config_path)
    assert config.dataset_name == name
    assert deployment["entrypoint"] == "flows/train.py:train"
    assert deployment["work_pool"]["name"] == "tabpipe"
    assert deployment["tags"] == deployment_tags(config)
    expected = [] if config.schedule is None else [config.schedule]
    assert [
        (s.get("cron"), s.get("interval"), s["timezone"]) for s in deployment.get("schedules", [])
    ] == [(s.cron, s.interval_seconds, s.timezone) for s in expected]
