"""The peer: what a careful person writes after one look at a file, to compare tabpipe against.

Drop the obvious identifiers (text columns with mostly distinct values, whole-number columns
unique per row, constant columns), median / most-frequent imputation, scaling and one-hot
(handle_unknown="ignore"), SMOTE when the classes are imbalanced, and six families each with a
small GridSearchCV over 5 folds; the best by CV is refitted and scored once. It trains on every
labelled row that is not in the given test rows (tabpipe's) and scores on exactly those rows.

    python -m benchmarks.peer DATA TARGET --test-rows rows.json --task binary \
        --positive-label YES --out result.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

SEED = 42
FOLDS = 5
# The share of the smallest class under which a careful person reaches for SMOTE.
IMBALANCED_BELOW = 0.35
# A careful person does not start a kernel SVM on more rows than this (hours, not minutes).
SVM_MAX_ROWS = 20_000
# Text columns with more distinct values than this share are identifiers or time stamps at a
# glance.
ID_LIKE_SHARE = 0.5


def classifiers() -> dict[str, tuple[Any, dict[str, list[Any]]]]:
    return {
        "logistic_regression": (LogisticRegression(max_iter=2000), {"C": [0.1, 1.0, 10.0]}),
        "knn": (KNeighborsClassifier(), {"n_neighbors": [5, 15]}),
        "decision_tree": (DecisionTreeClassifier(random_state=SEED), {"max_depth": [4, 8]}),
        "random_forest": (
            RandomForestClassifier(n_estimators=200, random_state=SEED),
            {"max_depth": [None, 10]},
        ),
        "svm": (SVC(random_state=SEED), {"C": [0.5, 2.0]}),
        "hist_gradient_boosting": (
            HistGradientBoostingClassifier(random_state=SEED),
            {"learning_rate": [0.05, 0.1]},
        ),
    }


def regressors() -> dict[str, tuple[Any, dict[str, list[Any]]]]:
    return {
        "ridge": (Ridge(), {"alpha": [0.1, 1.0, 10.0]}),
        "knn": (KNeighborsRegressor(), {"n_neighbors": [5, 15]}),
        "decision_tree": (DecisionTreeRegressor(random_state=SEED), {"max_depth": [4, 8]}),
        "random_forest": (
            RandomForestRegressor(n_estimators=200, random_state=SEED),
            {"max_depth": [None, 10]},
        ),
        "svm": (SVR(), {"C": [0.5, 2.0]}),
        "hist_gradient_boosting": (
            HistGradientBoostingRegressor(random_state=SEED),
            {"learning_rate": [0.05, 0.1]},
        ),
    }


def obvious_drops(features: pd.DataFrame) -> list[str]:
    """Identifiers and constants a person sees at a glance."""
    drops = []
    n_rows = len(features)
    for column in features.columns:
        values = features[column]
        distinct = values.nunique()
        numeric = pd.api.types.is_numeric_dtype(values)
        constant = distinct <= 1
        text_id = not numeric and distinct > ID_LIKE_SHARE * n_rows
        number_id = numeric and distinct == n_rows and values.dropna().mod(1).eq(0).all()
        if constant or text_id or number_id:
            drops.append(column)
    return drops


def preprocessor(features: pd.DataFrame) -> ColumnTransformer:
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    categorical = [c for c in features.columns if c not in numeric]
    return ColumnTransformer(
        [
            (
                "numeric",
                SkPipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                numeric,
            ),
            (
                "categorical",
                SkPipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("one_hot", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                categorical,
            ),
        ],
        sparse_threshold=0.0,  # histogram gradient boosting takes dense input only
    )


def scores_of(model: Any, X: pd.DataFrame, positive: str) -> np.ndarray:
    """The positive class's score: probability when there is one, else the decision function."""
    classes = list(model.classes_)
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))[:, classes.index(positive)]
    decision = np.asarray(model.decision_function(X))
    return decision if classes.index(positive) == 1 else -decision


def selection_metric(task: str, minority_share: float) -> str:
    if task == "regression":
        return "neg_root_mean_squared_error"
    if task == "multiclass":
        return "f1_macro"
    return "average_precision" if minority_share < IMBALANCED_BELOW else "roc_auc"


def test_scores(
    task: str, model: Any, X_test: pd.DataFrame, y_test: pd.Series, positive: str | None
) -> dict[str, float]:
    if task == "regression":
        predicted = model.predict(X_test)
        return {
            "rmse": float(root_mean_squared_error(y_test, predicted)),
            "r2": float(r2_score(y_test, predicted)),
        }
    if task == "multiclass":
        return {"f1_macro": float(f1_score(y_test, model.predict(X_test), average="macro"))}
    assert positive is not None
    truth = (y_test == positive).astype(int)
    scores = scores_of(model, X_test, positive)
    return {
        "average_precision": float(average_precision_score(truth, scores)),
        "roc_auc": float(roc_auc_score(truth, scores)),
    }


def train_peer(
    frame: pd.DataFrame, target: str, test_rows: list[int], task: str, positive: str | None
) -> dict[str, Any]:
    """Search six families on the training rows, score the CV-best on the test rows."""
    started = time.perf_counter()
    if task == "regression":
        y = pd.to_numeric(frame[target], errors="coerce")
    else:
        y = frame[target].astype(str).str.strip().where(frame[target].notna())
        y = y.where(y != "")
    labelled = y.notna()
    test_index = pd.Index(test_rows)
    train = labelled & ~frame.index.isin(test_index)
    features = frame.drop(columns=[target])
    dropped = obvious_drops(features.loc[train])
    features = features.drop(columns=dropped)
    X_train, y_train = features.loc[train], y.loc[train]
    X_test, y_test = features.loc[test_index], y.loc[test_index]
    minority = 1.0 if task == "regression" else float(y_train.value_counts(normalize=True).min())
    metric = selection_metric(task, minority)
    if task == "regression":
        folds: Any = KFold(FOLDS, shuffle=True, random_state=SEED)
        families = regressors()
    else:
        folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
        families = classifiers()
    scoring: Any = metric
    if metric == "average_precision":
        from sklearn.metrics import make_scorer

        scoring = make_scorer(
            average_precision_score,
            response_method=("predict_proba", "decision_function"),
            pos_label=positive,
        )
    smote = task != "regression" and minority < IMBALANCED_BELOW
    results: dict[str, Any] = {}
    best_name, best_search = "", None
    for name, (estimator, grid) in families.items():
        if name == "svm" and len(X_train) > SVM_MAX_ROWS:
            results[name] = {"skipped": f"over {SVM_MAX_ROWS} training rows"}
            continue
        steps: list[tuple[str, Any]] = [("prepare", preprocessor(X_train))]
        if smote:
            steps.append(("smote", SMOTE(random_state=SEED)))
        steps.append(("model", estimator))
        search = GridSearchCV(
            Pipeline(steps),
            {f"model__{key}": values for key, values in grid.items()},
            scoring=scoring,
            cv=folds,
            n_jobs=-1,
            error_score=np.nan,
        )
        fit_started = time.perf_counter()
        search.fit(X_train, y_train)
        results[name] = {
            "cv_score": float(search.best_score_),
            "seconds": round(time.perf_counter() - fit_started, 1),
        }
        if best_search is None or search.best_score_ > best_search.best_score_:
            best_name, best_search = name, search
    assert best_search is not None
    return {
        "best_family": best_name,
        "selection_metric": metric,
        "smote": smote,
        "dropped_columns": dropped,
        "n_train": int(train.sum()),
        "n_test": len(test_index),
        "families": results,
        "test": test_scores(task, best_search.best_estimator_, X_test, y_test, positive),
        "seconds": round(time.perf_counter() - started, 1),
    }


def read_any(path: Path) -> pd.DataFrame:
    if path.suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("target")
    parser.add_argument("--test-rows", type=Path, required=True, help="JSON list of row numbers")
    parser.add_argument("--task", choices=["binary", "multiclass", "regression"], required=True)
    parser.add_argument("--positive-label", default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = train_peer(
        read_any(args.data),
        args.target,
        json.loads(args.test_rows.read_text()),
        args.task,
        args.positive_label,
    )
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
