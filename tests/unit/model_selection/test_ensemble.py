"""The ensemble candidate: a weighted blend of each family's best, chosen from the searches'
out-of-fold predictions, scored honestly, audited member by member, winning only on a strictly
better CV score, reproducible."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

from tasks.config import ImputeConfig
from tasks.data.profile import profile_frame
from tasks.data.split import split_frame
from tasks.model_selection.audit import audit_leakage
from tasks.model_selection.ensemble import (
    AUTO_MAX_ROWS,
    ENSEMBLE,
    FixedPredictions,
    FixedProbabilities,
    blend,
    blend_scorer,
    ensemble_wanted,
    fold_scores,
    search_ensemble,
    select_weights,
)
from tasks.model_selection.pipeline import (
    FAMILIES,
    REGRESSION_FAMILIES,
    build_param_grid,
    build_pipeline,
)
from tasks.model_selection.search import (
    FamilyResult,
    build_scorer,
    fit_quietly,
    search_family,
    select_best,
)
from tests.conftest import make_frame

GRIDS = {"knn": {"n_neighbors": [15]}, "decision_tree": {"max_depth": [3]}}


def families_and_split(
    grids: dict[str, dict[str, list[object]]] = GRIDS, *, keep: bool = True
) -> tuple[list[FamilyResult], object, object, object]:
    frame = make_frame(300, positive_share=0.3, seed=8)
    profile = profile_frame(frame, "label")
    split = split_frame(frame, profile, 0.25, seed=0)
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    scorer = build_scorer("average_precision", profile.positive_label)
    results = []
    for family, model_grid in grids.items():
        spec = FAMILIES[family]
        grid = build_param_grid(spec, model_grid, ["random_over"], profile.categorical_columns, 0)
        pipeline = build_pipeline(
            spec, profile.numeric_columns, profile.categorical_columns, ImputeConfig(), 0
        )
        results.append(
            search_family(
                family,
                pipeline,
                grid,
                split.X_train,
                split.y_train,
                scorer,
                folds,
                keep_out_of_fold=keep,
            )
        )
    return results, split, folds, scorer


def ensemble_of(results, split, folds, scorer, task: str = "binary") -> FamilyResult | None:  # type: ignore[no-untyped-def]
    return search_ensemble(
        results, split.y_train, task=task, scoring=scorer, folds=folds, X_train=split.X_train
    )


def test_out_of_fold_predictions_are_each_fold_models_predictions() -> None:
    results, split, folds, _ = families_and_split({"knn": {"n_neighbors": [5, 15]}})
    knn = results[0]
    assert knn.out_of_fold is not None and knn.out_of_fold.shape == (len(split.X_train), 2)

    for train, validation in folds.split(split.X_train, split.y_train):
        model = clone(knn.estimator).fit(split.X_train.iloc[train], split.y_train.iloc[train])
        expected = model.predict_proba(split.X_train.iloc[validation])
        np.testing.assert_allclose(knn.out_of_fold[validation], expected, rtol=1e-6)


def test_keeping_out_of_fold_predictions_changes_no_score() -> None:
    kept, *_ = families_and_split()
    plain, *_ = families_and_split(keep=False)

    def scores(results: list[FamilyResult]) -> list[tuple[object, ...]]:
        return [
            (c["params"], c["mean_score"], c["std_score"]) for r in results for c in r.candidates
        ]

    assert scores(kept) == scores(plain)
    assert all(r.out_of_fold is None for r in plain)


def test_a_blend_is_scored_as_scikit_learn_scores_a_fitted_model() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = np.where(X[:, 0] + rng.normal(size=200) > 0.5, "yes", "no")
    model = LogisticRegression().fit(X, y)
    fixed = FixedProbabilities(model.predict_proba(X), model.classes_)
    rows = np.arange(len(y))

    for scoring in (build_scorer("average_precision", "yes"), "f1_macro", "accuracy"):
        score = blend_scorer(scoring, y, classes=model.classes_)
        assert score(fixed.probabilities, rows) == pytest.approx(
            get_scorer(scoring)(model, X, y), abs=1e-12
        )
    assert list(fixed.predict(rows)) == list(model.predict(X))
    assert FixedPredictions(np.arange(3.0).reshape(-1, 1)).predict(np.array([2, 0])).tolist() == [
        2.0,
        0.0,
    ]


def test_selection_picks_complementary_members_and_never_a_useless_one() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(size=400)
    rows = np.arange(400)
    # each member is right on half the rows and noisy on the other half; the third is noise
    first = np.where(rows < 200, truth, truth + rng.normal(scale=2, size=400))
    second = np.where(rows >= 200, truth, truth + rng.normal(scale=2, size=400))
    noise = rng.normal(scale=3, size=400)
    members = np.stack([first, second, noise])[:, :, None]
    score = blend_scorer("neg_root_mean_squared_error", truth, classes=None)

    picks = select_weights(members, rows, score)

    assert picks[0] > 0 and picks[1] > 0 and picks[2] == 0
    blended = score(blend(members, picks, rows), rows)
    assert blended > max(score(members[0], rows), score(members[1], rows))


def test_the_cv_score_of_a_blend_chooses_its_weights_without_the_scored_fold() -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(size=300)
    members = np.stack([truth + rng.normal(size=300), truth + rng.normal(size=300)])[:, :, None]
    score = blend_scorer("neg_root_mean_squared_error", truth, classes=None)
    splits = list(KFold(3, shuffle=True, random_state=0).split(truth))

    scores = fold_scores(members, splits, score)

    for (train, validation), value in zip(splits, scores, strict=True):
        picks = select_weights(members, train, score)  # the other folds' rows only
        assert value == score(blend(members, picks, validation), validation)


def test_the_ensemble_blends_the_families_and_is_refit_only_when_asked() -> None:
    results, split, folds, scorer = families_and_split()

    ensemble = ensemble_of(results, split, folds, scorer)

    assert ensemble is not None and ensemble.status == "completed"
    assert ensemble.family == ENSEMBLE and not ensemble.fitted
    assert set(ensemble.best_params["weights"].split(", ")) == {
        f"{name} {weight:.2f}"
        for name, weight in zip(
            [n for n, _ in ensemble.estimator.estimators], ensemble.estimator.weights, strict=True
        )
    }
    assert sum(ensemble.estimator.weights) == pytest.approx(1.0)
    model = fit_quietly(ensemble.estimator, split.X_train, split.y_train)
    assert model.predict_proba(split.X_test).shape == (len(split.X_test), 2)
    again = ensemble_of(results, split, folds, scorer)
    assert again is not None and again.best_score == ensemble.best_score


def test_the_ensemble_wins_only_with_a_strictly_better_cv_score() -> None:
    results, split, folds, scorer = families_and_split()
    ensemble = ensemble_of(results, split, folds, scorer)
    assert ensemble is not None
    best_family = select_best(results)

    tied = FamilyResult(ENSEMBLE, "completed", best_score=best_family.best_score)
    assert select_best([*results, tied]) is best_family
    expected = ensemble if ensemble.best_score > best_family.best_score else best_family
    assert select_best([*results, ensemble]) is expected


def test_nothing_to_blend_gives_no_ensemble() -> None:
    results, split, folds, scorer = families_and_split()
    plain, *_ = families_and_split(keep=False)
    same = [results[0], replace(results[0], family="knn_again")]

    assert ensemble_of(results[:1], split, folds, scorer) is None  # one family
    assert ensemble_of(plain, split, folds, scorer) is None  # no predictions kept
    assert ensemble_of(same, split, folds, scorer) is None  # the blend picks one family
    forward = TimeSeriesSplit(3)  # folds that leave the first rows unscored
    assert ensemble_of(results, split, forward, scorer) is None


def test_a_regression_ensemble_blends_predictions() -> None:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(240, 4)), columns=list("abcd"))
    # a linear part ridge gets and a wave only neighbours follow: neither alone is enough
    wave = 2 * np.sin(3 * X["a"])
    y = pd.Series(wave + X["b"] + X["c"] + X["d"] + rng.normal(scale=0.3, size=240), name="y")
    folds = KFold(4, shuffle=True, random_state=0)
    results = []
    for family, grid in {"ridge": {"alpha": [1.0]}, "knn": {"n_neighbors": [10]}}.items():
        spec = REGRESSION_FAMILIES[family]
        pipeline = build_pipeline(spec, list("abcd"), [], ImputeConfig(), 0)
        grid = build_param_grid(spec, grid, [], [], 0)
        results.append(
            search_family(
                family, pipeline, grid, X, y, "neg_root_mean_squared_error", folds,
                keep_out_of_fold=True,
            )
        )  # fmt: skip

    ensemble = search_ensemble(
        results, y, task="regression", scoring="neg_root_mean_squared_error", folds=folds, X_train=X
    )

    assert ensemble is not None
    assert ensemble.best_params == {"weights": "ridge 0.50, knn 0.50"}
    assert ensemble.best_score > max(r.best_score for r in results)
    alone = fit_quietly(ensemble.estimator, X, y).predict(X)
    side_by_side = search_ensemble(
        results, y, task="regression", scoring="neg_root_mean_squared_error", folds=folds,
        X_train=X, n_jobs=2,
    )  # fmt: skip
    assert side_by_side is not None
    np.testing.assert_array_equal(fit_quietly(side_by_side.estimator, X, y).predict(X), alone)


def test_auto_blends_below_the_row_limit() -> None:
    assert ensemble_wanted("auto", AUTO_MAX_ROWS - 1)
    assert not ensemble_wanted("auto", AUTO_MAX_ROWS)
    assert ensemble_wanted(True, 10 * AUTO_MAX_ROWS)
    assert not ensemble_wanted(False, 10)


def test_the_audit_checks_every_member_of_the_ensemble() -> None:
    results, split, folds, scorer = families_and_split()
    ensemble = ensemble_of(results, split, folds, scorer)
    assert ensemble is not None
    model = fit_quietly(ensemble.estimator, split.X_train, split.y_train)
    shared = [record for result in results for record in result.preparations]

    audit = audit_leakage(
        model, split.X_train, split.y_train, split.X_test, folds, shared_preparations=shared
    )

    assert set(audit["ensemble_members"]) == {"knn", "decision_tree"}
    for member in audit["ensemble_members"].values():
        assert len(member["cv_folds"]) == 3
        assert all(fold["fit_rows_equal_train_fold"] for fold in member["cv_folds"])
        assert member["final_refit"]["test_rows_in_fit"] == 0
        assert member["final_refit"]["fitted_steps"]["imputer"]["rows"] == len(split.X_train)
    assert audit["shared_preparations"]
    assert audit["checked"] and audit["no_leakage_found"]


def test_the_audit_catches_a_member_fitted_on_test_rows() -> None:
    results, split, folds, scorer = families_and_split()
    ensemble = ensemble_of(results, split, folds, scorer)
    assert ensemble is not None
    model = fit_quietly(ensemble.estimator, split.X_train, split.y_train)
    member = model.estimators_[1]
    member.fit(pd.concat([split.X_train, split.X_test]), pd.concat([split.y_train, split.y_test]))

    audit = audit_leakage(model, split.X_train, split.y_train, split.X_test, folds)

    assert audit["ensemble_members"]["decision_tree"]["final_refit"]["test_rows_in_fit"] > 0
    assert not audit["no_leakage_found"]


def test_a_run_with_the_ensemble_on_is_audited_and_reproducible(
    prefect_harness: None, tmp_path: Path
) -> None:
    from flows.runtime import TrainParameters
    from flows.train import train

    data = tmp_path / "tiny.csv"
    make_frame(300, positive_share=0.3, seed=8).to_csv(data, index=False)
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": str(data),
                "target": "label",
                "models": list(GRIDS),
                "grids": GRIDS,
                "rebalance": ["random_over"],
                "search": {"ensemble": True},
                "split": {"cv_folds": 3},
                "runs_dir": str(tmp_path / "runs"),
            }
        ),
        encoding="utf-8",
    )

    first = Path(train(TrainParameters(config=str(config))))
    second = Path(train(TrainParameters(config=str(config))))

    metrics = json.loads((first / "metrics.json").read_text())
    assert [f["family"] for f in metrics["families"]] == [*GRIDS, ENSEMBLE]
    audit = json.loads((first / "leakage_audit.json").read_text())
    assert audit["no_leakage_found"]
    # on this seeded data the blend beats both members, so the whole run (threshold-free
    # evaluate, audit, explain, model file) goes through with the ensemble as the model
    assert metrics["best_model"]["family"] == ENSEMBLE
    assert set(audit["ensemble_members"]) == set(GRIDS)
    for name in ("metrics.json", "predictions.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
