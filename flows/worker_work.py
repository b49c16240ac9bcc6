"""The run's work after its search that the search's CV workers do (WorkerWork), in two rounds:
while the main process refits the winner (single-threaded there, so a core is free), the plots
of the search and the data; once the model is evaluated, the permutation importance, the
champion's answers for the test rows, the plots of the test predictions and the model file's
bytes, beside the audit and the diagnostics. At 100k rows this was about 3 s of the main
process's CPU after the search."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.config import RunConfig
from tasks.errors import RegistryError
from tasks.evaluation.diagnostics import RunEvidence
from tasks.evaluation.explain import (
    Explanations,
    ImportancePart,
    explanations_of,
    importance_from_parts,
    importance_part,
)
from tasks.model_selection.parallel import (
    WorkerJob,
    import_modules,
    local_pool_is_running,
    start_in_worker,
)
from tasks.model_selection.search import FamilyResult
from tasks.run.model_io import model_file_bytes
from tasks.run.outputs import cv_results_of
from tasks.run.plots import in_report_order, prediction_plots, result_plots, search_and_data_plots
from tasks.serving.champion import champion_answers, champion_answers_or_error
from tasks.serving.registry import champion_run_id
from tasks.steps import explanation_inputs

PLOTTING_MODULES = ("matplotlib.figure", "matplotlib.backends.backend_agg")


@dataclass(frozen=True)
class WorkerWork:
    """What the CV workers were given, as jobs whose results the run collects when it needs
    them. Empty without a local pool: each is made in-process, where it always could be."""

    search_plots: WorkerJob[dict[str, bytes]] | None = None
    champion: str | None = None
    champion_answers: WorkerJob[pd.DataFrame | Exception] | None = None
    plotting_modules: WorkerJob[None] | None = None
    importance_parts: list[WorkerJob[ImportancePart]] = field(default_factory=list)
    test_answers: dict[str, Any] = field(default_factory=dict)  # explanations_of's
    prediction_plots: WorkerJob[dict[str, bytes]] | None = None
    model_file_bytes: WorkerJob[bytes] | None = None
    result_plots: WorkerJob[dict[str, bytes]] | None = None

    def jobs(self) -> list[WorkerJob[Any]]:
        started = (
            self.search_plots,
            self.champion_answers,
            self.plotting_modules,
            *self.importance_parts,
            self.prediction_plots,
            self.model_file_bytes,
            self.result_plots,
        )
        return [job for job in started if job is not None]

    def after_evaluation(
        self, evidence: RunEvidence, *, config: RunConfig, scorer: Any, n_jobs: int
    ) -> WorkerWork:
        """The evaluated model's work, in the order the run needs the results: the importance,
        one part per worker (the run waits for it first), the champion's answers (the champion
        decision's, after the importance), the prediction plots, the model file."""
        if self.search_plots is None:
            return self
        model, split, predictions = evidence.model, evidence.split, evidence.predictions
        importance = [
            start_in_worker(
                importance_part,
                model,
                split.X_test,
                split.y_test,
                scorer,
                config.seed,
                part=part,
                parts=n_jobs,
                n_jobs=n_jobs,
            )
            for part in range(n_jobs)
        ]
        answers = None
        if self.champion is not None:  # needed after the importance, by the champion decision
            answers = start_in_worker(
                champion_answers_or_error,
                config.runs_dir,
                self.champion,
                split.X_test,
                n_jobs=n_jobs,
            )
        plots = start_in_worker(
            prediction_plots, predictions=predictions, profile=evidence.profile, n_jobs=n_jobs
        )
        content = start_in_worker(model_file_bytes, model, n_jobs=n_jobs)
        test_answers = explanation_inputs(split, predictions, evidence.profile)
        del test_answers["X_test"]
        return replace(
            self,
            importance_parts=importance,
            champion_answers=answers,
            test_answers=test_answers,
            prediction_plots=plots,
            model_file_bytes=content,
        )

    def explanations(self) -> Explanations:
        """explain's result from the workers' importance parts."""
        table = importance_from_parts([job.result() for job in self.importance_parts])
        return explanations_of(table, **self.test_answers)

    def explains(self) -> Callable[[], Explanations] | None:
        """`explanations`, when the workers compute the importance (explain_model's `started`)."""
        return self.explanations if self.importance_parts else None

    def with_result_plots(
        self, explanations: Explanations, drift: dict[str, Any] | None, n_jobs: int
    ) -> WorkerWork:
        """The importance and drift plots in a worker too, when the others are drawn in one."""
        if self.prediction_plots is None:
            return self
        job = start_in_worker(result_plots, explanations.importance, drift, n_jobs=n_jobs)
        return replace(self, result_plots=job)

    def plots(self) -> dict[str, bytes] | None:
        """Every plot, when the workers drew them (else the writer draws them)."""
        search, predictions, results = self.search_plots, self.prediction_plots, self.result_plots
        if search is None or predictions is None or results is None:
            return None
        return in_report_order(search.result(), predictions.result(), results.result())

    def model_file(self) -> bytes | None:
        return self.model_file_bytes.result() if self.model_file_bytes is not None else None

    def answers(self, runs_dir: Path, X_test: pd.DataFrame) -> Callable[[str], pd.DataFrame]:
        """The champion's answers by run id: the worker's for the champion it was started for (a
        damaged champion's error comes back from there, for the champion decision to report)."""

        def answers_of(run_id: str) -> pd.DataFrame:
            if self.champion_answers is None or run_id != self.champion:
                return champion_answers(runs_dir, run_id, X_test)
            answers = self.champion_answers.result()
            if isinstance(answers, Exception):
                raise answers
            return answers

        return answers_of


def start_worker_work(
    results: list[FamilyResult],
    *,
    split: Any,
    profile: Any,
    metric: str,
    config: RunConfig,
    n_jobs: int,
) -> WorkerWork:
    """WorkerWork's first round, right after the search, in its pool of n_jobs processes when it
    is still up: the search and data plots, and matplotlib for the worker that does not draw
    them (both are idle when they are sent, so it lands there; the later plots may go to
    either). The champion's answers wait for the second round: sent here, they held a worker
    the importance then waited for."""
    if n_jobs == 1 or not local_pool_is_running():
        return WorkerWork()
    cv_results = cv_results_of(results)
    search_plots = start_in_worker(
        search_and_data_plots, cv_results, metric, profile, split.y_train, n_jobs=n_jobs
    )
    champion = None
    with suppress(RegistryError):  # the champion decision says so itself
        champion = champion_run_id(config.runs_dir, config.dataset_name)
    if champion is not None and not (config.runs_dir / champion).is_dir():
        champion = None  # the champion decision says what is missing
    plotting = start_in_worker(import_modules, PLOTTING_MODULES, n_jobs=n_jobs)
    return WorkerWork(search_plots, champion, plotting_modules=plotting)
