"""What every flow needs around its steps: parameters, the resolved config, run names, cores.

The config is resolved here once per run (the CLI resolves it before Prefect starts and hands the
result to the flow; a deployment's run resolves it when it starts)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from tasks.config import Rebalancing, RunConfig, override_keys, parse_config, parse_override
from tasks.errors import ConfigError

if TYPE_CHECKING:
    from tasks.data.read import LoadedTable


class TrainParameters(BaseModel):
    """What the Prefect UI's run form asks for: a config, or a data file and its target; then
    typed fields for the settings people change most (each a form field), and free-text
    key=value overrides for the rest (applied last, so they win)."""

    config: str | None = Field(None, description="A YAML config, e.g. configs/penguins.yaml.")
    data: str | None = Field(None, description="A CSV or Parquet file (when no config is given).")
    target: str | None = Field(None, description="The column to predict (with data).")
    models: list[str] | None = Field(
        None, description="Model families to search, e.g. logistic_regression, knn (all if empty)."
    )
    cv_folds: int | None = Field(None, ge=2, le=20, description="Cross-validation folds.")
    test_size: float | None = Field(
        None, gt=0.0, lt=1.0, description="Share of rows held out for the test set."
    )
    rebalance: list[Rebalancing] | None = Field(
        None, description="Rebalancing choices tried in the search (auto picks for you)."
    )
    threshold_objective: Literal["f1", "min_recall", "cost"] | None = Field(
        None, description="Binary only: tune the decision threshold for this objective."
    )
    overrides: list[str] = Field(default_factory=list, description="key=value config overrides.")

    def all_overrides(self) -> list[str]:
        """The typed fields as key=value overrides, then the free-text ones."""
        typed = {
            "models": self.models,
            "split.cv_folds": self.cv_folds,
            "split.test_size": self.test_size,
            "rebalance": self.rebalance,
            "threshold.objective": self.threshold_objective,
        }
        chosen = [f"{key}={json.dumps(value)}" for key, value in typed.items() if value]
        return [*chosen, *self.overrides]


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_plan(n_families: int, cores: int) -> tuple[int, int]:
    """Families at once and the threads each may use, so the cores are busy but never
    oversubscribed; their CV fits share one pool of `cores` worker processes (joblib's)."""
    concurrent = max(1, min(cores, n_families))
    return concurrent, max(1, cores // concurrent)


def check_command_line(params: TrainParameters) -> RunConfig:
    """What a user can get wrong, cheapest first, before scikit-learn or Prefect is imported:
    the command line and config keys (did-you-mean), the data file and its header (the target
    among its columns). The families, grids and schema the config names are resolve_config's."""
    from tasks.data.header import check_target_in_header

    early = parse_config(
        Path(params.config) if params.config else None,
        overrides=params.all_overrides(),
        data=Path(params.data) if params.data else None,
        target=params.target,
    )
    check_target_in_header(early.data, early.target)
    return early


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
    if "prefect" not in sys.modules:  # the CLI checking before Prefect starts: no deployment
        return False
    return current_deployment_id() is not None


def current_deployment_id() -> str | None:
    """The deployment that started this flow run, from the run's own context: prefect.runtime's
    `deployment.id` asks the API for the flow run when it has no deployment (every `tabpipe
    train`), a round trip of about 0.2 s before the run could start."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is not None and (run.deployment_id or run.parent_task_run_id is None):
        return str(run.deployment_id) if run.deployment_id else None
    from prefect.runtime import deployment  # a subflow: its parent's deployment

    return deployment.id


def resolve_config(params: TrainParameters) -> RunConfig:
    """The training config the parameters name, checked (families, grids, schema); a run
    started from a deployment's form is held to the form's allow-list first."""
    if running_from_deployment():
        check_form_parameters(params, deployment_roots())
    from tasks.checks import load_config  # model families: scikit-learn, imported only here

    config = load_config(
        Path(params.config) if params.config else None,
        overrides=params.all_overrides(),
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


MAX_HISTORY_ROWS = 50
# The test-metric names (metrics.json) a selection metric is reported under.
TEST_METRIC_NAMES = {
    "f1_macro": "macro_f1",
    "f1_micro": "micro_f1",
    "neg_root_mean_squared_error": "rmse",
    "neg_mean_squared_error": "mse",
    "neg_mean_absolute_error": "mae",
}


def interval_text(run_dir: Path, metric: str | None, score: float | None) -> str:
    """`f1 0.812 [0.761, 0.859]`: the run's test score of its selection metric, 95% interval."""
    import json

    if metric is None or score is None:
        return "n/a"
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{metric} {score:.3f}"
    intervals = metrics.get("test_metrics", {}).get("intervals", {}).get("metrics", {})
    interval = intervals.get(TEST_METRIC_NAMES.get(metric, metric)) or {}
    low, high = interval.get("low"), interval.get("high")
    if low is None or high is None:
        return f"{metric} {score:.3f}"
    return f"{metric} {score:.3f} [{low:.3f}, {high:.3f}]"  # narrow: the UI table scrolls


def dataset_history(runs_dir: Path, dataset: str) -> list[dict[str, Any]]:
    """The dataset's completed runs, newest first, for the UI's `history-<dataset>` table."""
    from tasks.errors import RegistryError
    from tasks.serving.registry import list_runs

    try:
        runs = list_runs(runs_dir)
    except RegistryError:  # a damaged registry: the run already said so; no history to show
        return []
    rows = []
    for row in runs:
        if row["dataset"] != dataset or row["status"] != "completed":
            continue
        rows.append(
            {
                "run": row["run_id"],
                "date": (row["started_at"] or "")[:16].replace("T", " "),
                "best family": row["best_model"] or "n/a",
                "test metric": interval_text(
                    runs_dir / row["run_id"], row["metric"], row["test_score"]
                ),
                "champion": "yes" if row["champion"] else "",
            }
        )
    return rows[:MAX_HISTORY_ROWS]


# Long enough for a host across a LAN, short enough that a typo is said at once.
ENDPOINT_TIMEOUT_SECONDS = 3.0


def endpoint_family(host: str, port: int, address: str) -> tuple[int, tuple[Any, ...]]:
    """The socket family and address of host:port; an unknown host is a ConfigError."""
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError, OverflowError) as error:
        raise ConfigError(f"{address}: host '{host}' is not known ({error}).") from error
    return family, sockaddr


def check_endpoint(host: str, port: int, *, what: str, address: str) -> None:
    """Something must accept a TCP connection at host:port within a few seconds; else one
    sentence naming the address (the funnel for every endpoint a user names)."""
    family, sockaddr = endpoint_family(host, port, address)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(ENDPOINT_TIMEOUT_SECONDS)
            probe.connect(sockaddr)
    except OSError as error:
        reason = error.strerror or f"no answer within {ENDPOINT_TIMEOUT_SECONDS:g} s"
        raise ConfigError(
            f"No {what} answers at {address} ({reason}); start it or correct the address."
        ) from error


def check_listen_address(host: str, port: int) -> None:
    """A server about to listen on host:port: the port is a port and is free there."""
    address = f"{host}:{port}"
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a port number (1-65535).")
    family, sockaddr = endpoint_family(host, port, address)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(sockaddr)
    except OSError as error:
        raise ConfigError(
            f"Cannot listen on {address} ({error.strerror}); choose another --host or --port."
        ) from error


@contextmanager
def untagged_task_runs() -> Iterator[None]:
    """The flow's task runs without its tags (they stay on the flow run, where the Runs page
    filters by them): Prefect asks the server for tag concurrency slots before every tagged
    task run and waits for the answer, which cost a 100,000-row run's main thread 4.8 s."""
    from prefect.context import TagsContext

    with TagsContext(current_tags=set()):
        yield


@contextmanager
def stop_at_once_on_sigterm(mark_interrupted: Callable[[int], None]) -> Iterator[None]:
    """A deployment's run (started by `tabpipe serve` or a worker) told to stop with SIGTERM
    marks its run directory and exits at once: the family searches in flight would otherwise
    keep the process (and `tabpipe serve`'s shutdown) for as long as their fits take, and an
    exception raised from a signal handler can be swallowed (inside a weakref callback). The
    runner that sent SIGTERM records the flow run as cancelled. `tabpipe train` runs keep
    Prefect's own handling."""
    served = current_deployment_id() is not None
    if not served or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signal_number: int, frame: object) -> None:
        mark_interrupted(signal_number)
        print("tabpipe: run interrupted and marked failed; stopping now.", file=sys.stderr)
        sys.stderr.flush()
        os._exit(128 + signal_number)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
