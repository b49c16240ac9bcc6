"""How the train flow is run beyond one call: one Prefect deployment per config in configs/
(`train/<dataset>`) on the schedule its config declares, and the flow with its family searches on
an existing Dask cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.runtime import check_endpoint
from tasks.checks import load_config
from tasks.config import RunConfig, ScheduleConfig, project_root_of
from tasks.errors import ConfigError

if TYPE_CHECKING:
    from prefect.schedules import Schedule

FLOW_NAME = "train"
HEALTH_TIMEOUT_SECONDS = 5.0


def config_files(configs_dir: Path) -> list[Path]:
    """Every YAML config in the folder, sorted so deployments register in a stable order."""
    if not configs_dir.is_dir():
        raise ConfigError(f"Configs folder '{configs_dir}' does not exist.")
    files = sorted([*configs_dir.glob("*.yaml"), *configs_dir.glob("*.yml")])
    if not files:
        raise ConfigError(f"Configs folder '{configs_dir}' holds no *.yaml config.")
    return files


def schedules_of(schedule: ScheduleConfig | None, source: Path) -> list[Schedule]:
    """The config's cron and/or interval as Prefect schedules; none means runs on demand only."""
    from prefect.schedules import Cron, Interval

    if schedule is None:
        return []
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ConfigError(
            f"{source}: key 'schedule.timezone' is not a known time zone ({schedule.timezone!r})."
        ) from error
    schedules: list[Schedule] = []
    if schedule.cron is not None:
        try:
            schedules.append(Cron(schedule.cron, timezone=schedule.timezone))
        except ValueError as error:
            raise ConfigError(f"{source}: key 'schedule.cron' is not valid: {error}.") from error
    if schedule.interval_seconds is not None:
        schedules.append(Interval(schedule.interval_seconds, timezone=schedule.timezone))
    return schedules


def deployment_tags(config: RunConfig) -> list[str]:
    """The same tags `tabpipe train` puts on its runs, so the UI filters both alike."""
    return ["tabpipe", f"dataset:{config.dataset_name}"]


def build_deployment(config_path: Path) -> Any:
    """A `train/<dataset>` deployment whose run form is pre-filled with this config."""
    from flows.runtime import TrainParameters
    from flows.train import train

    config = load_config(config_path)
    params = TrainParameters(config=str(config_path.resolve()))
    return train.to_deployment(
        name=config.dataset_name,
        schedules=schedules_of(config.schedule, config_path),
        parameters={"params": params.model_dump(mode="json")},
        tags=deployment_tags(config),
        description=f"Train on {config.data.name} (target `{config.target}`) from {config_path}.",
    )


def build_deployments(configs_dir: Path) -> list[Any]:
    """One deployment per config; two configs with the same dataset name are an error."""
    deployments = [build_deployment(path) for path in config_files(configs_dir)]
    names = [deployment.name for deployment in deployments]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"Configs in '{configs_dir}' share the name '{duplicates[0]}'.")
    return deployments


def require_server() -> str:
    """Served runs need a real server (not the per-process ephemeral one): fail early if absent."""
    import httpx

    api_url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not api_url:
        raise ConfigError(
            "tabpipe serve needs a Prefect server: start one with `make server` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api."
        )
    try:
        httpx.get(f"{api_url}/health", timeout=HEALTH_TIMEOUT_SECONDS).raise_for_status()
    except httpx.HTTPError as error:
        raise ConfigError(
            f"No Prefect server answers at PREFECT_API_URL={api_url} ({error})."
        ) from error
    return api_url


def refuse_work_pool_deployments(names: list[str]) -> None:
    """Serving over a deployment `prefect deploy` gave to a work pool leaves a hybrid whose runs
    crash (the upsert drops its code location), so name the conflict instead."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in names:
            try:
                existing = client.read_deployment_by_name(f"{FLOW_NAME}/{name}")
            except ObjectNotFound:
                continue
            if existing.work_pool_name:
                raise ConfigError(
                    f"Deployment '{FLOW_NAME}/{name}' runs on work pool "
                    f"'{existing.work_pool_name}' (from `prefect deploy`); serve it only after "
                    f"`prefect deployment delete {FLOW_NAME}/{name}`."
                )


DASK_SCHEMES = ("tcp", "tls", "inproc", "ws", "wss")


def check_dask_address(address: str) -> str:
    """A scheduler address like tcp://HOST:PORT; anything else is a ConfigError naming it."""
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in DASK_SCHEMES or not parts.hostname or port is None:
        raise ConfigError(
            f"--dask-address '{address}' must look like tcp://HOST:PORT (a Dask scheduler)."
        )
    return address


def train_flow(dask_address: str | None = None) -> Any:
    """The train flow as is, or with its tasks sent to the Dask scheduler at dask_address.

    Deployments use it too: `train_flow("tcp://scheduler:8786").to_deployment(...)`."""
    from flows.train import train

    if dask_address is None:
        return train
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(address=check_dask_address(dask_address))
    return train.with_options(task_runner=runner)  # type: ignore[arg-type]


def require_dask_scheduler(address: str) -> None:
    """The scheduler at a well-formed address must answer now, not minutes into a run."""
    parts = urlsplit(check_dask_address(address))
    if parts.scheme in ("tcp", "tls", "ws", "wss") and parts.hostname and parts.port:
        check_endpoint(parts.hostname, parts.port, what="Dask scheduler", address=address)


@contextmanager
def api_shared_with_workers(dask_address: str | None) -> Iterator[None]:
    """Dask workers report their task runs to the flow's Prefect API. With no PREFECT_API_URL,
    start the temporary local server now and name it, or each worker would start its own.
    The scheduler is checked first: an unreachable one is one sentence before the run starts."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if dask_address is not None:
        require_dask_scheduler(dask_address)  # before anything starts
    if dask_address is None or PREFECT_API_URL.value():
        yield
        return
    from flows.server import temporary_server

    with (
        temporary_server() as server,
        temporary_settings(updates={PREFECT_API_URL: server.api_url}),
    ):
        yield


def serve_deployments(configs_dir: Path, *, limit: int, poll_seconds: float | None) -> None:
    """Register and serve one deployment per config until SIGTERM or Ctrl-C."""
    from prefect import serve

    deployments = build_deployments(configs_dir)
    require_server()
    # Form paths (data, runs_dir, schema) must stay in the served project (flows/runtime.py).
    from flows.runtime import DEPLOYMENT_ROOTS_ENV

    os.environ[DEPLOYMENT_ROOTS_ENV] = str(project_root_of(configs_dir / "any.yaml"))
    refuse_work_pool_deployments([deployment.name for deployment in deployments])
    # Runner handles SIGTERM itself: it stops polling, cancels its runs and pauses the schedules.
    serve(*deployments, limit=limit, query_seconds=poll_seconds)
