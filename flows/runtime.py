"""What every flow needs around its steps: parameters, the resolved config, run names, cores.

The config is resolved here once per run (the CLI resolves it before Prefect starts and hands the
result to the flow; a deployment's run resolves it when it starts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tasks.checks import load_config
from tasks.config import RunConfig, override_keys, parse_override
from tasks.data.read import LoadedTable
from tasks.errors import ConfigError


class TrainParameters(BaseModel):
    """What the Prefect UI's run form asks for: a config, or a data file and its target."""

    config: str | None = Field(None, description="A YAML config, e.g. configs/penguins.yaml.")
    data: str | None = Field(None, description="A CSV or Parquet file (when no config is given).")
    target: str | None = Field(None, description="The column to predict (with data).")
    overrides: list[str] = Field(default_factory=list, description="key=value config overrides.")


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_plan(n_families: int, cores: int) -> tuple[int, int]:
    """Families at once and the threads each may use, so the cores are busy but never
    oversubscribed; their CV fits share one pool of `cores` worker processes (joblib's)."""
    concurrent = max(1, min(cores, n_families))
    return concurrent, max(1, cores // concurrent)


# What a deployment's run form may override (the Prefect server has no authentication, so the
# form is not trusted like the keyboard): families, folds, test share, rebalancing, threshold,
# seed; and paths (data, runs_dir, a YAML schema) only inside the deployment roots.
FORM_OVERRIDE_KEYS = (
    "models",
    "split.cv_folds",
    "split.test_size",
    "rebalance",
    "threshold",
    "seed",
)
FORM_PATH_KEYS = ("data", "runs_dir", "schema")
DEPLOYMENT_ROOTS_ENV = "TABPIPE_DEPLOYMENT_ROOTS"


def deployment_roots() -> list[Path]:
    """The folders form paths must stay in: the served projects (set by `tabpipe serve`), else
    the working directory of the process running the flow."""
    listed = os.environ.get(DEPLOYMENT_ROOTS_ENV, "")
    roots = [Path(p) for p in listed.split(os.pathsep) if p] or [Path.cwd()]
    return [root.resolve() for root in roots]


def inside_roots(value: str, roots: list[Path]) -> bool:
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [root / path for root in roots]
    return any(c.resolve().is_relative_to(root) for c in candidates for root in roots)


def check_form_parameters(params: TrainParameters, roots: list[Path]) -> None:
    """A deployment run's parameters: allowed override keys only, paths inside the roots."""
    source = "Deployment parameter"
    for key in override_keys(params.overrides):
        allowed = key in FORM_OVERRIDE_KEYS or key.startswith("threshold.")
        if not (allowed or key in FORM_PATH_KEYS):
            raise ConfigError(
                f"{source} overrides: key '{key}' cannot be set from a deployment form "
                f"(allowed: {', '.join(FORM_OVERRIDE_KEYS + FORM_PATH_KEYS)})."
            )
    paths = [("config", params.config), ("data", params.data)]
    for assignment in params.overrides:
        keys, value = parse_override(assignment)
        if ".".join(keys) in FORM_PATH_KEYS:
            paths.append((".".join(keys), str(value)))
    shown_roots = ", ".join(str(root) for root in roots)
    for name, value in paths:
        if value is not None and not inside_roots(value, roots):
            raise ConfigError(
                f"{source} '{name}' ({value}) lies outside the deployment roots ({shown_roots})."
            )


def running_from_deployment() -> bool:
    from prefect.runtime import deployment

    return deployment.id is not None


def resolve_config(params: TrainParameters) -> RunConfig:
    """The training config the parameters name, checked (families, grids, schema); a run
    started from a deployment's form is held to the form's allow-list first."""
    if running_from_deployment():
        check_form_parameters(params, deployment_roots())
    config = load_config(
        Path(params.config) if params.config else None,
        overrides=params.overrides,
        data=Path(params.data) if params.data else None,
        target=params.target,
    )
    if config.task == "clustering":
        source = params.config or "command line"
        raise ConfigError(f"{source}: task 'clustering' runs with `tabpipe segment`.")
    return config


def generate_run_name() -> str:
    """Flow-run names say what ran: the dataset and the time."""
    from prefect.runtime import flow_run

    params = flow_run.parameters.get("params") or {}
    if isinstance(params, BaseModel):
        params = params.model_dump()
    source = params.get("config") or params.get("data") or "train"
    return f"{Path(source).stem}-{flow_run.scheduled_start_time:%Y%m%d-%H%M%S}"


def current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


def data_facts(table: LoadedTable) -> dict[str, Any]:
    """What the manifest records of the data file, to tell later whether it changed."""
    return {
        "path": str(table.path),
        "sha256": table.sha256,
        "rows": table.frame.shape[0],
        "columns": table.frame.shape[1],
        "notes": table.notes,
    }
