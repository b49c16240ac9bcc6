"""`tabpipe train`: resolve the config before Prefect starts, run the flow with a progress bar,
then print the leaderboard, the test metrics and where the run is."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from flows.cli.console import console

if TYPE_CHECKING:
    from flows.runtime import TrainParameters
    from tasks.config import RunConfig

WARM_UP_THREAD = "warm-up-cv-pool"
# The longest a failed check waits for the warm-up thread (it ends in milliseconds): a bound,
# so that the command's one sentence never waits on a pool that misbehaves.
WARM_UP_END_SECONDS = 5.0
LEADERBOARD_COLUMNS = ("family", "status", "cv_score", "best_params", "fit_seconds")
SHORT_HEADERS = {"cv_score": "CV score", "best_params": "best params", "fit_seconds": "fit s"}
# Names scikit-learn pipelines put before a parameter: noise in a table people read.
PARAM_PREFIXES = ("model__", "classifier__", "regressor__", "estimator__", "preprocess__")
WIDE_TERMINAL = 120
STAGE_LABELS = {
    "start": "starting the flow",
    "load": "load the data",
    "validate": "validate against the schema",
    "profile": "profile and split",
    "evaluate": "evaluate on the test set",
    "write": "write the run",
}


class BudgetLeftColumn(ProgressColumn):
    """The search's time budget counting down (search.time_budget); empty without one."""

    def render(self, task: Task) -> Text:
        deadline = task.fields.get("deadline")
        if deadline is None:
            return Text("")
        left = max(0, int(deadline - time.time()))
        return Text(f"budget {left // 60}:{left % 60:02d} left", style="yellow")


def stage_description(record: logging.LogRecord) -> tuple[str, int, int | None]:
    """The bar's label, done and total for one progress event (search counts families)."""
    stage = getattr(record, "stage", "search")
    if stage == "search":
        done, total = getattr(record, "done", 0), getattr(record, "total", None)
        family = getattr(record, "family", "")
        last = f" (last: {family})" if family else ""
        return f"search {done}/{total} families{last}", done, total
    return STAGE_LABELS.get(stage, stage), 0, None


@contextmanager
def training_progress() -> Iterator[None]:
    """A terminal bar naming the stage (load, validate, search 3/6 families, evaluate, write)
    with the elapsed time."""
    from tasks.run.artifacts import PROGRESS_LOGGER

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        TimeElapsedColumn(),
        BudgetLeftColumn(),
        console=console,
        transient=True,
    )
    bar = progress.add_task(STAGE_LABELS["start"], total=None)

    class Advance(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            description, done, total = stage_description(record)
            deadline = getattr(record, "deadline", None)
            progress.update(
                bar, description=description, completed=done, total=total, deadline=deadline
            )

    handler = Advance()
    logger = logging.getLogger(PROGRESS_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with progress:
            yield
    finally:
        logger.removeHandler(handler)


def short_param(name: str) -> str:
    for prefix in PARAM_PREFIXES:
        name = name.removeprefix(prefix)
    return name


def params_cell(row: dict[str, Any]) -> str:
    """One parameter a line (so a narrow terminal wraps between them, not inside a word)."""
    params = row.get("best_params")
    if isinstance(params, dict):
        return "\n".join(f"{short_param(k)}={format_param(v)}" for k, v in params.items())
    text = str(params or "")
    return "\n".join(short_param(part.strip()) for part in text.split(", ")) if text else ""


def format_param(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def leaderboard_columns(leaderboard: list[dict[str, Any]]) -> list[str]:
    """The status column only when some family did not complete (it says nothing otherwise)."""
    statuses = {row.get("status") for row in leaderboard}
    return [c for c in LEADERBOARD_COLUMNS if c != "status" or statuses - {"completed"}]


def leaderboard_table(metrics: dict[str, Any], leaderboard: list[dict[str, Any]]) -> Table:
    """Readable at 80 columns (short headers, a parameter a line), roomy at 120 and more."""
    from tasks.run.report import format_value

    wide = console.width >= WIDE_TERMINAL
    columns = leaderboard_columns(leaderboard)
    table = Table(
        title=f"Leaderboard ({metrics['selection_metric']}, {metrics['cv_folds']}-fold CV)",
        show_lines=not wide,
    )
    for column in columns:
        numeric = column in ("cv_score", "fit_seconds")
        table.add_column(
            column if wide else SHORT_HEADERS.get(column, column),
            justify="right" if numeric else "left",
            no_wrap=column != "best_params",
            min_width=24 if column == "best_params" else None,
            overflow="fold",
        )
    for row in leaderboard:
        cells = {column: format_value(row.get(column)) for column in columns}
        cells["fit_seconds"] = format_value(row.get("fit_seconds"), ".1f")
        params = params_cell(row)
        cells["best_params"] = params.replace("\n", ", ") if wide else params
        table.add_row(*(cells[c] for c in columns))
    return table


def print_run_result(run_dir: Path, ui_url: str | None = None) -> None:
    """Leaderboard, the best model's test metrics, and where the run is (disk and UI)."""
    from tasks.run.report import (
        diagnostic_line,
        drift_summary,
        flagged_diagnostics,
        format_value,
        leakage_line,
        metric_rows,
        positive_class_text,
        quality_facts,
        threshold_text,
    )

    metrics = json.loads((run_dir / "metrics.json").read_text())
    leaderboard = json.loads((run_dir / "leaderboard.json").read_text())
    console.print(leaderboard_table(metrics, leaderboard))
    console.print(
        f"Selection metric: {metrics['selection_metric']}: {metrics['selection_reason']}",
        highlight=False,
    )
    rows = metric_rows(metrics["test_metrics"])
    best = metrics["best_model"]["family"]
    scores = Table(title=f"Best model {best}: test metrics{positive_class_text(metrics)}")
    for column in rows[0]:
        scores.add_column(column, justify="left" if column == "metric" else "right")
    for row in rows:
        scores.add_row(*(format_value(v) for v in row.values()))
    console.print(scores)
    for fact in quality_facts(metrics):
        console.print(fact, highlight=False)
    if metrics["task"] != "regression":
        console.print(f"Decision threshold: {threshold_text(metrics['test_metrics'])}")
    console.print(f"Leakage audit: {leakage_line(metrics)}")
    champion_file = run_dir / "champion.json"
    decision = json.loads(champion_file.read_text()) if champion_file.is_file() else None
    if decision:
        verdict = "this run" if decision.get("becomes_champion") else "unchanged"
        console.print(f"Champion of '{metrics['dataset']}': {verdict}: {decision['reason']}")
    print_run_notes(run_dir, metrics)
    drift_file = run_dir / "drift.json"
    if drift_file.is_file():
        console.print(Text(drift_summary(json.loads(drift_file.read_text())), style="yellow"))
    for record in flagged_diagnostics(metrics):
        # Text, not markup: column names in a message are data (a '[b]' must print as is).
        colour = "red" if record["severity"] == "fail" else "yellow"
        console.print(Text(diagnostic_line(record), style=colour), soft_wrap=True)
    console.print(f"Run directory: {run_dir}")
    print_ui_link(run_dir, ui_url)


def print_ui_link(run_dir: Path, ui_url: str | None) -> None:
    from flows.server import flow_run_url

    manifest = json.loads((run_dir / "manifest.json").read_text())
    flow_run_id = manifest.get("flow_run_id")
    if ui_url and flow_run_id:
        console.print(f"In the Prefect UI: {flow_run_url(ui_url, flow_run_id)}", soft_wrap=True)
    elif flow_run_id:
        console.print(
            "In the Prefect UI: after `tabpipe server start` (this run is in the project's "
            "Prefect home).",
            soft_wrap=True,
        )


def print_run_notes(run_dir: Path, metrics: dict[str, Any]) -> None:
    """What tabpipe did about the data on its own: encoding, dropped rows and columns, folds."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    notes = [*manifest.get("data", {}).get("notes", []), metrics.get("cv_note")]
    for note in filter(None, notes):
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)


def import_training() -> None:
    """The flow's modules (Prefect, scikit-learn, matplotlib: seconds), imported while a
    temporary Prefect server boots."""
    import flows.deployments
    import flows.train  # noqa: F401


def start_cv_pool(processes: int) -> None:
    """Start the CV worker processes in the background: each imports scikit-learn (seconds)
    while this process imports Prefect and starts the flow."""
    # What the warm-up thread would import itself, imported here: no module is then imported by
    # two threads at once (this one goes on importing scikit-learn or Prefect), which can deadlock.
    import joblib.externals.loky.backend.fork_exec
    import joblib.externals.loky.backend.popen_loky_posix
    import joblib.externals.loky.backend.synchronize  # noqa: F401

    from tasks.model_selection.parallel import start_worker_pool

    def start() -> None:
        try:
            start_worker_pool(processes)
        except Exception:  # only a head start (a stop may kill the workers first): the search
            return  # starts the pool itself if need be

    # One at a time: two threads starting joblib's pool while a third ends it can deadlock.
    if processes > 1 and not warm_up_threads():
        threading.Thread(target=start, name=WARM_UP_THREAD, daemon=True).start()


def warm_up_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WARM_UP_THREAD and t.is_alive()]


def start_cv_pool_early(config: RunConfig) -> bool:
    """Start the pool before scikit-learn is imported here when the search surely uses it (the
    default search, or a large file; `config` as parsed, before its families and grids are
    checked); True when started."""
    from flows.runtime import available_cores
    from tasks.model_selection.parallel import surely_uses_pool

    default_search = not config.models and not config.grids
    try:
        surely = surely_uses_pool(default_search=default_search, data=config.data)
    except (OSError, ValueError):  # an unreadable file: the flow says so itself
        return False
    processes = config.n_jobs or available_cores()
    if surely and processes > 1:
        start_cv_pool(processes)
        return True
    return False


@contextmanager
def workers_ended_on_error(pool_started: bool) -> Iterator[None]:
    """A check that fails after the pool's early start ends its workers at once: the command
    exits with its one sentence instead of waiting for their imports."""
    try:
        yield
    except BaseException:
        if pool_started:
            with suppress(Exception):  # the user's sentence, not a clean-up's traceback
                end_early_pool()
        raise


def end_early_pool() -> None:
    """Kill the workers of the pool's early start and wait for its warm-up thread to see its
    jobs fail (milliseconds once they are gone), so that no later start overlaps it; again after
    each short wait, as the thread may make its pool after a kill. Then, with no thread left in
    a `Parallel` call, wait for the workers' end."""
    from tasks.model_selection.parallel import end_worker_fits

    deadline = time.monotonic() + WARM_UP_END_SECONDS
    while (threads := warm_up_threads()) and time.monotonic() < deadline:
        end_worker_fits()
        threads[0].join(timeout=0.02)
    if not warm_up_threads():
        end_worker_fits(wait=True)


def warm_up_cv_pool(config: RunConfig) -> None:
    """Start the pool once the training modules are imported when the search will use it (the
    same rule as the search's, before the data is read). Not earlier: deciding needs the grids
    (scikit-learn), and two threads importing the same modules at once can deadlock."""
    from flows.train import expected_worker_processes

    try:
        processes = expected_worker_processes(config)
    except (OSError, ValueError):  # an unreadable file or config: the flow says so itself
        return
    start_cv_pool(processes)


@contextmanager
def startup_without_gc() -> Iterator[None]:
    """The cyclic garbage collector off while the command imports its libraries (they make
    almost no garbage, and the collector's passes over their objects were a fifth of the
    imports' 3.4 s); `collect_from_here` turns it back on, at the latest on the way out."""
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.enable()


def collect_from_here() -> None:
    """Everything loaded so far stays out of every later collection (gc.freeze), and the
    collector runs again for what the run itself makes."""
    gc.freeze()
    gc.enable()


def command_train(args: argparse.Namespace) -> int:
    with startup_without_gc():
        return train_command(args)


def train_command(args: argparse.Namespace) -> int:
    from flows.cli.stop import stop_searches_on, stoppable
    from flows.runtime import TrainParameters, check_command_line, resolve_config

    params = TrainParameters(
        config=str(args.config) if args.config else None,
        data=str(args.data) if args.data else None,
        target=args.target,
        overrides=args.set or [],
    )
    # A user's mistake is answered before Prefect starts: the command line and the data file's
    # header first, then (scikit-learn) the families, grids and schema, beside the pool's start.
    early = check_command_line(params)
    started_early = not args.dask_address and start_cv_pool_early(early)
    with workers_ended_on_error(started_early):
        config = resolve_config(params)
        from tasks.model_selection.parallel import count_physical_cores

        count_physical_cores()  # lscpu, while this process is small (the flow asks: cached)
        from tasks.checks import check_runs_dir

        check_runs_dir(config.runs_dir)
        if args.dask_address:
            from flows.deployments import check_dask_address

            check_dask_address(args.dask_address)
    stop_searches_on(args.dask_address)
    with stoppable():
        return train_in_prefect(args, params, config, pool_started=started_early)


def train_in_prefect(
    args: argparse.Namespace, params: TrainParameters, config: RunConfig, *, pool_started: bool
) -> int:
    """The flow run, against the project's (or a temporary) Prefect server."""
    from flows.cli.console import prefect_session
    from flows.cli.stop import cancellable_from_the_ui

    def preload() -> None:
        import_training()
        if not args.dask_address and not pool_started:  # on a cluster, the CV runs there
            warm_up_cv_pool(config)

    with prefect_session(args.debug, preload=preload) as connection:
        from prefect import tags

        cancellable_from_the_ui(connection.api_url)
        from flows.deployments import api_shared_with_workers, train_flow

        train = train_flow(args.dask_address)
        collect_from_here()
        with (
            tags("tabpipe", f"dataset:{config.dataset_name}"),
            api_shared_with_workers(args.dask_address),
            training_progress(),
        ):
            run_dir = Path(train(params, resolved=config))
        print_run_result(run_dir, connection.ui_url)
    return 0


TRAIN_EPILOG = """examples:
  tabpipe train configs/penguins.yaml
  tabpipe train --data my.csv --target churned
  tabpipe train configs/penguins.yaml --set split.cv_folds=3 --set 'models=[knn, svm]'

--set keys (KEY=VALUE, the value read as YAML; see docs/configuration.md):
{keys}
"""


def settable_keys() -> str:
    """Every config key --set accepts, dotted, wrapped to the terminal."""
    import textwrap

    from tasks.config import RunConfig

    keys: list[str] = []
    for name, field in RunConfig.model_fields.items():
        annotation = field.annotation
        inner = [
            a
            for a in (annotation, *getattr(annotation, "__args__", ()))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        key = field.alias or name
        if inner:
            keys.extend(f"{key}.{sub}" for sub in inner[0].model_fields)
        else:
            keys.append(key)
    return textwrap.fill(", ".join(keys), width=78, initial_indent="  ", subsequent_indent="  ")


def add_train_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "train",
        help="Validate, search models, evaluate, write a run.",
        description="Validate the data, search the model families, evaluate the best on held-out "
        "rows and write a run directory under runs/.",
        epilog=TRAIN_EPILOG.format(keys=settable_keys()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", type=Path, help="YAML config (configs/NAME.yaml).")
    parser.add_argument("--data", type=Path, help="CSV or Parquet file (without a config).")
    parser.add_argument("--target", help="Column to predict (with --data).")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="Override a config field, e.g. --set split.cv_folds=3.",
    )
    parser.add_argument(
        "--dask-address",
        metavar="tcp://HOST:PORT",
        help="Run the model-family searches on an existing Dask cluster (its scheduler).",
    )
    parser.set_defaults(handler=command_train)
