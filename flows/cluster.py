"""The training flow on an existing Dask cluster: the model-family searches run on its workers.

Everything else (load, validate, split, evaluate, write the run) stays in the calling process,
so only the family tasks and their inputs travel to the cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from tasks.config import ConfigError

DASK_SCHEMES = ("tcp", "tls", "inproc", "ws", "wss")


def check_dask_address(address: str) -> str:
    """A scheduler address like tcp://HOST:PORT; anything else is a ConfigError naming it."""
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in DASK_SCHEMES or not parts.hostname or port is None:
        raise ConfigError(
            f"--dask-address '{address}' must look like tcp://HOST:PORT (a Dask scheduler)."
        )
    return address


def train_flow(dask_address: str | None = None) -> Any:
    """The train flow as is, or with its tasks sent to the Dask scheduler at dask_address.

    Deployments use it too: `train_flow("tcp://scheduler:8786").to_deployment(...)`."""
    from flows.train import train

    if dask_address is None:
        return train
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(address=check_dask_address(dask_address))
    return train.with_options(task_runner=runner)  # type: ignore[arg-type]


@contextmanager
def api_shared_with_workers(dask_address: str | None) -> Iterator[None]:
    """Dask workers report their task runs to the flow's Prefect API. With no PREFECT_API_URL,
    start the temporary local server now and name it, or each worker would start its own."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if dask_address is None or PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the same instance Prefect's own client would start
    server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield
