"""Where the CV fits run: joblib's local process pool (started early), or an existing Dask
cluster: where a task runs, joblib's backend for the CV there, and how a stopped run ends its
searches there.

A Python thread cannot be stopped from outside, so a family search running on a Dask worker would
keep fitting after the `tabpipe train` that started it is gone. Stopping is cooperative instead:
the stopping process sets a `distributed.Event` named for its flow run (`request_stop`), and the
search asks `ClusterStop.requested()` before each batch of candidates and each CV fit, then raises
`SearchStopped`; joblib submits no further CV fits once one has raised."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, Generic, TypeVar

import joblib
from threadpoolctl import threadpool_limits

from tasks.data.header import has_rows
from tasks.memory import return_freed_memory

T = TypeVar("T")


def dask_worker_address() -> str | None:
    """The address of the Dask worker running this code, or None outside a Dask worker."""
    if "distributed" not in sys.modules:  # a Dask worker has imported it: nothing to import here
        return None
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # not inside a Dask worker
        return None


# A small search (few rows and few CV fits) runs in the task threads: starting the pool (each
# worker imports scikit-learn and imblearn, ~3 s) costs more than it saves. Measured: 12 fits on
# 400 rows took 8.1 s in the pool against 2.2-3.1 s in threads; 115 fits on 312 rows 14.2 s
# against 25.9 s (threads fitting small models fight over the GIL).
POOL_MIN_FITS = 40
POOL_MIN_ROWS = 5_000


def uses_pool(fits: int, n_rows: int) -> bool:
    """Worker processes pay for any search but a small one."""
    return fits >= POOL_MIN_FITS or n_rows >= POOL_MIN_ROWS


def surely_uses_pool(*, default_search: bool, data: Path) -> bool:
    """Known before scikit-learn is imported: the default grids of every task (22 candidates or
    more, 2 folds or more) make POOL_MIN_FITS fits, and a file of POOL_MIN_ROWS rows uses the
    pool whatever its search (tests/flows/test_worker_processes.py)."""
    return default_search or has_rows(data, POOL_MIN_ROWS)


# What a CV worker needs to unpickle its first fit: scikit-learn, imblearn and the search's code;
# then skops, which the run's model file needs after the search (flows/worker_work.py):
# 0.4 s of CPU there, on the critical path; here, while the run validates its data, the workers
# are idle (10 MB each).
WORKER_MODULES = ("tasks.model_selection.prepared", "tasks.model_selection.pipeline", "skops.io")


# How often a local CV worker checks that the process that started it is still there.
PARENT_POLL_SECONDS = 1.0
_watching_parent = threading.Event()


# How much lower a local CV worker's scheduling priority is than its run's (nice): the run's
# own process is the one the others wait for (its imports, the refit, the evaluation), and the
# workers' work beside it (their imports, the plots, the importance) takes what it leaves. On two
# cores, 100k rows: 9.9 s -> 9.1 s. Alone on the machine, the workers still get every idle core.
WORKER_NICENESS = 5


_niced = threading.Event()


def import_worker_modules() -> None:
    stop_with_the_parent()
    if hasattr(os, "nice") and not _niced.is_set():  # POSIX; once (a pool may be warmed again)
        os.nice(WORKER_NICENESS)
        _niced.set()
    gc.disable()  # imports make almost no garbage; the collector's passes were a fifth of them
    try:
        for name in WORKER_MODULES:
            import_module(name)
        from tasks.model_selection.hgb_binning import use_fast_weighted_binning  # scikit-learn's

        use_fast_weighted_binning()
    finally:
        gc.freeze()  # what the worker imported stays out of the collections its fits cause
        gc.enable()


def count_physical_cores() -> int:
    """loky counts physical cores by running `lscpu`, once per process, at the first histogram
    gradient boosting fit in a process without OMP_NUM_THREADS (the run's own, not its CV
    workers: joblib sets it there). Asked early, the run starts lscpu while it is small, not at
    the winner's refit with its data loaded: the child shares the parent's pages until it runs
    lscpu, and a sum of the run's processes' RSS counted them twice (100k rows: 1,696 MB for a
    moment, against 1,200). `tabpipe train` asks before it imports its libraries."""
    return joblib.cpu_count(only_physical_cores=True)


def stop_with_the_parent() -> None:
    """In a local CV worker (loky's), exit once the process that started it is gone. Killed with
    SIGKILL (by the OOM killer, say), that process cannot end its workers, and they would wait
    on their queue for ever. Started once per worker; does nothing in any other process (the
    main one, a Dask worker)."""
    if _watching_parent.is_set() or not is_local_cv_worker():
        return
    _watching_parent.set()
    threading.Thread(
        target=exit_when_orphaned, args=(os.getppid(),), name="stop-with-the-parent", daemon=True
    ).start()


def begin_worker_job() -> None:
    """Where every job of a local CV worker begins: the worker watches for its parent's end
    (stop_with_the_parent) and hands back what the jobs before this one freed, which glibc keeps
    for reuse while the next job is another fold's or another stage's (100k rows, class
    weights: the run's memory peak 1,284 -> 1,246 MB). Does nothing in any other process."""
    if not is_local_cv_worker():
        return
    stop_with_the_parent()
    return_freed_memory()


def is_local_cv_worker() -> bool:
    return multiprocessing.current_process().name.startswith("LokyProcess")


def exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:  # re-parented (to init or a subreaper) once the parent dies
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def start_worker_pool(n_jobs: int) -> None:
    """Start joblib's reusable pool of n_jobs processes and have each import what a fit needs
    (seconds), so the search's `Parallel(n_jobs)` finds it ready (joblib reuses a pool of the
    same size). Blocks until the workers are ready: call it in a thread."""
    joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(import_worker_modules)() for _ in range(n_jobs))


def end_worker_fits(*, wait: bool = False) -> None:
    """Kill the local CV workers now, fits in flight and all: the `Parallel` call they were
    working for then raises, and its own abort (joblib's `terminate`) deletes the data it shared
    with them in /dev/shm; a later call starts a new pool (the time budget's watch, a check that
    fails after the pool's early start). Without `wait` it returns at once: waiting, in a thread
    other than that call's, could deadlock (the executor's manager thread, which the wait
    joins, reports the killed fits through that call's lock, which its thread holds while it
    submits). `wait` only when no thread is inside a `Parallel` call: the workers are gone on
    return, and so is what was shared with them."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is None:
        return
    if wait and hasattr(executor, "terminate"):  # joblib's executor (loky's has no shared data)
        executor.terminate(kill_workers=True)
        return
    executor.shutdown(wait=wait, kill_workers=True)
    # Killed here too: a `Parallel` call that then finds the pool shut down makes a new one and
    # shuts this one down again without kill_workers, which would let them finish their jobs.
    for pid in tuple(executor._processes):
        with suppress(OSError):  # gone already
            os.kill(pid, signal.SIGKILL)


def release_worker_pool() -> None:
    """Let the local CV workers go once a run has no more work for them: they exit while the run
    writes its files, instead of at the command's exit, which waited for them (about 0.5 s).
    joblib keeps its reusable pool in loky's module; a later search starts a new one."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=False)


def local_pool_is_running() -> bool:
    """Is joblib's reusable pool of local CV workers up (started by a search here and neither
    released nor broken)? A job sent to a pool that is not would start one: seconds."""
    from joblib.externals.loky import reusable_executor

    flags = getattr(getattr(reusable_executor, "_executor", None), "_flags", None)
    return flags is not None and not flags.shutdown and not flags.broken


def call_recording_warnings(
    function: Callable[..., T], *args: Any, **kwargs: Any
) -> tuple[T, list[Any]]:
    """function(*args, **kwargs) and the warnings it raised, which a worker would only print to
    stderr."""
    begin_worker_job()
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        value = function(*args, **kwargs)
    return value, list(raised)


@dataclass
class WorkerJob(Generic[T]):
    """One call running in a local CV worker; `result` waits for it, raises its error and
    raises its warnings again here (once)."""

    results: Iterator[tuple[T, list[Any]]]
    outcome: tuple[T, list[Any]] | BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self) -> None:
        with self.lock:  # the thread that releases the pool waits too
            if self.outcome is None:
                try:
                    self.outcome = next(self.results)
                except Exception as error:  # raised where the result is asked for
                    self.outcome = error

    def result(self) -> T:
        self.wait()
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        assert self.outcome is not None
        value, raised = self.outcome
        self.outcome = (value, [])
        for warning in raised:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
        return value


def start_in_worker(
    function: Callable[..., T], *args: Any, n_jobs: int, **kwargs: Any
) -> WorkerJob[T]:
    """function(*args, **kwargs) in one of the local CV workers, started now; the pool is the
    search's (n_jobs processes: the same size, so joblib reuses it rather than starting another)."""
    parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator")
    call = joblib.delayed(call_recording_warnings)(function, *args, **kwargs)
    return WorkerJob(parallel([call]))


def import_modules(names: tuple[str, ...]) -> None:
    for name in names:
        import_module(name)


def release_worker_pool_after(jobs: list[WorkerJob[Any]]) -> None:
    """release_worker_pool once these jobs are done, without waiting for them here."""
    if not jobs:
        release_worker_pool()
        return

    def release() -> None:
        for job in jobs:
            job.wait()
        release_worker_pool()

    threading.Thread(target=release, name="release-cv-pool", daemon=True).start()


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


STOP_EVENT_PREFIX = "tabpipe-stop-"
# How stale a worker's answer may be: a scheduler round trip at most this often per process.
STOP_CHECK_SECONDS = 0.5
# The last answer per stop event in this process (when asked, was it set), shared by its threads.
_STOP_ANSWERS: dict[str, tuple[float, bool]] = {}


class SearchStopped(Exception):
    """The run that started this search has stopped (a signal, or cancelled in the Prefect UI)."""


def stop_event_name(flow_run_id: str) -> str:
    """The name of the `distributed.Event` that stops the searches of one flow run."""
    return f"{STOP_EVENT_PREFIX}{flow_run_id}"


@dataclass(frozen=True)
class ClusterStop:
    """One run's stop request, read on a Dask worker; picklable, so it travels with the CV fits."""

    name: str

    def requested(self) -> bool:
        """Has the run asked its searches to stop? Once set, the answer stays yes."""
        checked_at, was_set = _STOP_ANSWERS.get(self.name, (-STOP_CHECK_SECONDS, False))
        now = time.monotonic()
        if was_set or now - checked_at < STOP_CHECK_SECONDS:
            return was_set
        _STOP_ANSWERS[self.name] = (now, False)  # the other threads take this answer meanwhile
        answer = event_is_set(self.name)
        _STOP_ANSWERS[self.name] = (now, answer)
        return answer

    def check(self) -> None:
        """Raise SearchStopped if the run has asked its searches to stop."""
        if self.requested():
            raise SearchStopped(f"the run stopped ({self.name})")


def event_is_set(name: str) -> bool:
    """Is the cluster's event set? No when it cannot be asked: a search never fails for this."""
    from distributed import Event

    try:
        return bool(Event(name).is_set())
    except (OSError, RuntimeError, TimeoutError, ValueError):
        return False


def cluster_stop(flow_run_id: str | None) -> ClusterStop | None:
    """The stop check of a flow run's search on a Dask worker; None elsewhere (a local search is
    stopped with its process: nothing to check, nothing imported)."""
    if flow_run_id is None or dask_worker_address() is None:
        return None
    return ClusterStop(stop_event_name(flow_run_id))


def request_stop(address: str, flow_run_ids: list[str], *, timeout: float) -> None:
    """Set the stop event of each flow run on the cluster at address (the client side). Raises
    OSError or TimeoutError when the scheduler does not answer within timeout."""
    from distributed import Client, Event

    with Client(address, timeout=timeout, set_as_default=False) as client:
        for flow_run_id in flow_run_ids:
            Event(stop_event_name(flow_run_id), client=client).set()
