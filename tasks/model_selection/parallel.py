"""Running on an existing Dask cluster: where a task runs, and joblib's backend for the CV there."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
