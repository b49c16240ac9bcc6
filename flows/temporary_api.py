"""Prefect's API server for one command (flows/server.py starts it with no server up): it stops
itself when the command that started it is gone, even after a `kill -9` or the OOM killer.

It runs in its own session, so a terminal's Ctrl-C to the command's process group does not kill
it mid-run; the command stops it by its PID when it ends. A command that dies without that is
noticed here: this process is re-parented, and shuts down as on SIGTERM.

    python -m flows.temporary_api --parent PID --port PORT
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

HOST = "127.0.0.1"
PARENT_POLL_SECONDS = 0.5
# uvicorn's graceful shutdown, given this long before the process ends anyway.
SHUTDOWN_GRACE_SECONDS = 10.0


def stop_when_orphaned(parent: int) -> None:
    """Poll the parent; once it is gone, SIGTERM to this process, then exit if that hangs."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(SHUTDOWN_GRACE_SECONDS)
    os._exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parent", type=int, required=True, help="PID of the command")
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    args = parser.parse_args(argv)
    threading.Thread(target=stop_when_orphaned, args=(args.parent,), daemon=True).start()
    import uvicorn

    uvicorn.run(
        "prefect.server.api.server:create_app",
        factory=True,
        host=HOST,
        port=args.port,
        log_level="error",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
