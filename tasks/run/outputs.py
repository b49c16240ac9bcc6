"""The one writer of a run directory (the contract in docs/run-directory.md).

A run starts with manifest.json ("running") and config.yaml in its hidden staging directory;
everything else is written at the end, by `RunWriter.complete` (or `RunWriter.fail`), and the
directory is then renamed into place whole.
"""

from __future__ import annotations

import errno
import json
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import yaml
from prefect.exceptions import TerminationSignal

from tasks.config import RunConfig
from tasks.data.profile import DataProfile
from tasks.data.split import DataSplit
from tasks.data.validate import write_failure_cases
from tasks.errors import StorageError, storage_error
from tasks.evaluation.explain import Explanations
from tasks.model_selection.search import FamilyResult, SelectionChoice
from tasks.run.model_io import (
    MODEL_FILE_NAME,
    input_columns,
    model_card,
    model_file_bytes,
    save_model,
    signed_card,
)
from tasks.run.plots import (
    in_report_order,
    prediction_plots,
    result_plots,
    search_and_data_plots,
)
from tasks.run.report import champion_html, cv_results_frame, report_html
from tasks.run.rundir import (
    REFERENCE_FILE_NAME,
    RunDir,
    StageClock,
    package_versions,
    publish_run,
    replace_json,
    replace_text,
    start_run,
    utc_now,
    write_json,
)

CHAMPION_SECTION_END = "\n<h2>Leaderboard</h2>"


def family_summary(result: FamilyResult) -> dict[str, Any]:
    """A family's search for metrics.json (timings live in the manifest: they never repeat);
    notes (a time budget's skips) only when there are some."""
    notes = {"notes": result.notes} if result.notes else {}
    return {
        "family": result.family,
        "status": result.status,
        "error": result.error,
        "best_params": result.best_params,
        "best_score": result.best_score,
        "best_std": result.best_std,
        "candidates": [
            {k: v for k, v in row.items() if k != "mean_fit_seconds"} for row in result.candidates
        ],
        **notes,
    }


def timed_summaries(results: list[FamilyResult]) -> list[dict[str, Any]]:
    """Family summaries with their fit seconds, for the leaderboard (not for metrics.json)."""
    return [{**family_summary(r), "fit_seconds": r.fit_seconds} for r in results]


def regression_facts(profile: DataProfile) -> dict[str, Any]:
    """For a regression: the target's spread (to read RMSE against) and rows without a target."""
    if profile.task != "regression":
        return {}
    return {
        "target_summary": profile.target_summary,
        "dropped_target_rows": profile.dropped_target_rows,
    }


def cv_results_of(results: list[FamilyResult]) -> pd.DataFrame:
    """cv_results.csv: one row per candidate of every family."""
    return cv_results_frame([{**family_summary(r), "candidates": r.candidates} for r in results])


def build_metrics(
    *,
    dataset: str,
    profile: DataProfile,
    selection: SelectionChoice,
    results: list[FamilyResult],
    best: FamilyResult,
    test_metrics: dict[str, Any],
    split: DataSplit,
    cv_folds: int,
    cv_note: str | None,
    explanations: dict[str, Any],
    no_leakage_found: bool,
    diagnostics: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """metrics.json: what was compared, what won and why, and how it scored on the test set."""
    return {
        "dataset": dataset,
        "task": profile.task,
        "target": profile.target,
        "classes": profile.classes,
        "positive_label": profile.positive_label,
        **regression_facts(profile),
        "selection_metric": selection.metric,
        "selection_reason": selection.reason,
        "cv_folds": cv_folds,
        "cv_note": cv_note,
        "n_train": len(split.y_train),
        "n_test": len(split.y_test),
        "dropped_target_rows": profile.dropped_target_rows,
        "dropped_columns": profile.dropped_columns,
        "families": [family_summary(r) for r in results],
        "best_model": {
            "family": best.family,
            "params": best.best_params,
            "cv_score": best.best_score,
            "cv_std": best.best_std,
        },
        "test_metrics": test_metrics,
        "calibration_and_importance": explanations,
        "leakage_audit": {"no_leakage_found": no_leakage_found, "details": "leakage_audit.json"},
        **({"diagnostics": diagnostics} if diagnostics is not None else {}),
    }


def write_reference(reference: pd.DataFrame, path: Path) -> Path | None:
    """The drift reference as Parquet (types kept, values stay data). Mixed-type text columns
    are stored as text, as drift compares them; a table Parquet cannot hold is left out: later
    runs then fall back to the champion's data file."""
    as_text = {c: "string" for c in reference.columns if reference[c].dtype == object}
    try:
        reference.astype(as_text).to_parquet(path, index=True)
    except (ValueError, TypeError, ImportError):
        path.unlink(missing_ok=True)
        return None
    return path


def write_predictions(predictions: pd.DataFrame, path: Path) -> Path:
    # repr-precision floats, so metrics recomputed from the file equal metrics.json exactly
    predictions.to_csv(path, index=False, float_format="%.17g")
    return path


@dataclass
class TrainingOutputs:
    """Everything a finished training run leaves behind, gathered before one write."""

    metrics: dict[str, Any]
    champion: dict[str, Any]
    results: list[FamilyResult]
    best: FamilyResult
    model: Any
    predictions: pd.DataFrame
    profile: DataProfile
    split: DataSplit
    audit: dict[str, Any]
    explanations: Explanations
    leaderboard: list[dict[str, Any]]
    # Against the champion's training rows; None when the dataset had no champion.
    drift: dict[str, Any] | None = None
    # This run's training rows (or a sample) that later runs measure their drift against.
    reference: pd.DataFrame | None = None
    # The model file's bytes when a CV worker wrote them (model_file_bytes), else made here.
    model_file: bytes | None = None
    # Every plot (in_report_order) when CV workers drew them, else drawn here.
    plots: dict[str, bytes] | None = None


def error_text(error: BaseException) -> str:
    """What the manifest says went wrong; a stop by signal reads "interrupted (SIGINT)"."""
    signal_number = getattr(error, "signal", None)
    if isinstance(error, KeyboardInterrupt) and not isinstance(signal_number, int):
        if str(error):  # a stop with its own reason, e.g. "cancelled in the Prefect UI"
            return str(error)
        signal_number = signal.SIGINT
    if isinstance(signal_number, int) and not isinstance(error, Exception):
        return f"interrupted ({signal.Signals(signal_number).name})"
    return str(error)


@dataclass(eq=False)  # identity: open_writers holds each writer once
class RunWriter:
    """Owns one run directory: the only code that writes into it."""

    run: RunDir
    manifest: dict[str, Any]
    schema_yaml: str | None = None
    plots: dict[str, Path] = field(default_factory=dict)
    # Runs of this process still in staging: an interrupted command fails them on its way out.
    open_writers: ClassVar[list[RunWriter]] = []
    failed_runs: ClassVar[list[Path]] = []
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def begin(cls, config: RunConfig, *, flow_run_id: str | None) -> RunWriter:
        """The staging directory with manifest.json ("running") and the resolved config.yaml.
        A runs directory that cannot be written is one sentence naming it (nothing is left)."""
        versions = package_versions()  # before the directory exists: no window without a writer
        try:
            run = start_run(config.runs_dir, config.dataset_name)
        except OSError as error:
            raise storage_error(error.filename or config.runs_dir, error) from error
        manifest = {
            "status": "running",
            "run_id": run.run_id,
            "config": config.model_dump(mode="json", by_alias=True),
            "seed": config.seed,
            "package_versions": versions,
            "flow_run_id": flow_run_id,
            "started_at": utc_now(),
        }
        writer = cls(run, manifest)
        cls.open_writers.append(writer)  # from now on a stop signal fails the run, in place
        try:
            write_json(run.path("manifest.json"), manifest)
            # The resolved config, so `tabpipe replay RUN_DIR` (or a person) can re-run exactly
            # this.
            run.path("config.yaml").write_text(yaml.safe_dump(manifest["config"], sort_keys=False))
        except OSError as error:
            writer.closed()
            shutil.rmtree(run.staging, ignore_errors=True)  # a run that never started
            raise storage_error(error.filename or run.staging, error) from error
        return writer

    @classmethod
    def fail_open_runs(cls, error: BaseException) -> list[Path]:
        """Mark every run this process still has in staging failed (a signal stops them all)."""
        return [path for writer in list(cls.open_writers) if (path := writer.fail(error))]

    def closed(self) -> None:
        if self in self.open_writers:
            self.open_writers.remove(self)

    def write_schema(self) -> None:
        if self.schema_yaml is not None:
            self.run.path("schema.yaml").write_text(self.schema_yaml, encoding="utf-8")

    def fail(self, error: BaseException) -> Path | None:
        """Keep what is known (schema, failure cases), mark the run failed, put it in place;
        once only (the flow and a signal's clean-up may both try), None if already done. When
        even that cannot be written (disk full), the run stays in its hidden staging directory
        with its manifest still "running" (nothing looks complete): None too."""
        with self._lock:
            if not self.run.staging.is_dir():
                return None
            try:
                self.write_schema()
                failure_cases = getattr(error, "failure_cases", None)
                if isinstance(failure_cases, pd.DataFrame):
                    path = self.run.path("validation", "failure_cases.csv")
                    write_failure_cases(failure_cases, path)
            except OSError:
                pass  # the failed manifest below matters more than these extras
            failed = {
                **self.manifest,
                "status": "failed",
                "error": error_text(error),
                "error_type": type(error).__name__,
                "ended_at": utc_now(),
            }
            try:
                replace_json(self.run.path("manifest.json"), failed)
                final = publish_run(self.run)
            except OSError:
                return None
            self.closed()
            self.failed_runs.append(final)
            return final

    def interrupted(self, signal_number: int) -> None:
        """Mark the run failed ("interrupted ...") from a signal handler, and put it in place."""
        self.fail(TerminationSignal(signal=signal_number))

    @contextmanager
    def failed_on_error(self) -> Iterator[None]:
        """Any error inside marks the run failed (the manifest says why) and is raised again;
        a full disk, a read-only or forbidden path becomes one sentence naming the path."""
        try:
            yield
        except OSError as error:
            if not is_storage_fault(error, self.run):
                self.fail(error)
                raise
            problem = storage_error(error.filename or self.run.staging, error)
            where = self.fail(problem)
            raise StorageError(f"{problem} {run_state_sentence(self.run, where)}") from error
        except BaseException as error:
            self.fail(error)
            raise

    def complete_training(self, outputs: TrainingOutputs, clock: StageClock) -> Path:
        """Every file of a training run, the manifest last; then the directory goes in place."""
        self.write_schema()
        self.plots = write_training_files(self.run, outputs)
        summarised = {**outputs.metrics, "champion": outputs.champion, "drift": outputs.drift}
        self.manifest.update(
            status="completed",
            champion=outputs.champion,
            ended_at=utc_now(),
            family_seconds={r.family: round(r.fit_seconds, 3) for r in outputs.results},
            family_workers={r.family: r.worker for r in outputs.results if r.worker},
        )
        write_json(self.run.path("champion.json"), outputs.champion)
        write_json(self.run.path("leaderboard.json"), outputs.leaderboard)
        clock.lap("write")
        self.manifest["stage_seconds"] = clock.seconds
        html_text = report_html(
            summarised, self.manifest, asdict(outputs.profile), self.plots, outputs.leaderboard
        )
        return self.finish(html_text)

    def record_champion_answer(self, answer: dict[str, Any]) -> None:
        """The champion registry's answer into the published run (its files were written with
        the decision pending, so a crash before the registry write claims nothing)."""
        if answer == self.manifest.get("champion"):
            return
        self.manifest["champion"] = answer
        try:
            rewrite_champion_decision(self.run.final, answer)
        except OSError as error:
            problem = storage_error(error.filename or self.run.final, error)
            raise StorageError(
                f"{problem} The run is complete, but its files could not say the champion "
                "registry's answer: `tabpipe runs --check --repair` fixes that."
            ) from error

    def finish(self, report_html_text: str) -> Path:
        """report.html, then manifest.json last, then the rename that makes the run appear."""
        self.run.path("report.html").write_text(report_html_text, encoding="utf-8")
        replace_json(self.run.path("manifest.json"), self.manifest)
        with self._lock:
            final = publish_run(self.run)
            self.closed()
        staging = self.run.staging
        self.plots = {name: final / path.relative_to(staging) for name, path in self.plots.items()}
        return final


# Errors of the disk or its permissions, not of the user's data: said as one sentence.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def is_storage_fault(error: OSError, run: RunDir) -> bool:
    """A write into the runs directory that the disk refused (a read error elsewhere is not)."""
    if error.errno not in STORAGE_ERRNOS:
        return False
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) or not error.filename:
        return True
    return run.final.parent.resolve() in Path(str(error.filename)).resolve().parents


def run_state_sentence(run: RunDir, published: Path | None) -> str:
    if published is not None:
        return f"The run is marked failed in '{published}'."
    return (
        f"The run could not be marked failed; what it wrote stays in '{run.staging}' "
        "(a hidden, unfinished run)."
    )


def with_champion_section(report: str, decision: dict[str, Any]) -> str:
    """report.html with its champion section replaced (the rest of the page is unchanged)."""
    start, end = report.find("<h2>Champion</h2>"), report.find(CHAMPION_SECTION_END)
    if start < 0 or end < start:
        return report
    return report[:start] + champion_html(decision) + report[end:]


def rewrite_champion_decision(run_dir: Path, decision: dict[str, Any]) -> None:
    """A published run's champion decision: champion.json first (readers go by it), then the
    manifest's copy and the report's section; each file is replaced whole."""
    replace_json(run_dir / "champion.json", decision)
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    replace_json(manifest_path, {**manifest, "champion": decision})
    report = run_dir / "report.html"
    if report.is_file():
        replace_text(report, with_champion_section(report.read_text(encoding="utf-8"), decision))


def write_training_files(run: RunDir, outputs: TrainingOutputs) -> dict[str, Path]:
    """metrics.json, leakage_audit.json, cv_results.csv, predictions.csv, profile.json, plots/,
    models/; returns the plot paths."""
    metrics, profile, split, predictions = (
        outputs.metrics,
        outputs.profile,
        outputs.split,
        outputs.predictions,
    )
    write_json(run.path("metrics.json"), metrics)
    write_json(run.path("leakage_audit.json"), outputs.audit)
    if outputs.drift is not None:
        write_json(run.path("drift.json"), outputs.drift)
    cv_results = cv_results_of(outputs.results)
    cv_results.to_csv(run.path("cv_results.csv"), index=False)
    write_predictions(predictions, run.path("predictions.csv"))
    if outputs.reference is not None:
        write_reference(outputs.reference, run.path(REFERENCE_FILE_NAME))
    write_json(run.path("profile.json"), asdict(profile))
    pngs = outputs.plots
    if pngs is None:
        pngs = in_report_order(
            search_and_data_plots(cv_results, metrics["selection_metric"], profile, split.y_train),
            prediction_plots(predictions=predictions, profile=profile),
            result_plots(outputs.explanations.importance, outputs.drift),
        )
    plots = write_plots(run.path("plots"), pngs)
    write_model(run, outputs)
    return plots


def write_plots(folder: Path, pngs: dict[str, bytes]) -> dict[str, Path]:
    """plots/<name>.png for each drawn plot; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.png" for name in pngs}
    for name, content in pngs.items():
        paths[name].write_bytes(content)
    return paths


def write_model(run: RunDir, outputs: TrainingOutputs) -> None:
    """models/best.skops without the training rows it saw, and its signed card models/best.json."""
    model, best, profile = outputs.model, outputs.best, outputs.profile
    content = outputs.model_file if outputs.model_file is not None else model_file_bytes(model)
    model_path = save_model(model, run.path("models", MODEL_FILE_NAME), content)
    card = model_card(
        model_path,
        run_id=run.run_id,
        family=best.family,
        best_params=best.best_params,
        inputs=input_columns(outputs.split.X_train),
        classes=profile.classes,
        positive_label=profile.positive_label,
        threshold=outputs.metrics["test_metrics"].get("decision_threshold"),
        test_metrics=outputs.metrics["test_metrics"],
        versions=package_versions(),
    )
    write_json(run.path("models", "best.json"), signed_card(card, run.final.parent))
