"""What every flow needs around its steps: parameters, the resolved config, run names, cores.

The config is resolved here once per run (the CLI resolves it before Prefect starts and hands the
result to the flow; a deployment's run resolves it when it starts)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from tasks.config import Rebalancing, RunConfig, parse_config
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


def check_before_start(params: TrainParameters) -> RunConfig:
    """What a user can get wrong, cheapest first, before Prefect is imported or a server starts:
    the command line and config keys (did-you-mean), the data file and its header (the target
    among its columns), then the families, grids and schema the config names."""
    from tasks.data.header import check_target_in_header

    early = parse_config(
        Path(params.config) if params.config else None,
        overrides=params.all_overrides(),
        data=Path(params.data) if params.data else None,
        target=params.target,
    )
    check_target_in_header(early.data, early.target)
    return resolve_config(params)


def resolve_config(params: TrainParameters) -> RunConfig:
    """The training config the parameters name, checked (families, grids, schema)."""
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
    from tasks.serving.registry import list_runs

    rows = []
    for row in list_runs(runs_dir):
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
