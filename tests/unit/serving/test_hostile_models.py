"""Hostile model files: a crafted pickle or skops file never runs, a card written by anyone but
this machine's key is refused, and models of failed or unfinished runs need --allow-failed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import joblib
import pytest
import skops.io as sio

from flows.cli.main import main
from tasks.data.read import file_sha256
from tasks.errors import ConfigError, ModelIntegrityError, UntrustedModelError
from tasks.run.model_io import load_checked_model, signed_card
from tasks.serving.predict import load_run_model
from tests.conftest import make_frame
from tests.trained_run import TrainedRun


class PickleBomb:
    """Unpickling it creates the marker file (what an attacker's code would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


class SetStateBomb:
    """Built by skops only if trusted: its __setstate__ creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __getstate__(self) -> dict[str, Any]:
        return {"marker": self.marker}

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).touch()
        self.marker = state["marker"]


def rewrite_card_hash(model_path: Path, new_model: Path | None = None) -> Path:
    """What an attacker who can write the runs directory does: matching sha256 in the card."""
    card_path = model_path.parent / "best.json"
    card = json.loads(card_path.read_text())
    target = new_model or model_path
    card["sha256"] = file_sha256(target)
    card["model_file"] = target.name
    card_path.write_text(json.dumps(card))
    return card_path


def predict_cli(run: TrainedRun, tmp_path: Path, *extra: str) -> int:
    data = tmp_path / "new.csv"
    make_frame(n_rows=20, seed=4).drop(columns="label").to_csv(data, index=False)
    return main(
        ["predict", "--model", str(run.run_dir), "--data", str(data), "--out",
         str(tmp_path / "out.csv"), "--runs-dir", str(run.runs_dir), *extra]
    )  # fmt: skip


def test_a_crafted_pickle_with_a_matching_hash_never_runs(
    run_copy: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    bomb = run_copy.run_dir / "models" / "best.joblib"
    joblib.dump(PickleBomb(marker), bomb)
    run_copy.model_path.unlink()  # the run now looks like an old joblib run
    rewrite_card_hash(bomb)
    assert predict_cli(run_copy, tmp_path) == 2
    assert "not signed with this machine's key" in capsys.readouterr().err
    with pytest.raises(UntrustedModelError, match="not signed"):
        load_run_model(str(run_copy.run_dir), run_copy.runs_dir)
    assert not marker.exists()


def test_a_crafted_skops_file_is_refused_even_when_trusted(
    run_copy: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    sio.dump(SetStateBomb(marker), run_copy.model_path)
    rewrite_card_hash(run_copy.model_path)
    assert predict_cli(run_copy, tmp_path, "--trust") == 2
    message = capsys.readouterr().err
    assert "holds types tabpipe never saves" in message and "SetStateBomb" in message
    assert len(message.strip().splitlines()) == 1
    assert not marker.exists()
    # The payload is live: skops would build it if told to trust the type.
    sio.load(run_copy.model_path, trusted=sio.get_untrusted_types(file=run_copy.model_path))
    assert marker.exists()


def test_a_card_with_a_matching_hash_but_no_signature_is_refused(run_copy: TrainedRun) -> None:
    card_path = run_copy.model_path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["decision_threshold"] = 0.01  # any edit by someone without the key
    card_path.write_text(json.dumps(card))
    with pytest.raises(UntrustedModelError, match="not signed with this machine's key"):
        load_checked_model(run_copy.model_path, run_copy.runs_dir)
    card.pop("signature")
    card_path.write_text(json.dumps(card))
    with pytest.raises(UntrustedModelError, match="not signed"):
        load_checked_model(run_copy.model_path, run_copy.runs_dir)


def test_another_machines_key_is_refused(
    run_copy: TrainedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABPIPE_SIGNING_KEY", str(tmp_path / "other" / "signing.key"))
    with pytest.raises(UntrustedModelError, match="No signing key"):
        load_checked_model(run_copy.model_path, run_copy.runs_dir)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "signing.key").write_text("b" * 64)
    with pytest.raises(UntrustedModelError, match="not signed"):
        load_checked_model(run_copy.model_path, run_copy.runs_dir)
    model, _ = load_checked_model(run_copy.model_path, run_copy.runs_dir, trust=True)
    assert hasattr(model, "predict_proba")


def test_a_key_inside_the_runs_directory_is_never_used_to_sign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs_dir = tmp_path / "runs"
    monkeypatch.setenv("TABPIPE_SIGNING_KEY", str(runs_dir / "signing.key"))
    with pytest.raises(ConfigError, match="inside the runs directory"):
        signed_card({"sha256": "0" * 64}, runs_dir)
    assert not (runs_dir / "signing.key").exists()


def test_runs_dir_root_does_not_turn_the_checks_off(run_copy: TrainedRun) -> None:
    card_path = run_copy.model_path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["run_id"] = "someone-else"
    card_path.write_text(json.dumps(card))
    with pytest.raises(UntrustedModelError, match="not signed"):
        load_checked_model(run_copy.model_path, Path("/"))


def mark_run(run_dir: Path, status: str) -> None:
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "status": status}))


def test_a_failed_runs_model_needs_allow_failed(
    run_copy: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mark_run(run_copy.run_dir, "failed")
    assert predict_cli(run_copy, tmp_path) == 2
    err = capsys.readouterr().err
    assert (
        "did not complete (status 'failed'), so its model is not used; pass --allow-failed" in err
    )
    assert predict_cli(run_copy, tmp_path, "--allow-failed") == 0


def test_a_partial_runs_model_needs_allow_failed(run_copy: TrainedRun) -> None:
    partial = run_copy.runs_dir / f".{run_copy.run_dir.name}.partial"
    shutil.move(run_copy.run_dir, partial)
    with pytest.raises(ModelIntegrityError, match="in progress or was interrupted"):
        load_run_model(str(partial), run_copy.runs_dir)
    assert load_run_model(str(partial), run_copy.runs_dir, allow_failed=True).card


def test_an_old_joblib_run_loads_only_with_trust(run_copy: TrainedRun) -> None:
    model, _ = load_checked_model(run_copy.model_path, run_copy.runs_dir)
    legacy = run_copy.model_path.with_name("best.joblib")
    joblib.dump(model, legacy)
    run_copy.model_path.unlink()
    card_path = rewrite_card_hash(legacy)  # signed here, as a pre-skops tabpipe would have
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps(signed_card(card, run_copy.runs_dir)))
    with pytest.raises(UntrustedModelError, match="joblib pickle from an older tabpipe"):
        load_run_model(str(run_copy.run_dir), run_copy.runs_dir)
    loaded = load_run_model(str(run_copy.run_dir), run_copy.runs_dir, trust=True)
    assert loaded.card["model_file"] == "best.joblib"


def test_joblib_is_an_opt_in_export_of_a_checked_model(
    trained_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exported.joblib"
    argv = ["export-joblib", "--model", str(trained_run.run_dir), "--out", str(out),
            "--runs-dir", str(trained_run.runs_dir)]  # fmt: skip
    assert main(argv) == 0
    assert "loading it runs code" in capsys.readouterr().out
    assert hasattr(joblib.load(out), "predict_proba")
