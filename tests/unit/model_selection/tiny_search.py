"""One model family searched on a tiny seeded binary split: what the search tests share."""

from __future__ import annotations

from typing import Any

from sklearn.model_selection import StratifiedKFold

from tasks.config import ImputeConfig
from tasks.data.profile import profile_frame
from tasks.data.split import DataSplit, split_frame
from tasks.model_selection.pipeline import build_param_grid, build_pipeline, family_for
from tasks.model_selection.search import FamilyResult, build_scorer, search_family
from tests.conftest import make_frame


def tiny_split(n_rows: int, *, positive_share: float = 0.25, seed: int) -> tuple[DataSplit, Any]:
    """make_frame's rows split 75/25: the split and the profile."""
    frame = make_frame(n_rows, positive_share=positive_share, seed=seed)
    profile = profile_frame(frame, "label")
    return split_frame(frame, profile, 0.25, seed=0), profile


def search_on(
    split: DataSplit,
    profile: Any,
    family: str,
    model_grid: dict[str, list[Any]],
    rebalancing: list[str],
    *,
    folds: int = 3,
    **search_options: Any,
) -> FamilyResult:
    """search_family for one family's grid, scored by PR-AUC on stratified folds."""
    spec = family_for(profile.task, family)
    grid = build_param_grid(spec, model_grid, rebalancing, profile.categorical_columns, 0)
    pipeline = build_pipeline(
        spec, profile.numeric_columns, profile.categorical_columns, ImputeConfig(), 0
    )
    return search_family(
        family,
        pipeline,
        grid,
        split.X_train,
        split.y_train,
        build_scorer("average_precision", profile.positive_label),
        StratifiedKFold(folds, shuffle=True, random_state=0),
        **search_options,
    )
