"""Where the CV fits run: joblib's local process pool (started early), or an existing Dask
cluster (where a task runs, and joblib's backend for the CV there)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module

import joblib
from threadpoolctl import threadpool_limits


def dask_worker_address() -> str | None:
    """The address of the Dask worker running this code, or None outside a Dask worker."""
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        return str(get_worker().address)
    except ValueError:  # not inside a Dask worker
        return None


# What a CV worker needs to unpickle its first fit: scikit-learn, imblearn and the search's code.
WORKER_MODULES = ("tasks.model_selection.prepared", "tasks.model_selection.pipeline")


def import_worker_modules() -> None:
    for name in WORKER_MODULES:
        import_module(name)


def start_worker_pool(n_jobs: int) -> None:
    """Start joblib's reusable pool of n_jobs processes and have each import what a fit needs
    (seconds), so the search's `Parallel(n_jobs)` finds it ready (joblib reuses a pool of the
    same size). Blocks until the workers are ready: call it in a thread."""
    joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(import_worker_modules)() for _ in range(n_jobs))


def leave_ctrl_c_to_the_main_process() -> None:
    """Block SIGINT in this (task) thread: the CV worker processes and resource tracker it starts
    inherit the mask, so a terminal's Ctrl-C, sent to the whole process group, reaches only the
    main process, which stops cleanly and ends them itself (flows/cli/stop.py) instead of each
    printing a KeyboardInterrupt traceback. Python handles signals in the main thread anyway."""
    if threading.current_thread() is not threading.main_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


@contextmanager
def cv_parallelism(local_jobs: int, threads: int = 1) -> Iterator[int]:
    """CV jobs for a family's search: local processes here, the whole cluster on a Dask worker.

    Locally, concurrent families share joblib's one pool of local_jobs processes (the same size
    for all, so it is reused, not resized), and OpenMP (histogram gradient boosting) in this thread
    is capped at `threads`: the cap is per thread, so a limit set in the flow's thread never
    reaches a task's thread. On a worker, joblib's Dask backend spreads the CV fits over the
    cluster (it secedes from the worker's thread pool while it waits: no nested deadlock)."""
    if dask_worker_address() is None:
        leave_ctrl_c_to_the_main_process()
        with threadpool_limits(limits=threads, user_api="openmp"):
            yield local_jobs
        return
    with joblib.parallel_config(backend="dask"):
        yield -1  # the Dask backend sizes itself to the cluster's threads
