"""One training flow on a table whose column names are hostile: keywords, pandas and
scikit-learn parameter names, dots, brackets, spaces, markup, unicode, emoji, numbers. The run
completes, every name survives into the profile, report and saved model, and the model predicts
the raw file again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from flows.runtime import TrainParameters
from flows.train import train
from tasks.data.read import read_table
from tasks.serving.predict import load_run_model, predict_rows

HOSTILE = {
    "columns": "numeric",  # DataFrame.assign(columns=...) was the crash
    "class": "categorical",
    " lead and trail ": "numeric",
    "x.y[0]": "categorical",  # 40 levels: target statistics
    "<b>when</b> 🕑": "datetime",
    "42": "categorical",  # whole-number codes 1-4
    "ticket-ID": "identifier",
}
TARGET = "sample_weight"


def hostile_table(n_rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    y = rng.random(n_rows) < 0.35
    values = [
        rng.normal(size=n_rows) + 1.2 * y,
        rng.choice(["a", "b", "c"], size=n_rows),
        rng.gamma(2.0, size=n_rows),
        [f"shop-{i}" for i in rng.integers(0, 40, n_rows)],
        pd.date_range("2024-03-01", periods=n_rows, freq="11h").strftime("%Y-%m-%dT%H:%M:%SZ"),
        rng.integers(1, 5, n_rows),
        [f"T{i:06d}" for i in range(n_rows)],
        np.where(y, "spam", "ham"),
    ]
    frame = pd.concat([pd.Series(v) for v in values], axis=1)
    return frame.set_axis([*HOSTILE, TARGET], axis="columns")


def test_a_run_with_hostile_column_names_completes_and_predicts(
    prefect_harness: None, tmp_path: Path
) -> None:
    data = tmp_path / "hostile names.csv"
    hostile_table().to_csv(data, index=False)
    config = tmp_path / "hostile.yaml"
    settings = {
        "data": str(data),
        "target": TARGET,
        "runs_dir": str(tmp_path / "runs"),
        "models": ["logistic_regression", "hist_gradient_boosting"],
        "split": {"cv_folds": 3, "test_size": 0.25},
        "columns": {"class": "categorical"},  # a declared role under a keyword name
    }
    config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    run = Path(train(TrainParameters(config=str(config))))

    profile = json.loads((run / "profile.json").read_text(encoding="utf-8"))
    roles = {name: role["role"] for name, role in profile["column_roles"].items()}
    assert roles == HOSTILE
    assert "columns.class" in profile["column_roles"]["class"]["reason"]
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["encoding"]["target_encoded_columns"] == ["x.y[0]"]
    assert manifest["encoding"]["calendar_features"][0].startswith("<b>when</b> 🕑__")
    report = (run / "report.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;when&lt;/b&gt;" in report and "<b>when</b>" not in report

    run_model = load_run_model(str(run), tmp_path / "runs")
    raw = read_table(data).frame
    predictions = predict_rows(run_model, raw, str(data))
    assert len(predictions) == len(raw)
    assert set(predictions["y_pred"]) <= {"spam", "ham"}
