"""Stronger families, measured before adopted: LightGBM, XGBoost and CatBoost against the
families tabpipe has, on the bundled data and (with --corpus DIR) a few tables of the
development corpus. One subprocess per
(table, family) so peak memory is that family's own; every family gets the same preparation
(tabpipe's imputer + scaler/one-hot), one thread, default parameters, 3-fold CV on 80% of the
rows and one score on the other 20%. Not part of `make bench`: the candidates need not be
installed (they are skipped with a note). Prints JSON lines; `--table` prints a Markdown table.

    python -m benchmarks.families --corpus DIR           # every table and family
    python -m benchmarks.families --table results.jsonl  # the Markdown table
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("TABPIPE_CORPUS", "corpus"))  # set by --corpus
TABLES: dict[str, dict[str, Any]] = {
    "penguins": {"path": ROOT / "data" / "penguins.csv", "target": "species"},
    "caravan": {"path": ROOT / "data" / "caravan.csv", "target": "Purchase", "positive": "Yes"},
    "credit_data": {"path": CORPUS / "credit_data.csv", "target": "Status", "positive": "bad"},
    "toronto_arrests": {
        "path": CORPUS / "toronto_arrests.csv",
        "target": "released",
        "positive": "No",
    },
    "nmes_health": {"path": CORPUS / "nmes_health.csv", "target": "health"},
    "hotel_adr": {
        "path": CORPUS / "hotel_adr.csv",
        "target": "avg_price_per_room",
        "regression": True,
        "drop": ["arrival_date"],
    },
    "mpls_stops": {
        "path": CORPUS / "mpls_stops.csv",
        "target": "personSearch",
        "positive": "YES",
        "drop": ["idNum", "date"],
    },
}
FAMILIES = [
    "logistic_or_ridge",
    "random_forest",
    "hist_gradient_boosting",
    "lightgbm",
    "xgboost",
    "catboost",
]


def estimator(family: str, regression: bool, seed: int) -> Any:
    """Default parameters, one thread each (the machine is shared; tabpipe caps threads too)."""
    if family == "logistic_or_ridge":
        from sklearn.linear_model import LogisticRegression, Ridge

        return Ridge() if regression else LogisticRegression(max_iter=2000)
    if family == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestRegressor if regression else RandomForestClassifier
        return cls(n_estimators=200, n_jobs=1, random_state=seed)
    if family == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        return cls(random_state=seed)
    if family == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
        return cls(n_jobs=1, random_state=seed, verbose=-1)
    if family == "xgboost":
        import xgboost

        cls = xgboost.XGBRegressor if regression else xgboost.XGBClassifier
        return cls(n_jobs=1, random_state=seed, tree_method="hist")
    if family == "catboost":
        import catboost

        cls = catboost.CatBoostRegressor if regression else catboost.CatBoostClassifier
        return cls(thread_count=1, random_seed=seed, verbose=False, allow_writing_files=False)
    raise ValueError(family)


def measure_one(table: str, family: str, seed: int = 42) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import average_precision_score, f1_score, root_mean_squared_error
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelEncoder

    from tasks.config import ImputeConfig
    from tasks.model_selection.pipeline import build_encoder, build_imputer

    spec = TABLES[table]
    frame = pd.read_csv(spec["path"]).drop(columns=spec.get("drop", []))
    y_raw = frame.pop(spec["target"])
    regression = bool(spec.get("regression"))
    numeric = [c for c in frame if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame if c not in numeric]
    frame[categorical] = frame[categorical].astype(object)
    try:
        model = estimator(family, regression, seed)
    except ImportError as error:
        return {"table": table, "family": family, "skipped": f"not installed ({error.name})"}
    if regression:
        y = y_raw.astype(float).to_numpy()
        scoring, folds = "neg_root_mean_squared_error", KFold(3, shuffle=True, random_state=seed)
        stratify = None
    else:
        encoder = LabelEncoder().fit(y_raw.astype(str))
        y = encoder.transform(y_raw.astype(str))
        binary = len(encoder.classes_) == 2
        scoring = "average_precision" if binary else "f1_macro"
        folds = StratifiedKFold(3, shuffle=True, random_state=seed)
        stratify = y
    pipeline = Pipeline(
        [
            ("impute", build_imputer(numeric, categorical, ImputeConfig())),
            ("encode", build_encoder(numeric, categorical)),
            ("model", model),
        ]
    )
    X_train, X_test, y_train, y_test = train_test_split(
        frame, y, test_size=0.2, random_state=seed, stratify=stratify
    )
    if not regression and binary:
        positive = list(encoder.classes_).index(spec["positive"])
        y_train, y_test = (y_train == positive).astype(int), (y_test == positive).astype(int)
    started = time.perf_counter()
    cv = cross_val_score(pipeline, X_train, y_train, scoring=scoring, cv=folds, n_jobs=1)
    fitted = pipeline.fit(X_train, y_train)
    if regression:
        test = root_mean_squared_error(y_test, fitted.predict(X_test))
    elif binary:
        test = average_precision_score(y_test, fitted.predict_proba(X_test)[:, 1])
    else:
        test = f1_score(y_test, np.asarray(fitted.predict(X_test)).ravel(), average="macro")
    return {
        "table": table,
        "family": family,
        "metric": "rmse" if regression else scoring,
        "cv": float(-cv.mean() if regression else cv.mean()),
        "test": float(test),
        "seconds": round(time.perf_counter() - started, 2),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
    }


def table_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| table | metric | " + " | ".join(FAMILIES) + " |",
        "|---|---|" + "---|" * len(FAMILIES),
    ]
    for table in TABLES:
        cells = {r["family"]: r for r in rows if r["table"] == table}
        if not cells:
            continue
        metric = next((r["metric"] for r in cells.values() if "metric" in r), "")
        row = []
        for family in FAMILIES:
            r = cells.get(family)
            if r is None or "skipped" in r:
                row.append("n/a")
            else:
                row.append(f"{r['test']:.3f} ({r['seconds']:.1f} s, {r['peak_mb']:.0f} MB)")
        lines.append(f"| {table} | {metric} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", nargs=2, metavar=("TABLE", "FAMILY"))
    parser.add_argument("--tables", nargs="+", default=list(TABLES))
    parser.add_argument("--families", nargs="+", default=FAMILIES)
    parser.add_argument("--table", type=Path, help="Print the Markdown table of a results file.")
    parser.add_argument("--corpus", type=Path, help="The corpus folder (its CSV files).")
    args = parser.parse_args()
    if args.corpus:
        os.environ["TABPIPE_CORPUS"] = str(args.corpus.resolve())
    if args.table:
        rows = [json.loads(line) for line in args.table.read_text().splitlines() if line.strip()]
        print(table_markdown(rows))
        return
    if args.one:
        print(json.dumps(measure_one(*args.one)), flush=True)
        return
    for table in args.tables:
        for family in args.families:
            command = [sys.executable, "-m", "benchmarks.families", "--one", table, family]
            # One OpenMP thread: spinning threads collapse on a loaded machine (README).
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
            line = done.stdout.strip().splitlines()[-1:] or [
                json.dumps({"table": table, "family": family, "skipped": done.stderr[-300:]})
            ]
            print(line[0], flush=True)


if __name__ == "__main__":
    main()
