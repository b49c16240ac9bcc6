"""The champion registry (runs/registry.json) and the list of runs.

One champion per dataset name. The file is only ever replaced whole (write a hidden temporary
file, then rename), under a lock, so concurrent runs never leave it half written.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tasks.errors import RegistryError, StorageError, storage_error
from tasks.run.rundir import PARTIAL_SUFFIX, to_jsonable, utc_now

REGISTRY_FILE = "registry.json"
LOCK_FILE = ".registry.lock"
# The history keeps the latest decisions only; each run's own files keep all of its numbers.
MAX_HISTORY = 500


# What champion.json's "registry" field says about the run's champion claim.
PENDING = "pending"  # written before the registry answered; left so only by a crash or kill
RECORDED = "recorded"  # the registry made this run champion
UNCHANGED = "unchanged"  # the registry kept its champion
NOT_RECORDED = "not-recorded"  # the registry could not be written; this run is not champion


class ChampionEntry(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    run_id: str
    since: str | None = None
    reason: str | None = None


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    dataset: str
    run_id: str
    replaced: str | None = None
    at: str | None = None
    reason: str | None = None


class RegistryModel(BaseModel):
    """runs/registry.json, checked whenever it is read."""

    model_config = ConfigDict(extra="allow", strict=True)
    champions: dict[str, ChampionEntry]
    history: list[HistoryEntry] = []


def empty_registry() -> dict[str, Any]:
    return {"champions": {}, "history": []}


def damage_of(error: ValidationError) -> str:
    """The first broken key of the registry, e.g. "'history': Input should be a valid list"."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "top level"
    return f"'{where}': {first['msg']}"


def read_registry(runs_dir: Path) -> dict[str, Any]:
    """The registry, or an empty one when no run has become champion yet; a damaged one is a
    RegistryError naming the file and the first broken key."""
    path = runs_dir / REGISTRY_FILE
    if not path.is_file():
        return empty_registry()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RegistryError(f"Registry '{path}' cannot be read: {error.strerror}.") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RegistryError(
            f"Registry '{path}' is not valid JSON; `tabpipe runs --check --repair` sets it "
            "aside and rebuilds it from the runs."
        ) from error
    try:
        registry = RegistryModel.model_validate(raw)
    except ValidationError as error:
        raise RegistryError(
            f"Registry '{path}' is damaged ({damage_of(error)}); `tabpipe runs --check "
            "--repair` sets it aside and rebuilds it from the runs."
        ) from error
    return registry.model_dump(mode="json")


def write_registry(runs_dir: Path, registry: dict[str, Any]) -> Path:
    """Replace the registry whole: readers see the old file or the new one, never a mix."""
    path = runs_dir / REGISTRY_FILE
    temporary = runs_dir / f".{REGISTRY_FILE}.{secrets.token_hex(4)}.tmp"
    text = json.dumps(to_jsonable(registry), indent=2, sort_keys=True, allow_nan=False)
    try:
        temporary.write_text(text + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise storage_error(path, error) from error
    return path


@contextmanager
def registry_lock(runs_dir: Path) -> Iterator[None]:
    """Hold the registry's exclusive lock (one writer of registry.json at a time)."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        lock = (runs_dir / LOCK_FILE).open("a")
    except OSError as error:
        raise storage_error(runs_dir / LOCK_FILE, error) from error
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def locked_registry(runs_dir: Path) -> Iterator[dict[str, Any]]:
    """Read, let the caller change, and write the registry while holding an exclusive lock."""
    with registry_lock(runs_dir):
        registry = read_registry(runs_dir)
        yield registry
        write_registry(runs_dir, registry)


def champion_run_id(runs_dir: Path, dataset: str) -> str | None:
    entry = read_registry(runs_dir)["champions"].get(dataset)
    return entry["run_id"] if entry else None


def champion_dir(runs_dir: Path, dataset: str) -> Path:
    """The directory of a dataset's champion run; a RegistryError names what is missing."""
    run_id = champion_run_id(runs_dir, dataset)
    if run_id is None:
        raise RegistryError(
            f"No champion for '{dataset}' in '{runs_dir / REGISTRY_FILE}'; train a run or "
            "`tabpipe promote RUN` first."
        )
    return runs_dir / run_id


def crown(
    registry: dict[str, Any], dataset: str, run_id: str, reason: str, evidence: dict[str, Any]
) -> None:
    """Make run_id the dataset's champion, and remember the decision."""
    previous = registry["champions"].get(dataset, {}).get("run_id")
    registry["champions"][dataset] = {"run_id": run_id, "since": utc_now(), "reason": reason}
    registry["history"].append(
        {
            "dataset": dataset,
            "run_id": run_id,
            "replaced": previous,
            "at": utc_now(),
            "reason": reason,
            **evidence,
        }
    )
    del registry["history"][:-MAX_HISTORY]


def pending_decision(decision: dict[str, Any]) -> dict[str, Any]:
    """What a run's files say before the registry answers: a run that would become champion is
    not champion yet (a crash before the registry write must never leave it claiming so)."""
    if not decision.get("becomes_champion"):
        return {**decision, "registry": UNCHANGED}
    return {
        **decision,
        "becomes_champion": False,
        "registry": PENDING,
        "judged_reason": decision["reason"],
        "reason": (
            "waiting for the champion registry; a run left in this state stopped before the "
            "registry recorded it, and is not champion (`tabpipe runs --check`)."
        ),
    }


def settled_decision(pending: dict[str, Any], recorded: bool) -> dict[str, Any]:
    """A pending decision once the registry's state is known (used by `tabpipe runs --check`)."""
    decision = {k: v for k, v in pending.items() if k != "judged_reason"}
    if recorded:
        reason = pending.get("judged_reason") or "recorded by the champion registry."
        return {**decision, "becomes_champion": True, "registry": RECORDED, "reason": reason}
    return {
        **decision,
        "becomes_champion": False,
        "registry": NOT_RECORDED,
        "reason": "the run stopped before the champion registry recorded it, so it is not "
        "champion.",
    }


def record_champion(runs_dir: Path, decision: dict[str, Any]) -> dict[str, Any]:
    """Apply a champion decision of a finished run under the registry's lock, and return the
    registry's answer: the only source of "this run is champion". A champion that changed
    while this run was judged is kept."""
    if not decision.get("becomes_champion"):
        return {**decision, "registry": UNCHANGED}
    with locked_registry(runs_dir) as registry:
        current = registry["champions"].get(decision["dataset"], {}).get("run_id")
        if current != decision["compared_with"]:
            judged = (
                f"against '{decision['compared_with']}'"
                if decision["compared_with"]
                else "(there was no champion then)"
            )
            return {
                **decision,
                "becomes_champion": False,
                "registry": UNCHANGED,
                "outcome": "champion-changed-meanwhile",
                "note": "champion changed meanwhile",
                "reason": (
                    f"run '{current}' became champion while this run was judged {judged}; "
                    "this run was not compared with it, so the champion stays."
                ),
            }
        evidence = {k: decision.get(k) for k in ("metric", "difference", "ci_low", "ci_high")}
        crown(registry, decision["dataset"], decision["run_id"], decision["reason"], evidence)
    return {**decision, "registry": RECORDED}


def champion_answer(runs_dir: Path, decision: dict[str, Any]) -> dict[str, Any]:
    """record_champion for the end of a training run: a registry that cannot be read or written
    leaves the run complete but not champion, and the answer says why."""
    try:
        return record_champion(runs_dir, decision)
    except (RegistryError, StorageError) as error:
        return {
            **decision,
            "becomes_champion": False,
            "registry": NOT_RECORDED,
            "reason": f"the champion registry could not record this run: {error}",
        }


def read_json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def run_dataset(manifest: dict[str, Any], metrics: dict[str, Any] | None) -> str:
    """A run's dataset name: metrics.json says it; a failed run's config still does."""
    if metrics and metrics.get("dataset"):
        return str(metrics["dataset"])
    config = manifest.get("config") or {}
    return str(config.get("name") or Path(str(config.get("data", "unknown"))).stem)


# The regression selection metrics (scorer names) and the test metric each negates.
NEGATED_ERRORS = {
    "neg_root_mean_squared_error": "rmse",
    "neg_mean_squared_error": "mse",
    "neg_mean_absolute_error": "mae",
}


def selection_score(metrics: dict[str, Any]) -> float | None:
    """The test value of the run's selection metric (None when undefined)."""
    test = metrics.get("test_metrics") or {}
    metric = metrics.get("selection_metric")
    named = {
        "f1": (test.get("binary") or {}).get("f1"),
        "f1_macro": (test.get("macro") or {}).get("f1"),
        "f1_micro": (test.get("micro") or {}).get("f1"),
    }
    value = named[metric] if metric in named else test.get(str(metric))
    if str(metric) in NEGATED_ERRORS:  # scikit-learn's scorers negate errors: higher is better
        error = test.get(NEGATED_ERRORS[str(metric)])
        value = -error if isinstance(error, int | float) else None
    return float(value) if isinstance(value, int | float) else None


def run_row(run_dir: Path, champions: dict[str, str]) -> dict[str, Any]:
    """One line of `tabpipe runs`: status, key metrics, and whether it is its dataset's champion."""
    manifest = read_json_or_none(run_dir / "manifest.json") or {}
    metrics = read_json_or_none(run_dir / "metrics.json")
    dataset = run_dataset(manifest, metrics)
    return {
        "run_id": run_dir.name,
        "dataset": dataset,
        "status": manifest.get("status", "unknown"),
        "started_at": manifest.get("started_at"),
        "best_model": (metrics or {}).get("best_model", {}).get("family"),
        "metric": (metrics or {}).get("selection_metric"),
        "test_score": selection_score(metrics) if metrics else None,
        "champion": champions.get(dataset) == run_dir.name,
        "error": manifest.get("error"),
        "champion_note": champion_note(run_dir, champions.get(dataset) == run_dir.name),
    }


def champion_note(run_dir: Path, is_champion: bool) -> str | None:
    """Said of a run stopped (a crash or kill) before its files said the registry's answer."""
    decision = read_json_or_none(run_dir / "champion.json") or {}
    if decision.get("registry") != PENDING:
        return None
    if is_champion:
        return "champion.json still says pending (see `tabpipe runs --check`)"
    return "champion decision never recorded (see `tabpipe runs --check`)"


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Every run directory (completed and failed), newest first; staging dirs are not runs."""
    if not runs_dir.is_dir():
        return []
    champions = {
        name: entry["run_id"] for name, entry in read_registry(runs_dir)["champions"].items()
    }
    rows = [
        run_row(path, champions)
        for path in runs_dir.iterdir()
        if path.is_dir()
        and not path.name.startswith(".")
        and not path.name.endswith(PARTIAL_SUFFIX)
    ]
    return sorted(rows, key=lambda r: (r["started_at"] or "", r["run_id"]), reverse=True)


def resolve_run_dir(reference: str, runs_dir: Path) -> Path:
    """A run given as a directory path or as a run id inside runs_dir."""
    as_path = Path(reference)
    for candidate in (as_path, runs_dir / reference):
        if (candidate / "manifest.json").is_file():
            return candidate
    raise RegistryError(
        f"Run '{reference}' is neither a run directory nor a run id in '{runs_dir}'."
    )
