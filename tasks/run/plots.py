"""The run's plots, drawn on plain matplotlib Figures (no pyplot state, no GUI backend)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

from tasks.evaluation.drift import drift_scores
from tasks.evaluation.evaluate import probability_columns
from tasks.evaluation.metrics import fast_confusion_matrix

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# Sharp enough to read on a laptop screen and still small (about 40-120 kB): they are inlined in
# the report and in Prefect markdown artifacts (the UI shows data-URI images up to about 1 MB).
FIGURE_SIZE = (5.5, 4.2)
DPI = 150


def figure_png(draw: Callable[[Axes], None], size: tuple[float, float] = FIGURE_SIZE) -> bytes:
    """Draw on a fresh Figure and return it as PNG bytes (drawn in a CV worker or here; the
    run's writer writes them)."""
    from matplotlib.figure import Figure  # here: imported only by the stage that draws

    figure = Figure(figsize=size, layout="constrained")
    draw(figure.add_subplot())
    image = io.BytesIO()
    with warnings.catch_warnings():
        # A column name's emoji the font lacks is drawn as a box; the name itself is in
        # metrics.json and the report. Not a warning with a source path in the user's terminal.
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        figure.savefig(image, dpi=DPI, format="png")
    return image.getvalue()


def save_figure(
    path: Path, draw: Callable[[Axes], None], size: tuple[float, float] = FIGURE_SIZE
) -> Path:
    """Draw on a fresh Figure and write it as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_png(draw, size))
    return path


def draw_confusion_matrix(
    ax: Axes, y_true: pd.Series, y_pred: pd.Series, classes: list[str]
) -> None:
    matrix = fast_confusion_matrix(y_true, y_pred, classes)  # from_predictions: 0.6 s at 200k
    ConfusionMatrixDisplay(matrix, display_labels=classes).plot(ax=ax, colorbar=False, cmap="Blues")
    ax.set_title("Confusion matrix (test set)")


def one_vs_rest(classes: list[str], positive_label: str | None) -> list[str]:
    """The classes that get their own curve: the positive one, or each class of a multiclass."""
    return [positive_label] if positive_label is not None else classes


def curve_legend_title(positive_label: str | None) -> str:
    """Curves are one-vs-rest, so the legend names the positive class of each."""
    return f"positive class '{positive_label}'" if positive_label else "each class vs the rest"


def draw_roc(
    ax: Axes,
    y_true: pd.Series,
    probabilities: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
) -> None:
    for label in one_vs_rest(classes, positive_label):
        RocCurveDisplay.from_predictions(
            y_true == label,
            probabilities[label],
            pos_label=True,
            ax=ax,
            name=str(label),
            plot_chance_level=label == one_vs_rest(classes, positive_label)[-1],
        )
    ax.set(
        xlabel="False positive rate",
        ylabel="True positive rate (recall)",
        title="ROC curve (test set)",
    )
    ax.legend(title=curve_legend_title(positive_label), fontsize="small")


def draw_precision_recall(
    ax: Axes,
    y_true: pd.Series,
    probabilities: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
) -> None:
    for label in one_vs_rest(classes, positive_label):
        PrecisionRecallDisplay.from_predictions(
            y_true == label,
            probabilities[label],
            pos_label=True,
            ax=ax,
            name=str(label),
            plot_chance_level=True,
        )
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve (test set)")
    ax.legend(title=curve_legend_title(positive_label), fontsize="small")


def draw_cv_scores(ax: Axes, cv_results: pd.DataFrame, metric: str) -> None:
    """Every candidate's CV mean ± std, grouped by family; each family's best candidate labelled
    with its score, and the selected one (the best of all) marked."""
    families = list(dict.fromkeys(cv_results["family"]))
    scored = cv_results.dropna(subset=["mean_score"])
    winner = scored["mean_score"].idxmax() if not scored.empty else None
    for position, family in enumerate(families):
        rows = cv_results[cv_results["family"] == family]
        jitter = np.linspace(-0.25, 0.25, len(rows)) if len(rows) > 1 else np.zeros(1)
        ax.errorbar(
            position + jitter,
            rows["mean_score"],
            yerr=rows["std_score"],
            fmt="o",
            markersize=4,
            capsize=2,
        )
        if rows["mean_score"].notna().any():
            best = rows["mean_score"].idxmax()
            x = position + jitter[list(rows.index).index(best)]
            ax.annotate(
                f"{rows.loc[best, 'mean_score']:.3f}",
                (x, rows.loc[best, "mean_score"]),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=7,
            )
            if best == winner:
                ax.plot(
                    x,
                    rows.loc[best, "mean_score"],
                    "*",
                    color="#c44e52",
                    markersize=14,
                    label=f"selected: {family}",
                    zorder=3,
                )
    if winner is not None:
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xticks(range(len(families)), families, rotation=30, ha="right")
    ax.set_ylabel(f"CV {metric}")
    ax.set_title("Cross-validated score per candidate")


def draw_class_balance(ax: Axes, class_counts: dict[str, int]) -> None:
    labels = list(class_counts)
    counts = [class_counts[label] for label in labels]
    bars = ax.bar(labels, counts, color="#4c72b0")
    total = sum(counts)
    ax.bar_label(bars, labels=[f"{c} ({c / total:.1%})" for c in counts])
    ax.set_ylabel("rows")
    ax.set_title("Class balance")


def draw_missing_values(ax: Axes, missing_per_column: dict[str, int], n_rows: int) -> None:
    """Share of empty cells per feature column (the columns with gaps first)."""
    ordered = sorted(missing_per_column.items(), key=lambda item: -item[1])[:30]
    names = [name for name, _ in ordered]
    shares = [count / max(n_rows, 1) for _, count in ordered]
    ax.barh(names[::-1], shares[::-1], color="#dd8452")
    ax.set_xlabel("share of rows missing")
    ax.set_xlim(0, max([*shares, 0.05]) * 1.15)
    ax.set_title("Missing values per column")


def classification_plots(
    predictions: pd.DataFrame,
    probabilities: pd.DataFrame,
    classes: list[str],
    positive_label: str | None,
) -> dict[str, bytes]:
    """The classification run's plots of its test predictions: name -> PNG."""
    y_true, y_pred = predictions["y_true"], predictions["y_pred"]
    curve_classes = [positive_label] if positive_label is not None else classes
    return {
        "confusion_matrix": figure_png(
            lambda ax: draw_confusion_matrix(ax, y_true, y_pred, classes)
        ),
        "roc": figure_png(lambda ax: draw_roc(ax, y_true, probabilities, classes, positive_label)),
        "precision_recall": figure_png(
            lambda ax: draw_precision_recall(ax, y_true, probabilities, classes, positive_label)
        ),
        "calibration": figure_png(
            lambda ax: draw_calibration(ax, y_true, probabilities, curve_classes)
        ),
    }


def search_and_data_plots(
    cv_results: pd.DataFrame, metric: str, profile: Any, y_train: pd.Series
) -> dict[str, bytes]:
    """The plots of the search and the data, which need no final model (drawn while the winner
    is refitted): CV score per candidate, the class balance or the target's distribution, and
    missing values per column when some value is missing (an empty chart says nothing)."""
    plots = {"cv_scores": figure_png(lambda ax: draw_cv_scores(ax, cv_results, metric))}
    if profile.task == "regression":
        plots["target_distribution"] = figure_png(
            lambda ax: draw_target_distribution(ax, y_train, profile.target)
        )
    else:
        plots["class_balance"] = figure_png(lambda ax: draw_class_balance(ax, profile.class_counts))
    if any(count > 0 for count in profile.missing_per_column.values()):
        plots["missing_values"] = figure_png(
            lambda ax: draw_missing_values(ax, profile.missing_per_column, profile.n_rows)
        )
    return plots


def draw_predicted_vs_actual(ax: Axes, y_true: pd.Series, y_pred: pd.Series) -> None:
    """Points on the diagonal are perfect predictions."""
    ax.scatter(y_true, y_pred, s=14, alpha=0.7, color="#4c72b0")
    low = float(min(y_true.min(), y_pred.min()))
    high = float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], linestyle="--", color="grey", label="y = x")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.legend(loc="upper left")
    ax.set_title("Predicted vs actual (test set)")


def draw_residuals(ax: Axes, y_true: pd.Series, y_pred: pd.Series) -> None:
    """Residual (actual − predicted) against prediction: a pattern means the model missed one."""
    ax.scatter(y_pred, y_true - y_pred, s=14, alpha=0.7, color="#dd8452")
    ax.axhline(0.0, linestyle="--", color="grey")
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (actual − predicted)")
    ax.set_title("Residuals (test set)")


def draw_target_distribution(ax: Axes, y: pd.Series, target: str) -> None:
    ax.hist(y, bins=30, color="#4c72b0")
    ax.set_xlabel(target)
    ax.set_ylabel("rows")
    ax.set_title("Target distribution (training rows)")


def regression_plots(predictions: pd.DataFrame) -> dict[str, bytes]:
    """The regression run's plots of its test predictions (in place of the confusion matrix and
    the curves)."""
    y_true, y_pred = predictions["y_true"], predictions["y_pred"]
    return {
        "predicted_vs_actual": figure_png(lambda ax: draw_predicted_vs_actual(ax, y_true, y_pred)),
        "residuals": figure_png(lambda ax: draw_residuals(ax, y_true, y_pred)),
    }


def draw_calibration(
    ax: Axes, y_true: pd.Series, probabilities: pd.DataFrame, curve_classes: list[str]
) -> None:
    for label in curve_classes:
        CalibrationDisplay.from_predictions(
            y_true == label,
            probabilities[label],
            pos_label=True,
            n_bins=10,
            strategy="quantile",
            ax=ax,
            name=str(label),
        )
    ax.set_title("Calibration (test set)")


def draw_importance(ax: Axes, table: pd.DataFrame) -> None:
    shown = table.head(20).iloc[::-1]
    ax.barh(
        shown["column"], shown["importance_mean"], xerr=shown["importance_std"], color="#55a868"
    )
    ax.set_xlabel("drop in selection score when shuffled")
    ax.set_title("Permutation importance (test set)")


def draw_drift(ax: Axes, scores: pd.Series) -> None:
    """Per column, the drift score (1 = its method's threshold); drifted columns in red."""
    shown = scores.fillna(0.0).sort_values().tail(25)
    colours = ["#c0392b" if value >= 1 else "#7f8c8d" for value in shown]
    ax.barh([str(name) for name in shown.index], shown.to_numpy(), color=colours)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xscale("symlog", linthresh=1.0)  # a strong drift must not flatten the others
    ax.set_xlabel("drift score (1 = threshold; log scale above 1)")
    ax.set_title("Drift against the champion's training rows")


def result_plots(importance: pd.DataFrame, drift: dict[str, Any] | None) -> dict[str, bytes]:
    """The plots of the evaluation's later results, name -> PNG: the permutation importance, and
    the drift against the champion when there was one to measure."""
    pngs = {"permutation_importance": figure_png(lambda ax: draw_importance(ax, importance))}
    if drift is not None and drift.get("columns"):
        scores = drift_scores(drift)
        height = max(FIGURE_SIZE[1], 0.25 * min(len(scores), 25) + 1.5)
        pngs["drift"] = figure_png(lambda ax: draw_drift(ax, scores), (FIGURE_SIZE[0], height))
    return pngs


def prediction_plots(*, predictions: pd.DataFrame, profile: Any) -> dict[str, bytes]:
    """The plots that need only the test predictions, name -> PNG: they can be drawn as soon as
    the model is evaluated."""
    if profile.task == "regression":
        return regression_plots(predictions)
    return classification_plots(
        predictions,
        probability_columns(predictions),
        profile.classes,
        profile.positive_label,
    )


def in_report_order(
    search: dict[str, bytes], predictions: dict[str, bytes], results: dict[str, bytes]
) -> dict[str, bytes]:
    """Every plot of a run, name -> PNG, in the order the report shows them: the test
    predictions, then the search and the data, then the importance and the drift."""
    return {**predictions, **search, **results}
