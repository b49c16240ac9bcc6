"""Flow runs started by a tabpipe command keep Prefect's heartbeats (the server marks a killed run
crashed by them) but do not wait for the heartbeat thread when they end."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prefect import flow, flow_engine
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.server import heartbeats_left_to_end_alone

HEARTBEAT_SECONDS = 30  # Prefect's smallest


@flow(name="heartbeat-probe")
def probe() -> str:
    return "done"


def heartbeat_threads() -> list[threading.Thread]:
    """Prefect's heartbeat loops (a daemon thread running `heartbeat_loop` in a copied context)."""
    return [
        thread
        for thread in threading.enumerate()
        if any(getattr(arg, "__name__", "") == "heartbeat_loop" for arg in thread._args)  # type: ignore[attr-defined]
    ]


def test_a_run_sends_its_heartbeat_and_ends_without_waiting_for_the_thread(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    emit = flow_engine.FlowRunEngine._emit_flow_run_heartbeat

    def recorded(engine: Any, *args: Any) -> None:
        sent.append(engine.flow_run.id)
        emit(engine, *args)

    monkeypatch.setattr(flow_engine.FlowRunEngine, "_emit_flow_run_heartbeat", recorded)
    prefect_engine_heartbeats = flow_engine._send_heartbeats
    with (
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: HEARTBEAT_SECONDS}),
        heartbeats_left_to_end_alone(),
    ):
        assert probe() == "done"
        left_running = heartbeat_threads()  # asleep in its one-second wait: not joined

    assert len(sent) == 1  # the run's first heartbeat went out
    assert len(left_running) == 1
    left_running[0].join(timeout=3)  # it sees the stop within a second and ends by itself
    assert heartbeat_threads() == []
    assert flow_engine._send_heartbeats is prefect_engine_heartbeats  # Prefect's own, after


def test_without_it_prefect_waits_for_the_heartbeat_thread(prefect_harness: None) -> None:
    # The behaviour the command avoids: the same run, joined (so nothing is left running).
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: HEARTBEAT_SECONDS}):
        assert probe() == "done"
        assert heartbeat_threads() == []
