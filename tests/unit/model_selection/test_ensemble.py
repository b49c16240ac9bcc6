"""The ensemble candidate: soft voting over each family's best, cross-validated on the same
folds, audited member by member, winning only on a strictly better CV score, reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from sklearn.model_selection import StratifiedKFold

from tasks.config import ImputeConfig
from tasks.data.profile import profile_frame
from tasks.data.split import split_frame
from tasks.model_selection.audit import audit_leakage
from tasks.model_selection.ensemble import ENSEMBLE, search_ensemble
from tasks.model_selection.pipeline import FAMILIES, build_param_grid, build_pipeline
from tasks.model_selection.search import FamilyResult, build_scorer, search_family, select_best
from tests.conftest import make_frame

GRIDS = {"knn": {"n_neighbors": [15]}, "decision_tree": {"max_depth": [3]}}


def families_and_split() -> tuple[list[FamilyResult], object, object, object]:
    frame = make_frame(300, positive_share=0.3, seed=8)
    profile = profile_frame(frame, "label")
    split = split_frame(frame, profile, 0.25, seed=0)
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    scorer = build_scorer("average_precision", profile.positive_label)
    results = []
    for family, model_grid in GRIDS.items():
        spec = FAMILIES[family]
        grid = build_param_grid(spec, model_grid, ["random_over"], profile.categorical_columns, 0)
        pipeline = build_pipeline(
            spec, profile.numeric_columns, profile.categorical_columns, ImputeConfig(), 0
        )
        results.append(
            search_family(family, pipeline, grid, split.X_train, split.y_train, scorer, folds)
        )
    return results, split, folds, scorer


def test_the_ensemble_is_cross_validated_on_the_same_folds_and_refit() -> None:
    results, split, folds, scorer = families_and_split()

    ensemble = search_ensemble(
        results, split.X_train, split.y_train, task="binary", scoring=scorer, folds=folds
    )

    assert ensemble is not None and ensemble.status == "completed"
    assert ensemble.family == ENSEMBLE
    assert ensemble.best_params["members"] == "knn+decision_tree"
    assert ensemble.best_score is not None
    probabilities = ensemble.estimator.predict_proba(split.X_test)
    assert probabilities.shape == (len(split.X_test), 2)
    again = search_ensemble(
        results, split.X_train, split.y_train, task="binary", scoring=scorer, folds=folds
    )
    assert again.best_score == ensemble.best_score  # seeded: the same folds, the same fits


def test_the_ensemble_wins_only_with_a_strictly_better_cv_score() -> None:
    results, split, folds, scorer = families_and_split()
    ensemble = search_ensemble(
        results, split.X_train, split.y_train, task="binary", scoring=scorer, folds=folds
    )
    best_family = select_best(results)

    tied = FamilyResult(ENSEMBLE, "completed", best_score=best_family.best_score)
    assert select_best([*results, tied]) is best_family
    expected = ensemble if ensemble.best_score > best_family.best_score else best_family
    assert select_best([*results, ensemble]) is expected


def test_one_family_gives_no_ensemble() -> None:
    results, split, folds, scorer = families_and_split()
    assert (
        search_ensemble(
            results[:1], split.X_train, split.y_train, task="binary", scoring=scorer, folds=folds
        )
        is None
    )


def test_the_audit_checks_every_member_of_the_ensemble() -> None:
    results, split, folds, scorer = families_and_split()
    ensemble = search_ensemble(
        results, split.X_train, split.y_train, task="binary", scoring=scorer, folds=folds
    )
    shared = [record for result in results for record in result.preparations]

    audit = audit_leakage(
        ensemble.estimator,
        split.X_train,
        split.y_train,
        split.X_test,
        folds,
        shared_preparations=shared,
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
    import pandas as pd

    results, split, folds, scorer = families_and_split()
    ensemble = search_ensemble(
        results, split.X_train, split.y_train, task="binary", scoring=scorer, folds=folds
    )
    member = ensemble.estimator.estimators_[1]
    member.fit(pd.concat([split.X_train, split.X_test]), pd.concat([split.y_train, split.y_test]))

    audit = audit_leakage(ensemble.estimator, split.X_train, split.y_train, split.X_test, folds)

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
    # on this seeded data voting beats both members, so the whole run (threshold-free evaluate,
    # audit, explain, model file) goes through with the ensemble as the model
    assert metrics["best_model"]["family"] == ENSEMBLE
    assert set(audit["ensemble_members"]) == set(GRIDS)
    for name in ("metrics.json", "predictions.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
