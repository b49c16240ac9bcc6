"""The run's plots a colleague reads: sharp, the CV chart says which candidate won, and no empty
missing-values chart."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import confusion_matrix

from tasks.run.plots import (
    draw_confusion_matrix,
    draw_cv_scores,
    save_figure,
    search_and_data_plots,
)

CV_RESULTS = pd.DataFrame(
    {
        "family": ["knn", "knn", "svm", "svm"],
        "params": ["n=3", "n=5", "C=1", "C=2"],
        "mean_score": [0.81, 0.84, 0.88, 0.86],
        "std_score": [0.02, 0.02, 0.01, 0.03],
        "mean_fit_seconds": [0.1, 0.1, 0.2, 0.2],
    }
)


def test_cv_chart_marks_the_selected_candidate_and_labels_each_familys_best() -> None:
    ax = Figure().add_subplot()
    draw_cv_scores(ax, CV_RESULTS, "f1")
    legend = ax.get_legend()
    assert legend is not None
    assert [text.get_text() for text in legend.get_texts()] == ["selected: svm"]
    labels = sorted(text.get_text() for text in ax.texts)
    assert labels == ["0.840", "0.880"]


def test_missing_values_chart_only_when_values_are_missing() -> None:
    counts = {"class_counts": {"no": 7, "yes": 3}, "task": "binary", "n_rows": 10}
    complete = SimpleNamespace(missing_per_column={"a": 0, "b": 0}, **counts)
    gappy = SimpleNamespace(missing_per_column={"a": 0, "b": 3}, **counts)
    y_train = pd.Series(["no"] * 7 + ["yes"] * 3)
    assert set(search_and_data_plots(CV_RESULTS, "f1", complete, y_train)) == {
        "cv_scores",
        "class_balance",
    }
    plots = search_and_data_plots(CV_RESULTS, "f1", gappy, y_train)
    assert set(plots) == {"cv_scores", "class_balance", "missing_values"}
    regression = SimpleNamespace(**{**vars(complete), "task": "regression", "target": "price"})
    assert set(search_and_data_plots(CV_RESULTS, "f1", regression, pd.Series([1.0, 2.5]))) == {
        "cv_scores",
        "target_distribution",
    }
    with Image.open(io.BytesIO(plots["cv_scores"])) as image:
        assert image.format == "PNG" and min(image.info["dpi"]) >= 149.9


def test_an_emoji_the_font_lacks_is_drawn_without_a_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = save_figure(tmp_path / "emoji.png", lambda ax: ax.set_title("x \U0001f551 when"))

    assert Image.open(path).size[0] > 0
    assert [str(w.message) for w in caught] == []


def test_the_confusion_matrix_shows_scikit_learns_counts_in_the_classes_order() -> None:
    y_true = pd.Series(["no", "yes", "yes", "no", "no", "maybe"])
    y_pred = pd.Series(["no", "no", "yes", "yes", "no", "no"])
    classes = ["yes", "no", "maybe"]
    ax = Figure().add_subplot()
    draw_confusion_matrix(ax, y_true, y_pred, classes)
    expected = confusion_matrix(y_true, y_pred, labels=classes)
    assert (ax.images[0].get_array() == expected).all()
    assert [t.get_text() for t in ax.get_xticklabels()] == classes
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(v) for v in expected.ravel())
