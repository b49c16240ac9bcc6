"""The run's work after its evaluation that the search's CV workers do (WorkerWork): at 100k rows
about 3 s of the main process's CPU after the search, done beside the audit and the diagnostics
by workers that are otherwise idle once the audit's fold refits are done."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.config import RunConfig
from tasks.errors import RegistryError
from tasks.evaluation.diagnostics import RunEvidence
from tasks.evaluation.explain import Explanations, explain
from tasks.model_selection.parallel import (
    WorkerJob,
    import_modules,
    local_pool_is_running,
    start_in_worker,
)
from tasks.run.outputs import cv_results_of
from tasks.run.plots import prediction_plots, result_plots
from tasks.serving.champion import champion_answers, model_file_and_champion_answers
from tasks.serving.registry import champion_run_id
from tasks.steps import explanation_inputs


@dataclass(frozen=True)
class WorkerWork:
    """The run's work after its evaluation that the search's CV workers, idle after the audit's
    fold refits, do beside the audit and the diagnostics: the permutation importance (large
    data), the plots of the test predictions, and the skops work (the model file's bytes, the
    champion's answers for the test rows). At 100k rows these were 3 s of the main process's CPU
    after the search. Empty without a local pool: each is made in-process, where it always
    could be."""

    explanations: WorkerJob[Explanations] | None = None
    prediction_plots: WorkerJob[dict[str, bytes]] | None = None
    skops: WorkerJob[tuple[bytes, pd.DataFrame | Exception | None]] | None = None
    champion: str | None = None
    plotting_modules: WorkerJob[None] | None = None
    result_plots: WorkerJob[dict[str, bytes]] | None = None

    def jobs(self) -> list[WorkerJob[Any]]:
        started = (
            self.explanations,
            self.prediction_plots,
            self.skops,
            self.plotting_modules,
            self.result_plots,
        )
        return [job for job in started if job is not None]

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
        if self.prediction_plots is None or self.result_plots is None:
            return None
        return {**self.prediction_plots.result(), **self.result_plots.result()}

    def model_file(self) -> bytes | None:
        return self.skops.result()[0] if self.skops is not None else None

    def answers(self, runs_dir: Path, X_test: pd.DataFrame) -> Callable[[str], pd.DataFrame]:
        """The champion's answers by run id: the worker's for the champion it was started for."""

        def answers_of(run_id: str) -> pd.DataFrame:
            if self.skops is None or run_id != self.champion:
                return champion_answers(runs_dir, run_id, X_test)
            answers = self.skops.result()[1]
            if isinstance(answers, Exception):
                raise answers
            assert answers is not None  # a champion was given
            return answers

        return answers_of


PLOTTING_MODULES = ("matplotlib.figure", "matplotlib.backends.backend_agg")


def start_worker_work(
    evidence: RunEvidence,
    *,
    config: RunConfig,
    scorer: Any,
    n_jobs: int,
    importance_jobs: int,
) -> WorkerWork:
    """WorkerWork for the evaluated model in the search's pool of n_jobs processes, when it is
    still up, in the order the run needs the results. The importance goes to a worker only when
    it would run in one process anyway."""
    if n_jobs == 1 or not local_pool_is_running():
        return WorkerWork()
    model, split, predictions = evidence.model, evidence.split, evidence.predictions
    explanations = None
    if importance_jobs == 1:
        explanations = start_in_worker(
            explain,
            model,
            **explanation_inputs(split, predictions, evidence.profile),
            scoring=scorer,
            seed=config.seed,
            n_jobs=n_jobs,
        )
    champion = None
    with suppress(RegistryError):  # the champion decision says so itself
        champion = champion_run_id(config.runs_dir, config.dataset_name)
    if champion is not None and not (config.runs_dir / champion).is_dir():
        champion = None  # the champion decision says what is missing
    skops = start_in_worker(
        model_file_and_champion_answers,
        model,
        config.runs_dir,
        champion,
        split.X_test,
        n_jobs=n_jobs,
    )
    plots = start_in_worker(
        prediction_plots,
        predictions=predictions,
        profile=evidence.profile,
        y_train=split.y_train,
        cv_results=cv_results_of(evidence.results),
        metric=evidence.metric,
        n_jobs=n_jobs,
    )
    # The worker that does not draw them imports matplotlib once its first job is done (idle
    # until the result plots, which either worker may draw): 0.4 s off the run's last step.
    plotting = start_in_worker(import_modules, PLOTTING_MODULES, n_jobs=n_jobs)
    return WorkerWork(explanations, plots, skops, champion, plotting)
