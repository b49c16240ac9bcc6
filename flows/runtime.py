"""What every flow needs around its steps: parameters, the resolved config, run names, cores.

The config is resolved here once per run (the CLI resolves it before Prefect starts and hands the
result to the flow; a deployment's run resolves it when it starts)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tasks.checks import load_config
from tasks.config import RunConfig
from tasks.data.read import LoadedTable
from tasks.errors import ConfigError


class TrainParameters(BaseModel):
    """What the Prefect UI's run form asks for: a config, or a data file and its target."""

    config: str | None = Field(None, description="A YAML config, e.g. configs/penguins.yaml.")
    data: str | None = Field(None, description="A CSV or Parquet file (when no config is given).")
    target: str | None = Field(None, description="The column to predict (with data).")
    overrides: list[str] = Field(default_factory=list, description="key=value config overrides.")


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_plan(n_families: int, cores: int) -> tuple[int, int]:
    """Families at once and the threads each may use, so the cores are busy but never
    oversubscribed; their CV fits share one pool of `cores` worker processes (joblib's)."""
    concurrent = max(1, min(cores, n_families))
    return concurrent, max(1, cores // concurrent)


def resolve_config(params: TrainParameters) -> RunConfig:
    """The training config the parameters name, checked (families, grids, schema)."""
    config = load_config(
        Path(params.config) if params.config else None,
        overrides=params.overrides,
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
def stop_at_once_on_sigterm(mark_interrupted: Callable[[int], None]) -> Iterator[None]:
    """A deployment's run (started by `tabpipe serve` or a worker) told to stop with SIGTERM
    marks its run directory and exits at once: the family searches in flight would otherwise
    keep the process (and `tabpipe serve`'s shutdown) for as long as their fits take, and an
    exception raised from a signal handler can be swallowed (inside a weakref callback). The
    runner that sent SIGTERM records the flow run as cancelled. `tabpipe train` runs keep
    Prefect's own handling."""
    from prefect.runtime import deployment

    served = deployment.id is not None
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
