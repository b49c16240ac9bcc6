"""Stop means stop: Ctrl-C (SIGINT) or SIGTERM ends a command within seconds, and cleanly.

The first signal unwinds the flow in the main thread (KeyboardInterrupt, or Prefect's own
TerminationSignal while a flow runs), so the run's writer marks the run failed with
"interrupted (SIGINT)" and Prefect records the flow run as crashed. Then, or after
GRACE_SECONDS if the unwinding is stuck behind a busy worker thread, `hard_stop` fails any run
still in staging, stops this process's temporary Prefect server and every child process (CV
workers, resource trackers), prints one line and exits with 128 + the signal number.

A watcher thread learns of each signal through `signal.set_wakeup_fd`, which Python's C-level
handler writes to whichever Python handler (ours or Prefect's) is installed at the time.

With `--dask-address`, family searches run in threads of Dask workers, which outlive this
process: on the first signal (and in `hard_stop`, which a cancellation in the UI also reaches) a
background thread sets each run's stop event on the cluster, and the searches there end at their
next check (tasks/model_selection/parallel.py). `hard_stop` waits for it CLUSTER_STOP_SECONDS at
most: a scheduler that does not answer never holds the stop up."""

from __future__ import annotations

import _thread
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 5.0
CHILD_GRACE_SECONDS = 1.5
CLUSTER_STOP_SECONDS = 3.0
SHARED_MEMORY_SECONDS = 3.0


class Interrupted(KeyboardInterrupt):
    """A stop signal, raised in the main thread so every `finally` and writer on the way runs."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"interrupted ({signal.Signals(signal_number).name})")
        self.signal = signal_number


class StopState:
    """The first stop signal received, and the lock that lets only one clean-up run."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self.lock = threading.Lock()
        self.stopping = False
        self.cancelled_in_ui = False
        self.dask_address: str | None = None  # where this process's family searches run
        self.cluster_stop: threading.Thread | None = None
        self.cluster_lock = threading.Lock()


class CancelledInUI(KeyboardInterrupt):
    """The run's flow run was cancelled in the Prefect UI (what the run's manifest says)."""

    def __init__(self) -> None:
        super().__init__("cancelled in the Prefect UI")


STATE = StopState()


def exit_code(signal_number: int) -> int:
    return 128 + signal_number


def stop_children(rounds: int = 5) -> None:
    """Temporary Prefect servers by their PID (they stop their own workers), then every other
    process this one started: SIGTERM, and SIGKILL for what is still there after a moment. In
    rounds, because task threads still running may start a replacement (a CV pool respawns a
    killed worker) until the process exits."""
    import psutil

    from flows.server import TEMPORARY_SERVERS, stop_pid

    for pid in list(TEMPORARY_SERVERS):
        stop_pid(pid, grace_seconds=3.0)
    for _ in range(rounds):
        children = psutil.Process().children(recursive=True)
        if not children:
            return
        for child in children:
            try:
                child.terminate()
            except psutil.NoSuchProcess:
                continue
        _, alive = psutil.wait_procs(children, timeout=CHILD_GRACE_SECONDS)
        for child in alive:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(alive, timeout=CHILD_GRACE_SECONDS)


def free_shared_memory() -> None:
    """Free what this process keeps in /dev/shm (RAM until a reboot), as its exit would: joblib's
    memmapping folders (its executor's own forced clean-up, which kills the CV workers first, and
    the empty ones of earlier calls) and loky's named semaphores (multiprocessing's exit
    finalizers). `hard_stop` exits with os._exit,
    which skips both, and stops the resource tracker that would unlink them. No pool starts
    after it."""
    from multiprocessing import util

    try:
        if "joblib.externals.loky.reusable_executor" in sys.modules:
            from joblib.externals.loky import reusable_executor

            # loky's lock for making and resizing the pool and submitting to it, kept until the
            # exit: a task thread's next batch would otherwise start a new pool with new folders.
            reusable_executor._executor_lock.acquire()
            executor = reusable_executor._executor
            if executor is not None and hasattr(executor, "terminate"):  # joblib's executor
                executor.terminate(kill_workers=True)
        util._run_finalizers(0)  # type: ignore[attr-defined]  # what its atexit hook runs first
        remove_empty_joblib_folders()
    except Exception:  # best effort: a traceback would break the stop's one line on stderr
        return


def joblib_folders_of_this_process() -> list[Path]:
    """joblib makes a folder named for this process per `Parallel` call (in /dev/shm, or where
    JOBLIB_TEMP_FOLDER says) and removes it at exit."""
    roots = {os.environ.get("JOBLIB_TEMP_FOLDER") or "/dev/shm", tempfile.gettempdir()}
    pattern = f"joblib_memmapping_folder_{os.getpid()}_*"
    return [folder for root in roots for folder in Path(root).glob(pattern)]


def remove_empty_joblib_folders() -> None:
    """rmdir removes only an empty one."""
    for folder in joblib_folders_of_this_process():
        with suppress(OSError):
            folder.rmdir()


def remove_shared_memory_left() -> None:
    """What free_shared_memory could not free in its time (a task thread held loky's lock, or a
    busy machine made the executor's clean-up slower than that): once the child processes are
    stopped, nothing but this exiting process uses its joblib folders and loky's semaphores,
    so they go by name (a mapped file stays readable until the exit unmaps it)."""
    import _multiprocessing
    import shutil

    for folder in joblib_folders_of_this_process():
        shutil.rmtree(folder, ignore_errors=True)
    for semaphore in Path("/dev/shm").glob(f"sem.loky-{os.getpid()}-*"):
        with suppress(OSError):
            _multiprocessing.sem_unlink("/" + semaphore.name.removeprefix("sem."))


def free_shared_memory_briefly() -> None:
    """free_shared_memory, given SHARED_MEMORY_SECONDS at most: a stop never waits on a lock a
    busy task thread holds."""
    thread = threading.Thread(target=free_shared_memory, name="free-shared-memory", daemon=True)
    thread.start()
    thread.join(timeout=SHARED_MEMORY_SECONDS)


def stop_searches_on(dask_address: str | None) -> None:
    """Remember the Dask cluster this process's family searches run on (None: this machine)."""
    STATE.dask_address = dask_address


def flow_runs_of_this_process() -> list[str]:
    """The flow runs of the runs this process has open, or has already marked failed."""
    from tasks.run.outputs import RunWriter

    manifests = [writer.manifest for writer in list(RunWriter.open_writers)]
    for run_dir in list(RunWriter.failed_runs):
        try:
            manifests.append(json.loads((run_dir / "manifest.json").read_text()))
        except (OSError, ValueError):
            continue
    return [str(m["flow_run_id"]) for m in manifests if m.get("flow_run_id")]


def stop_cluster_searches() -> None:
    """Ask the Dask cluster to end this process's searches, once, in a daemon thread."""
    with STATE.cluster_lock:
        if STATE.dask_address is None or STATE.cluster_stop is not None:
            return
        flow_run_ids = flow_runs_of_this_process()
        if not flow_run_ids:
            return
        STATE.cluster_stop = threading.Thread(
            target=request_cluster_stop, args=(STATE.dask_address, flow_run_ids), daemon=True
        )
        STATE.cluster_stop.start()


def request_cluster_stop(address: str, flow_run_ids: list[str]) -> None:
    from tasks.model_selection.parallel import request_stop

    try:
        request_stop(address, flow_run_ids, timeout=CLUSTER_STOP_SECONDS)
    except Exception:  # best effort: a traceback would break the stop's one line on stderr
        return


def await_cluster_stop() -> None:
    """Give the stop request to the cluster a moment to arrive (bounded: the exit comes first)."""
    if STATE.cluster_stop is not None:
        STATE.cluster_stop.join(timeout=CLUSTER_STOP_SECONDS)


def hard_stop(signal_number: int) -> None:
    """Fail open runs, stop child processes and the searches on a Dask cluster, say so in one
    line, and exit now (worker threads still busy with a fit are not waited for)."""
    with STATE.lock:
        already = STATE.stopping
        STATE.stopping = True
    if already:  # another thread is stopping the process: wait for its exit, print nothing
        while True:
            time.sleep(1.0)
    quiet_the_terminal()
    from tasks.run.outputs import RunWriter

    stop_cluster_searches()  # before the runs close: their manifests name the flow runs
    RunWriter.fail_open_runs(Interrupted(signal_number))
    free_shared_memory_briefly()
    stop_children()
    remove_shared_memory_left()
    await_cluster_stop()
    name = signal.Signals(signal_number).name
    failed = RunWriter.failed_runs
    where = f"; the run is in place, marked failed: {failed[-1]}" if failed else ""
    cause = "Cancelled in the Prefect UI" if STATE.cancelled_in_ui else f"Stopped by {name}"
    sys.stderr.write(f"{cause}{where}.\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(exit_code(signal_number))


def raise_interrupted(signal_number: int, frame: FrameType | None) -> None:
    """Our handler (when Prefect's is not installed): unwind the main thread."""
    if STATE.signal_number is None:
        STATE.signal_number = signal_number
    raise Interrupted(signal_number)


def watch_signals(reader: socket.socket) -> None:
    """On the first stop signal, give the main thread GRACE_SECONDS to unwind, then stop hard."""
    while True:
        try:
            data = reader.recv(64)
        except OSError:
            return
        if not data:
            return
        numbers = [n for n in data if n in STOP_SIGNALS]
        if numbers:
            stop_after_grace(numbers[0])
            return


def quiet_the_terminal() -> None:
    """One line on the terminal once a stop began: what the run prints while it unwinds (Prefect's
    logs of crashed states and queued events, loky's warnings about the workers it loses, a
    thread's exception) is not for the person who pressed Ctrl-C."""
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    threading.excepthook = lambda args: None


def stop_after_grace(signal_number: int) -> None:
    if STATE.signal_number is None:
        STATE.signal_number = signal_number
    quiet_the_terminal()
    stop_cluster_searches()  # now, not after the grace: the workers stop while this unwinds
    time.sleep(GRACE_SECONDS)
    hard_stop(STATE.signal_number or signal_number)


def take_ctrl_c(done: threading.Event) -> None:
    """SIGINT is blocked in every thread, and so in every process they start (CV workers, their
    resource tracker: a child inherits the mask), so a terminal's Ctrl-C to the process group
    reaches none of them; this thread alone takes it and raises it in the main thread."""
    signal.sigwait({signal.SIGINT})
    if done.is_set():
        return
    quiet_the_terminal()  # before the main thread unwinds
    _thread.interrupt_main(signal.SIGINT)  # runs raise_interrupted in the main thread
    stop_after_grace(signal.SIGINT)


def start_resource_tracker() -> None:
    """Start the standard library's resource tracker (CV pools register their semaphores with
    it) before SIGINT is blocked: the thread that starts it leaves with SIGINT unblocked
    (CPython 3.11 unblocks rather than restores), so a CV worker that thread started later
    would take a terminal's Ctrl-C and print its own KeyboardInterrupt traceback."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


def stop_signal_in(error: BaseException | None) -> int | None:
    """The stop signal an exception stands for (our Interrupted, Prefect's TerminationSignal)."""
    carried = getattr(error, "signal", None)
    if isinstance(error, Exception) or carried not in STOP_SIGNALS:
        return None
    return int(carried)  # type: ignore[arg-type]


def stop_if_swallowed(previous: Callable[[sys.UnraisableHookArgs], object]) -> Callable[..., None]:
    """A sys.unraisablehook: a stop signal's exception raised inside a callback (a weakref's, a
    __del__) cannot unwind the main thread, and Python would print it and carry on; stop now."""

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        swallowed = stop_signal_in(unraisable.exc_value)
        if swallowed is not None:
            hard_stop(STATE.signal_number or swallowed)
        previous(unraisable)

    return hook


def signal_of(error: BaseException, *, default: int) -> int:
    """The stop signal received first, else the one the exception carries, else default."""
    carried = getattr(error, "signal", None)
    return STATE.signal_number or (carried if isinstance(carried, int) else default)


@contextmanager
def stoppable() -> Iterator[None]:
    """Run a command so that SIGINT and SIGTERM stop it within seconds (see the module doc).
    A stop signal that reaches the end of the block becomes `hard_stop`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous_wakeup = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    previous = {number: signal.signal(number, raise_interrupted) for number in STOP_SIGNALS}
    previous_unraisable = sys.unraisablehook
    sys.unraisablehook = stop_if_swallowed(previous_unraisable)
    threading.Thread(target=watch_signals, args=(reader,), daemon=True).start()
    start_resource_tracker()
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    done = threading.Event()
    ctrl_c = threading.Thread(target=take_ctrl_c, args=(done,), daemon=True)
    ctrl_c.start()
    try:
        yield
    except KeyboardInterrupt as error:  # Interrupted, or a Ctrl-C before our handler was set
        hard_stop(signal_of(error, default=signal.SIGINT))
        raise
    except BaseException as error:
        if STATE.signal_number is None:
            raise
        # Prefect's TerminationSignal (SIGTERM during a flow), or anything the signal caused.
        hard_stop(signal_of(error, default=signal.SIGTERM))
        raise
    finally:
        done.set()
        if ctrl_c.is_alive() and ctrl_c.ident is not None:
            signal.pthread_kill(ctrl_c.ident, signal.SIGINT)  # wakes its sigwait: it just returns
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        for number, handler in previous.items():
            signal.signal(number, handler)
        sys.unraisablehook = previous_unraisable
        signal.set_wakeup_fd(previous_wakeup)
        writer.close()
        reader.close()


CANCEL_POLL_SECONDS = 2.0
CANCELLED_STATES = ("CANCELLING", "CANCELLED")


def flow_run_state(client: httpx.Client, flow_run_id: str) -> str | None:
    import httpx

    try:
        response = client.get(f"flow_runs/{flow_run_id}", timeout=2.0)
        return str(response.json().get("state_type"))
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def mark_cancelled(client: httpx.Client, flow_run_id: str) -> None:
    """Cancelling -> Cancelled: this process was the run's only worker, and it stops now."""
    import httpx

    try:
        client.post(
            f"flow_runs/{flow_run_id}/set_state",
            json={"state": {"type": "CANCELLED", "message": "Stopped by tabpipe."}, "force": True},
            timeout=3.0,
        )
    except httpx.HTTPError:
        return


def watch_for_cancellation(api_url: str) -> None:
    """Poll the state of this process's runs; a run cancelled in the Prefect UI is marked failed
    ("cancelled in the Prefect UI"), its flow run Cancelled, and the process stops as on SIGTERM
    (children stopped, exit 143)."""
    import httpx

    from tasks.run.outputs import RunWriter

    # One client for every poll: a new one loads the CA bundle for its TLS context each time
    # (0.1-0.2 s of CPU per poll, seconds over a run), even for a loopback http:// API.
    with httpx.Client(base_url=f"{api_url.rstrip('/')}/") as client:
        while not STATE.stopping:
            time.sleep(CANCEL_POLL_SECONDS)
            ids = [writer.manifest.get("flow_run_id") for writer in list(RunWriter.open_writers)]
            for flow_run_id in filter(None, ids):
                if flow_run_state(client, str(flow_run_id)) in CANCELLED_STATES:
                    STATE.cancelled_in_ui = True
                    RunWriter.fail_open_runs(CancelledInUI())
                    mark_cancelled(client, str(flow_run_id))
                    hard_stop(signal.SIGTERM)
                    return


def cancellable_from_the_ui(api_url: str) -> None:
    """Start the watcher (a daemon thread: it ends with the process)."""
    threading.Thread(target=watch_for_cancellation, args=(api_url,), daemon=True).start()
