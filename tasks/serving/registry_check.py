"""`tabpipe runs --check`: does the champion registry agree with the runs, and the repair.

The registry (runs/registry.json) is the only source of who is champion. It can disagree with
the runs after a crash, a kill -9 or a hand edit:
- the registry file is damaged (not JSON, wrong types);
- it names a champion run that no longer exists or did not complete;
- a run's champion.json is still "pending": the run stopped between its rename into place and
  the registry write (or the registry was written and the run stopped before saying so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.errors import RegistryError, storage_error
from tasks.run.outputs import rewrite_champion_decision
from tasks.run.rundir import PARTIAL_SUFFIX, utc_now
from tasks.serving.registry import (
    PENDING,
    RECORDED,
    REGISTRY_FILE,
    empty_registry,
    read_json_or_none,
    read_registry,
    registry_lock,
    run_dataset,
    settled_decision,
    write_registry,
)


@dataclass(frozen=True)
class Finding:
    """One disagreement: what it concerns, what is wrong, and what --repair does about it."""

    subject: str
    problem: str
    repair: str


@dataclass(frozen=True)
class RunFacts:
    run_dir: Path
    dataset: str
    completed: bool
    ended_at: str
    decision: dict[str, Any]


def run_facts(runs_dir: Path) -> list[RunFacts]:
    """Every published run (staging directories are not runs), oldest first."""
    if not runs_dir.is_dir():
        return []
    facts = []
    for path in runs_dir.iterdir():
        if not path.is_dir() or path.name.startswith(".") or path.name.endswith(PARTIAL_SUFFIX):
            continue
        manifest = read_json_or_none(path / "manifest.json") or {}
        metrics = read_json_or_none(path / "metrics.json")
        facts.append(
            RunFacts(
                run_dir=path,
                dataset=run_dataset(manifest, metrics),
                completed=manifest.get("status") == "completed" and metrics is not None,
                ended_at=str(manifest.get("ended_at") or ""),
                decision=read_json_or_none(path / "champion.json") or {},
            )
        )
    return sorted(facts, key=lambda f: (f.ended_at, f.run_dir.name))


def was_crowned(run: RunFacts) -> bool:
    """Its own files say the registry made it champion when it finished."""
    decision = run.decision
    return bool(decision.get("becomes_champion")) and decision.get("registry", RECORDED) == RECORDED


def crowned_in(registry: dict[str, Any], run: RunFacts) -> bool:
    current = registry["champions"].get(run.dataset, {}).get("run_id")
    history = {(h["dataset"], h["run_id"]) for h in registry["history"]}
    return current == run.run_dir.name or (run.dataset, run.run_dir.name) in history


def rebuilt_registry(runs: list[RunFacts]) -> dict[str, Any]:
    """The registry the runs' own champion.json files imply: per dataset, the last completed run
    the registry crowned. (Promotions by hand are not in the runs' files.)"""
    registry = empty_registry()
    for run in runs:  # oldest first, so the last one crowned wins
        if not (run.completed and was_crowned(run)):
            continue
        previous = registry["champions"].get(run.dataset, {}).get("run_id")
        reason = str(run.decision.get("reason") or "rebuilt from the run's champion.json.")
        registry["champions"][run.dataset] = {
            "run_id": run.run_dir.name,
            "since": run.ended_at or None,
            "reason": reason,
        }
        registry["history"].append(
            {
                "dataset": run.dataset,
                "run_id": run.run_dir.name,
                "replaced": previous,
                "at": run.ended_at or None,
                "reason": f"rebuilt by `tabpipe runs --check --repair`: {reason}",
            }
        )
    return registry


def fallback_champion(
    registry: dict[str, Any], dataset: str, usable: set[str], wrong: str
) -> str | None:
    """The latest earlier champion of the dataset (from the history) that is still usable."""
    for entry in reversed(registry["history"]):
        if entry["dataset"] == dataset and entry["run_id"] != wrong and entry["run_id"] in usable:
            return str(entry["run_id"])
    return None


def champion_findings(registry: dict[str, Any], runs: list[RunFacts]) -> list[Finding]:
    usable = {run.run_dir.name for run in runs if run.completed}
    existing = {run.run_dir.name for run in runs}
    findings = []
    for dataset, entry in sorted(registry["champions"].items()):
        run_id = entry["run_id"]
        if run_id in usable:
            continue
        state = "did not complete" if run_id in existing else "does not exist"
        fallback = fallback_champion(registry, dataset, usable, run_id)
        findings.append(
            Finding(
                subject=dataset,
                problem=f"the registry names run '{run_id}' as champion, but that run {state}.",
                repair=(
                    f"make '{fallback}' (the previous champion) champion again."
                    if fallback
                    else f"leave '{dataset}' without a champion until a run earns it."
                ),
            )
        )
    return findings


def pending_findings(registry: dict[str, Any] | None, runs: list[RunFacts]) -> list[Finding]:
    findings = []
    for run in runs:
        if run.decision.get("registry") != PENDING:
            continue
        recorded = registry is not None and crowned_in(registry, run)
        findings.append(
            Finding(
                subject=run.run_dir.name,
                problem=(
                    "its champion.json says pending, but the registry did record it."
                    if recorded
                    else "it stopped before the champion registry recorded it (or is finishing "
                    "right now); it is not champion."
                ),
                repair=(
                    "mark its champion.json recorded."
                    if recorded
                    else "mark its champion.json not-recorded."
                ),
            )
        )
    return findings


def check_registry(runs_dir: Path) -> list[Finding]:
    """Every disagreement between the registry and the runs (nothing is changed)."""
    runs = run_facts(runs_dir)
    try:
        registry = read_registry(runs_dir)
    except RegistryError as error:
        damaged = Finding(
            subject=str(runs_dir / REGISTRY_FILE),
            problem=str(error),
            repair="set it aside and rebuild the champions from the runs' champion.json "
            "(champions chosen by `tabpipe promote` are not in them: promote them again).",
        )
        return [damaged, *pending_findings(None, runs)]
    return [*champion_findings(registry, runs), *pending_findings(registry, runs)]


def set_aside(path: Path) -> Path:
    """Keep a damaged registry next to the new one (nothing is lost)."""
    aside = path.with_name(f"{path.name}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    try:
        os.replace(path, aside)
    except OSError as error:
        raise storage_error(path, error) from error
    return aside


def repair_registry(runs_dir: Path) -> list[Finding]:
    """Apply the repairs check_registry proposes, under the registry's lock; returns them."""
    if not check_registry(runs_dir):
        return []  # nothing to do (and no lock file made in a runs directory that has none)
    with registry_lock(runs_dir):
        findings = check_registry(runs_dir)
        if not findings:
            return []
        runs = run_facts(runs_dir)
        try:
            registry = read_registry(runs_dir)
        except RegistryError:
            set_aside(runs_dir / REGISTRY_FILE)
            registry = rebuilt_registry(runs)
        usable = {run.run_dir.name for run in runs if run.completed}
        for dataset, entry in list(registry["champions"].items()):
            if entry["run_id"] in usable:
                continue
            fallback = fallback_champion(registry, dataset, usable, entry["run_id"])
            if fallback is None:
                del registry["champions"][dataset]
                continue
            registry["champions"][dataset] = {
                "run_id": fallback,
                "since": utc_now(),
                "reason": f"restored by `tabpipe runs --check --repair`: '{entry['run_id']}' "
                "was gone.",
            }
        write_registry(runs_dir, registry)
        for run in runs:
            if run.decision.get("registry") == PENDING:
                settled = settled_decision(run.decision, crowned_in(registry, run))
                rewrite_champion_decision(run.run_dir, settled)
    return findings
