"""predict_test's answers are the model's own predict_proba and predict, whatever the path."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import FixedThresholdClassifier

from tasks.evaluation.evaluate import predict_test, probabilities_and_labels
from tests.unit.model_selection.tiny_search import search_on, tiny_split

GRIDS = {
    "hist_gradient_boosting": {"max_leaf_nodes": [7], "max_iter": [20]},
    "random_forest": {"n_estimators": [20]},
    "logistic_regression": {"C": [1.0]},
    "svm": {"C": [1.0]},
}


@pytest.mark.parametrize("family", list(GRIDS))
@pytest.mark.parametrize("rebalance", ["random_under", "class_weight"])
def test_the_answers_are_the_pipelines_own(family: str, rebalance: str) -> None:
    split, profile = tiny_split(300, positive_share=0.2, seed=3)
    model = search_on(split, profile, family, GRIDS[family], [rebalance]).estimator
    probabilities, labels = probabilities_and_labels(model, split.X_test)
    np.testing.assert_array_equal(probabilities, model.predict_proba(split.X_test))
    np.testing.assert_array_equal(labels, model.predict(split.X_test))


def test_a_threshold_tuned_model_answers_with_its_threshold() -> None:
    split, profile = tiny_split(300, positive_share=0.2, seed=3)
    pipeline = search_on(
        split, profile, "logistic_regression", GRIDS["logistic_regression"], ["none"]
    ).estimator
    model = FixedThresholdClassifier(FrozenEstimator(pipeline), threshold=0.1).fit(
        split.X_train, split.y_train
    )
    predictions = predict_test(model, split.X_test, split.y_test)
    assert (predictions["y_pred"] == model.predict(split.X_test).astype(str)).all()
    assert (predictions["y_pred"] != pipeline.predict(split.X_test).astype(str)).any()
