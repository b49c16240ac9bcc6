"""The one imblearn Pipeline that holds everything that learns from data, and its search grid.

prepare -> impute -> rebalance -> encode/scale -> model. Every step is fitted inside a training
fold only: imblearn applies the sampler at fit time and never to the rows being scored. `prepare`
is stateless (dates into calendar parts, category codes into text); `encode` is bounded: rare
levels grouped, one-hot capped per column, many-level columns by cross-fitted target statistics,
native categories for histogram gradient boosting (see tasks/model_selection/encoding.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from imblearn.over_sampling import SMOTE, SMOTENC, RandomOverSampler
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import ParameterGrid
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from tasks.config import ImputeConfig
from tasks.errors import ConfigError
from tasks.model_selection.audit import INPUT_AUDIT, RESAMPLED_AUDIT, FitAudit
from tasks.model_selection.encoding import FeatureLayout, PrepareColumns
from tasks.model_selection.extra_families import extra_family_specs
from tasks.model_selection.imputation import NanMedianImputer

# Boosting with early stopping may run longer than scikit-learn's 100 iterations: it stops when
# the held-out tenth stops improving, so a higher cap costs only what it earns (hotel_adr, 12,300
# training rows: test RMSE 14.86 -> 14.09; mpls_stops, 35,000: stopped before 100, unchanged).
# Early stopping is forced on so every CV fold stops too (scikit-learn's 'auto' needs 10,000 rows
# in the fold). Measured only in this range; larger searches keep scikit-learn's 100 iterations.
LONGER_BOOSTING_ROWS = range(10_000, 50_000)
LONGER_BOOSTING: dict[str, Any] = {"early_stopping": True, "max_iter": 300}
# Above that range 'auto' stops early in every fit but one an under-sampler left under 10,000
# rows (100k training rows, 5% positives: 5,300): forced on there too, as below 50,000. Test
# PR-AUC 0.3769 -> 0.3772, 3-fold CV 0.3686 -> 0.3696, the run 9.9 -> 8.4 s. Not for successive
# halving, whose first rounds fit on a few dozen rows (too few to hold a tenth out).
EARLY_STOPPING: dict[str, Any] = {"early_stopping": True}


@dataclass(frozen=True)
class ModelFamily:
    """An estimator family: how to build it and the small grid searched by default."""

    name: str
    build: Callable[[int], BaseEstimator]
    grid: dict[str, list[Any]]
    supports_class_weight: bool
    in_default_grid: bool = True
    notes: list[str] = field(default_factory=list)
    # Where the estimator's parameters live in the pipeline (a wrapped estimator adds a level).
    param_prefix: str = "model__"
    # Takes categories as ordinal codes with a categorical_features mask (no one-hot).
    native_categories: bool = False
    # Parameters for a search on LONGER_BOOSTING_ROWS training rows, and on more (set before
    # the grid's).
    mid_size_params: dict[str, Any] = field(default_factory=dict)
    large_size_params: dict[str, Any] = field(default_factory=dict)
    # The class_weight value that rebalances; a forest's per-tree weights also avoid
    # scikit-learn 1.9 refusing 'balanced' for labels that look like numbers ('0', '1').
    balanced_weight: str = "balanced"

    def grid_key(self, parameter: str) -> str:
        return f"{self.param_prefix}{parameter}"


FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in [
        ModelFamily(
            "logistic_regression",
            lambda seed: LogisticRegression(max_iter=2000, random_state=seed),
            {"C": [0.1, 1.0, 10.0]},
            supports_class_weight=True,
        ),
        ModelFamily(
            "knn",
            lambda seed: KNeighborsClassifier(),
            {"n_neighbors": [5, 15], "weights": ["uniform", "distance"]},
            supports_class_weight=False,
        ),
        ModelFamily(
            "decision_tree",
            lambda seed: DecisionTreeClassifier(random_state=seed),
            {"max_depth": [3, 6, None], "min_samples_leaf": [1, 5]},
            supports_class_weight=True,
        ),
        ModelFamily(
            "random_forest",
            lambda seed: RandomForestClassifier(n_estimators=200, n_jobs=1, random_state=seed),
            {"max_depth": [None, 8], "min_samples_leaf": [1, 3]},
            supports_class_weight=True,
            balanced_weight="balanced_subsample",
        ),
        ModelFamily(
            "svm",
            # SVC(probability=True) is deprecated in scikit-learn 1.9: calibrate it instead; Platt's
            # two parameters need little data, and 2 folds cost 1.5 SVC fits to 3 folds' 2.3.
            lambda seed: CalibratedClassifierCV(SVC(random_state=seed), cv=2, ensemble=False),
            {"C": [0.5, 2.0], "kernel": ["rbf"]},
            supports_class_weight=True,
            param_prefix="model__estimator__",
        ),
        ModelFamily(
            "hist_gradient_boosting",
            lambda seed: HistGradientBoostingClassifier(random_state=seed),
            {"learning_rate": [0.05, 0.1], "max_leaf_nodes": [15, 31]},
            supports_class_weight=True,
            native_categories=True,
            mid_size_params=LONGER_BOOSTING,
            large_size_params=EARLY_STOPPING,
        ),
        ModelFamily(
            "mlp",
            lambda seed: MLPClassifier(max_iter=800, early_stopping=True, random_state=seed),
            {"hidden_layer_sizes": [(32,), (64, 32)], "alpha": [1e-4, 1e-2]},
            supports_class_weight=False,
            in_default_grid=False,
        ),
    ]
}

DEFAULT_FAMILIES = [name for name, family in FAMILIES.items() if family.in_default_grid]

# The same names for the same ideas, as regressors (no class weights: nothing to rebalance).
REGRESSION_FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in [
        ModelFamily("linear_regression", lambda seed: LinearRegression(), {}, False),
        ModelFamily("ridge", lambda seed: Ridge(), {"alpha": [0.1, 1.0, 10.0]}, False),
        ModelFamily(
            "knn",
            lambda seed: KNeighborsRegressor(),
            {"n_neighbors": [5, 15], "weights": ["uniform", "distance"]},
            False,
        ),
        ModelFamily(
            "decision_tree",
            lambda seed: DecisionTreeRegressor(random_state=seed),
            {"max_depth": [3, 6, None], "min_samples_leaf": [1, 5]},
            False,
        ),
        ModelFamily(
            "random_forest",
            lambda seed: RandomForestRegressor(n_estimators=200, n_jobs=1, random_state=seed),
            {"max_depth": [None, 8], "min_samples_leaf": [1, 3]},
            False,
        ),
        ModelFamily(
            "hist_gradient_boosting",
            lambda seed: HistGradientBoostingRegressor(random_state=seed),
            {"learning_rate": [0.05, 0.1], "max_leaf_nodes": [15, 31]},
            False,
            native_categories=True,
            mid_size_params=LONGER_BOOSTING,
            large_size_params=EARLY_STOPPING,
        ),
    ]
}


def family_registry(task: str) -> dict[str, ModelFamily]:
    """The model families a task can search: regressors for regression, else classifiers; plus
    the families from other packages (tasks/model_selection/extra_families.py)."""
    extra = {spec["name"]: ModelFamily(**spec) for spec in extra_family_specs(task)}
    return {**(REGRESSION_FAMILIES if task == "regression" else FAMILIES), **extra}


def default_families(task: str) -> list[str]:
    return [name for name, family in family_registry(task).items() if family.in_default_grid]


def choose_families(requested: list[str], task: str) -> list[str]:
    """The config's `models`, checked against the task's registry, else the task's defaults."""
    return [family_for(task, name).name for name in requested] or default_families(task)


def family_for(task: str, name: str) -> ModelFamily:
    """A family by name; a name the task does not know is a ConfigError listing the known ones."""
    registry = family_registry(task)
    if name not in registry:
        known = ", ".join(registry)
        raise ConfigError(f"models: '{name}' is not a {task} model family (known: {known}).")
    return registry[name]


def build_imputer(numeric: list[str], categorical: list[str], impute: ImputeConfig) -> Any:
    """Fill gaps column by column; output stays a DataFrame so SMOTENC can name categoricals."""
    numeric_imputer = NanMedianImputer(
        strategy=impute.numeric, fill_value=impute.numeric_fill_value
    )
    categorical_imputer = SimpleImputer(
        strategy=impute.categorical, fill_value=impute.categorical_fill_value
    )
    transformer = ColumnTransformer(
        [("numeric", numeric_imputer, numeric), ("categorical", categorical_imputer, categorical)],
        verbose_feature_names_out=False,
    )
    return transformer.set_output(transform="pandas")


def build_encoder(
    numeric: list[str], categorical: list[str], layout: FeatureLayout | None = None
) -> ColumnTransformer:
    """Scale numbers; one-hot few-level categories (rare levels grouped, at most max_one_hot
    columns each, unseen levels as the infrequent group or zeros); many-level categories by
    cross-fitted target statistics, then scaled."""
    layout = layout or FeatureLayout()
    one_hot, by_target = layout.split_categorical(categorical)
    transformers: list[tuple[str, Any, list[str]]] = [
        ("numeric", StandardScaler(), [*numeric, *layout.calendar_columns]),
        (
            "categorical",
            OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=layout.min_frequency,
                max_categories=layout.max_one_hot,
                sparse_output=layout.sparse,
            ),
            one_hot,
        ),
    ]
    if by_target:
        target_steps = SkPipeline(
            [("target", layout.target_encoder()), ("scale", StandardScaler())]
        )
        transformers.append(("target", target_steps, by_target))
    return ColumnTransformer(transformers, sparse_threshold=1.0 if layout.sparse else 0.0)


def build_native_encoder(
    numeric: list[str], categorical: list[str], layout: FeatureLayout
) -> tuple[ColumnTransformer, list[int]]:
    """For a family with native categories: numbers as they are, few-level categories as ordinal
    codes (unseen and missing as gaps), many-level ones by target statistics; with the positions
    of the coded columns for the model's categorical_features."""
    one_hot, by_target = layout.split_categorical(categorical)
    numbers = [*numeric, *layout.calendar_columns]
    codes = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        min_frequency=layout.min_frequency,
        max_categories=layout.max_native_categories,
    )
    transformers: list[tuple[str, Any, list[str]]] = [
        ("numeric", "passthrough", numbers),
        ("categorical", codes, one_hot),
    ]
    if by_target:
        transformers.append(("target", layout.target_encoder(), by_target))
    positions = list(range(len(numbers), len(numbers) + len(one_hot)))
    return ColumnTransformer(transformers, sparse_threshold=0.0), positions


def build_sampler(kind: str, categorical: list[str], seed: int) -> Any:
    """The imblearn sampler for a rebalancing choice; 'passthrough' when nothing is resampled."""
    if kind == "random_over":
        return RandomOverSampler(random_state=seed)
    if kind == "random_under":
        return RandomUnderSampler(random_state=seed)
    if kind == "smote":
        if categorical:
            return SMOTENC(categorical_features=categorical, random_state=seed)
        return SMOTE(random_state=seed)
    return "passthrough"


def build_pipeline(
    family: ModelFamily,
    numeric: list[str],
    categorical: list[str],
    impute: ImputeConfig,
    seed: int,
    *,
    layout: FeatureLayout | None = None,
) -> Pipeline:
    """prepare -> impute -> rebalance -> encode -> model, with the sampler switched by the grid;
    two passthrough audit steps record what the fits saw (see tasks/audit.py). `layout` says
    which columns are dates and which categories are encoded by target statistics."""
    layout = layout or FeatureLayout(seed=seed)
    model = family.build(seed)
    if family.native_categories:
        encoder, positions = build_native_encoder(numeric, categorical, layout)
        if positions:
            model.set_params(categorical_features=positions)
    else:
        encoder = build_encoder(numeric, categorical, layout)
    return Pipeline(
        [
            (INPUT_AUDIT, FitAudit()),
            ("prepare", PrepareColumns(dates=layout.dates, categorical=list(categorical))),
            ("impute", build_imputer([*numeric, *layout.calendar_columns], categorical, impute)),
            ("rebalance", "passthrough"),
            (RESAMPLED_AUDIT, FitAudit()),
            ("encode", encoder),
            ("model", model),
        ]
    )


def size_params(family: ModelFamily, n_train: int, *, halving: bool = False) -> dict[str, Any]:
    """The family's parameters for this many training rows, as pipeline parameter names
    (above LONGER_BOOSTING_ROWS, none for successive halving)."""
    if n_train in LONGER_BOOSTING_ROWS:
        params = family.mid_size_params
    elif n_train >= LONGER_BOOSTING_ROWS.stop and not halving:
        params = family.large_size_params
    else:
        params = {}
    return {family.grid_key(name): value for name, value in params.items()}


def resolve_rebalancing(
    requested: list[str], family: ModelFamily, roughly_balanced: bool, task: str
) -> list[str]:
    """Expand 'auto': nothing when balanced, class weights where the family has them, else
    random under-sampling (it matched SMOTE's PR-AUC at a third of the cost in our benchmarks)."""
    if task == "regression":
        return []  # a continuous target has no classes to rebalance
    resolved: list[str] = []
    for choice in requested:
        if choice == "auto":
            if roughly_balanced:
                choice = "none"
            else:
                choice = "class_weight" if family.supports_class_weight else "random_under"
        if choice == "class_weight" and not family.supports_class_weight:
            choice = "random_over"
        if choice not in resolved:
            resolved.append(choice)
    return resolved


def candidate_count(
    family: str,
    task: str,
    *,
    grids: dict[str, dict[str, list[Any]]],
    rebalance: list[str],
    roughly_balanced: bool,
) -> int:
    """How many candidates a family's grid search tries: its grid's points, once per
    rebalancing choice."""
    spec = family_for(task, family)
    points = len(ParameterGrid(grids.get(family, spec.grid) or {}))
    return points * max(1, len(resolve_rebalancing(rebalance, spec, roughly_balanced, task)))


def build_param_grid(
    family: ModelFamily,
    model_grid: dict[str, list[Any]],
    rebalancing: list[str],
    categorical: list[str],
    seed: int,
) -> list[dict[str, list[Any]]]:
    """One sub-grid per rebalancing choice, so the search compares them like any parameter."""
    model_params = {family.grid_key(key): list(values) for key, values in model_grid.items()}
    if not rebalancing:  # regression: no sampler to compare
        return [model_params]
    grid = []
    for choice in rebalancing:
        sub_grid: dict[str, list[Any]] = {
            "rebalance": [build_sampler(choice, categorical, seed)],
            **model_params,
        }
        if family.supports_class_weight:
            sub_grid[family.grid_key("class_weight")] = [
                family.balanced_weight if choice == "class_weight" else None
            ]
        grid.append(sub_grid)
    return grid


def unknown_grid_parameters(family: ModelFamily, model_grid: dict[str, list[Any]]) -> list[str]:
    """Grid keys the family's estimator does not have (a config error naming them)."""
    known = Pipeline([("model", family.build(0))]).get_params()
    return [key for key in model_grid if family.grid_key(key) not in known]


def rebalancing_name(sampler: Any, class_weight: Any) -> str:
    """A readable name for the rebalancing a fitted candidate used."""
    if class_weight in ("balanced", "balanced_subsample"):
        return "class_weight"
    names = {
        RandomOverSampler: "random_over",
        RandomUnderSampler: "random_under",
        SMOTE: "smote",
        SMOTENC: "smote",
    }
    return names.get(type(sampler), "none")
