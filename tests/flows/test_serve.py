"""`tabpipe serve` without a server: configs become deployments with their schedules and tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli.main import USER_ERROR_EXIT, main
from flows.deployments import build_deployments, require_server, schedules_of
from tasks.config import ScheduleConfig
from tasks.errors import ConfigError
from tests.conftest import PROJECT_ROOT, free_port


def write_config(folder: Path, name: str, schedule: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\ndata: tiny.csv\ntarget: label\n{schedule}", encoding="utf-8")
    return path


def test_no_schedule_means_runs_on_demand_only() -> None:
    assert schedules_of(None, Path("c.yaml")) == []


def test_cron_and_interval_both_become_schedules_in_the_configs_time_zone() -> None:
    config = ScheduleConfig(cron="0 3 * * *", interval_seconds=600, timezone="Europe/Paris")
    cron, interval = schedules_of(config, Path("c.yaml"))
    assert (cron.cron, cron.timezone) == ("0 3 * * *", "Europe/Paris")
    assert (interval.interval.total_seconds(), interval.timezone) == (600, "Europe/Paris")


@pytest.mark.parametrize(
    ("schedule", "key"),
    [
        (ScheduleConfig(cron="every day"), "schedule.cron"),
        (ScheduleConfig(cron="0 3 * * *", timezone="Mars/Olympus"), "schedule.timezone"),
    ],
)
def test_a_bad_schedule_is_a_config_error_naming_the_key(
    schedule: ScheduleConfig, key: str
) -> None:
    with pytest.raises(ConfigError, match=f"c.yaml: key '{key}'"):
        schedules_of(schedule, Path("c.yaml"))


def test_one_deployment_per_config_with_form_tags_and_schedule(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    write_config(configs, "penguins", 'schedule:\n  cron: "0 3 * * *"\n')
    write_config(configs, "hitters")
    deployments = {d.name: d for d in build_deployments(configs)}
    assert sorted(deployments) == ["hitters", "penguins"]
    penguins = deployments["penguins"]
    assert penguins.flow_name == "train"
    assert penguins.parameters["params"]["config"] == str((configs / "penguins.yaml").resolve())
    assert penguins.tags == ["tabpipe", "dataset:penguins"]
    assert [s.schedule.cron for s in penguins.schedules] == ["0 3 * * *"]
    assert deployments["hitters"].schedules == []


def test_two_configs_with_one_name_are_a_config_error(tmp_path: Path) -> None:
    write_config(tmp_path, "a")
    (tmp_path / "b.yaml").write_text("name: a\ndata: x.csv\ntarget: y\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="share the name 'a'"):
        build_deployments(tmp_path)


def test_serving_an_empty_folder_exits_with_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--configs-dir", str(tmp_path)]) == USER_ERROR_EXIT
    message = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "holds no *.yaml config" in message


def test_serving_needs_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(ConfigError, match="make server"):
        require_server()
    port = free_port()  # a loopback port nobody listens on
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    with pytest.raises(ConfigError, match="No Prefect server answers"):
        require_server()


def test_the_run_form_has_typed_fields_and_keeps_free_text_overrides() -> None:
    from flows.train import train

    schema = train.parameters.model_dump()  # what a deployment's run form is built from
    fields = schema["definitions"]["TrainParameters"]["properties"]
    typed = ("models", "cv_folds", "test_size", "rebalance", "threshold_objective")
    assert set(typed) | {"overrides"} <= set(fields)
    assert fields["cv_folds"]["anyOf"][0] == {"maximum": 20, "minimum": 2, "type": "integer"}
    assert "cost" in str(fields["threshold_objective"])


def test_typed_fields_apply_first_and_free_text_overrides_win() -> None:
    from flows.runtime import TrainParameters, resolve_config

    params = TrainParameters(
        config=str(PROJECT_ROOT / "configs" / "penguins.yaml"),
        models=["knn", "svm"],
        cv_folds=3,
        test_size=0.25,
        overrides=["split.cv_folds=4"],
    )
    config = resolve_config(params)
    assert config.models == ["knn", "svm"]
    assert config.split.test_size == 0.25
    assert config.split.cv_folds == 4  # the free-text override came last
