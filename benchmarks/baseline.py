"""The hand-written floor: the same estimators, grids, sampler and folds as the tabpipe benchmark
config, written as plain pandas + imblearn Pipeline + GridSearchCV. No Prefect, no validation,
no plots, no report: only the machine-learning work. Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
from imblearn.over_sampling import SMOTE, SMOTENC
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, f1_score, make_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# Same as benchmarks/run.py's tabpipe config.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "logistic_regression": {"C": [0.1, 1.0]},
    "hist_gradient_boosting": {"max_leaf_nodes": [31, 63]},
}


def read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path, engine="pyarrow")
    return pd.read_csv(path)


def estimator(family: str, seed: int) -> Any:
    if family == "logistic_regression":
        return LogisticRegression(max_iter=2000, random_state=seed)
    return HistGradientBoostingClassifier(random_state=seed)


def sampler(rebalance: str, categorical: list[str], seed: int) -> Any:
    if rebalance == "random_under":
        return RandomUnderSampler(random_state=seed)
    if rebalance == "smote":
        if categorical:
            return SMOTENC(categorical_features=categorical, random_state=seed)
        return SMOTE(random_state=seed)
    return "passthrough"


def pipeline(family: str, numeric: list[str], categorical: list[str], seed: int) -> Pipeline:
    impute = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), numeric),
            ("categorical", SimpleImputer(strategy="most_frequent"), categorical),
        ],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    encode = ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ],
        sparse_threshold=0.0,
    )
    return Pipeline(
        [
            ("impute", impute),
            ("rebalance", "passthrough"),
            ("encode", encode),
            ("model", estimator(family, seed)),
        ]
    )


def run(
    path: Path,
    target: str,
    rebalance: str,
    positive_label: str | None,
    seed: int,
    folds: int,
    n_jobs: int,
) -> dict[str, Any]:
    started = time.perf_counter()
    frame = read(path)
    y = frame.pop(target).astype(str)
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]
    X_train, X_test, y_train, y_test = train_test_split(
        frame, y, test_size=0.2, stratify=y, random_state=seed
    )
    binary = y.nunique() == 2
    if binary:
        positive = positive_label or y.value_counts().idxmin()
        scoring: Any = make_scorer(
            average_precision_score,
            response_method=("decision_function", "predict_proba"),
            pos_label=positive,
        )
    else:
        scoring = "f1_macro"
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    loaded = time.perf_counter()
    searches = {}
    for family, grid in GRIDS.items():
        param_grid: dict[str, list[Any]] = {f"model__{k}": v for k, v in grid.items()}
        param_grid["rebalance"] = [sampler(rebalance, categorical, seed)]
        param_grid["model__class_weight"] = ["balanced" if rebalance == "class_weight" else None]
        search = GridSearchCV(
            pipeline(family, numeric, categorical, seed),
            param_grid,
            scoring=scoring,
            cv=cv,
            n_jobs=n_jobs,
        )
        searches[family] = search.fit(X_train, y_train)
    searched = time.perf_counter()
    best_family = max(searches, key=lambda f: searches[f].best_score_)
    best = searches[best_family]
    if binary:
        column = list(best.classes_).index(positive)
        test_score = average_precision_score(
            y_test == positive, best.predict_proba(X_test)[:, column]
        )
    else:
        test_score = f1_score(y_test, best.predict(X_test), average="macro")
    ended = time.perf_counter()
    return {
        "best_family": best_family,
        "best_params": {k: str(v) for k, v in best.best_params_.items()},
        "cv_score": float(best.best_score_),
        "test_score": float(test_score),
        "stage_seconds": {
            "load_and_split": round(loaded - started, 3),
            "search": round(searched - loaded, 3),
            "evaluate": round(ended - searched, 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("--target", required=True)
    parser.add_argument("--rebalance", default="class_weight")
    parser.add_argument("--positive-label")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=-1)
    args = parser.parse_args()
    result = run(
        args.data,
        args.target,
        args.rebalance,
        args.positive_label,
        args.seed,
        args.folds,
        args.n_jobs,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
