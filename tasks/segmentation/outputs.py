"""A segmentation run's files: clusters.csv, cluster_profile.csv, plots, metrics.json, the model
and its card, a markdown summary and a self-contained report (the run-directory contract)."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from tasks.data.profile import DataProfile
from tasks.data.read import file_sha256
from tasks.run.model_io import MODEL_FILE_NAME, input_columns, save_model, signed_card
from tasks.run.outputs import RunWriter
from tasks.run.plots import draw_missing_values, save_figure
from tasks.run.report import REPORT_STYLE, format_value, html_table, markdown_table, png_data_uri
from tasks.run.rundir import RunDir, StageClock, package_versions, utc_now, write_json
from tasks.segmentation.clustering import Clustering, PreparedFeatures

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SUMMARY_PLOTS = ("silhouette_per_k", "projection")


def draw_silhouette_per_k(ax: Axes, per_k: list[dict[str, Any]], best_k: int) -> None:
    """Silhouette per k (chosen k marked); k-means' inertia on a second axis (the elbow)."""
    ks = [row["k"] for row in per_k]
    scores = [np.nan if row["silhouette"] is None else row["silhouette"] for row in per_k]
    ax.plot(ks, scores, marker="o", color="#4c72b0", label="silhouette")
    ax.axvline(best_k, linestyle="--", color="grey")
    ax.set_xlabel("k (clusters)")
    ax.set_ylabel("mean silhouette", color="#4c72b0")
    ax.set_xticks(ks)
    if all(row["inertia"] is not None for row in per_k):
        twin = ax.twinx()
        twin.plot(ks, [row["inertia"] for row in per_k], marker="s", color="#dd8452")
        twin.set_ylabel("inertia (within-cluster sum of squares)", color="#dd8452")
    ax.set_title(f"Silhouette per k (chosen k = {best_k})")


def draw_projection(
    ax: Axes, points: np.ndarray, labels: np.ndarray, variance: list[float]
) -> None:
    """Rows on the first two principal components of the scaled features, coloured by cluster."""
    for cluster in np.unique(labels):
        mask = labels == cluster
        ax.scatter(points[mask, 0], points[mask, 1], s=12, alpha=0.75, label=f"cluster {cluster}")
    shares = [*variance, 0.0, 0.0]
    ax.set_xlabel(f"PC1 ({shares[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({shares[1]:.0%} of variance)")
    ax.legend(fontsize="small", markerscale=1.5)
    ax.set_title("Clusters on two principal components")


def write_segment_plots(
    plots_dir: Path,
    metrics: dict[str, Any],
    points: np.ndarray,
    variance: list[float],
    labels: np.ndarray,
    profile: DataProfile,
) -> dict[str, Path]:
    return {
        "silhouette_per_k": save_figure(
            plots_dir / "silhouette_per_k.png",
            lambda ax: draw_silhouette_per_k(ax, metrics["per_k"], metrics["best_k"]),
        ),
        "projection": save_figure(
            plots_dir / "projection.png",
            lambda ax: draw_projection(ax, points, labels, variance),
        ),
        "missing_values": save_figure(
            plots_dir / "missing_values.png",
            lambda ax: draw_missing_values(ax, profile.missing_per_column, profile.n_rows),
        ),
    }


def segment_card(
    model_path: Path, run_id: str, metrics: dict[str, Any], inputs: dict[str, str]
) -> dict[str, Any]:
    """models/best.json: what the saved model is (its sha256 is checked when it is loaded)."""
    return {
        "model_file": model_path.name,
        "sha256": file_sha256(model_path),
        "run_id": run_id,
        "task": "clustering",
        "algorithm": metrics["algorithm"],
        "k": metrics["best_k"],
        "silhouette": metrics["silhouette"],
        "predicts": "the cluster of each row (raw columns in)",
        "input_columns": inputs,
        "package_versions": package_versions(),
    }


def write_segment_files(run: RunDir, outputs: SegmentOutputs) -> dict[str, Path]:
    """clusters.csv, cluster_profile.csv, metrics.json, profile.json, plots/, models/."""
    metrics, prepared, best, profile = (
        outputs.metrics,
        outputs.prepared,
        outputs.best,
        outputs.profile,
    )
    pd.DataFrame({"row": prepared.raw.index, "cluster": best.labels}).to_csv(
        run.path("clusters.csv"), index=False
    )
    outputs.profiles.to_csv(run.path("cluster_profile.csv"), index=False, float_format="%.6g")
    write_json(run.path("metrics.json"), metrics)
    write_json(run.path("profile.json"), asdict(profile))
    points, variance = outputs.projection
    plots = write_segment_plots(run.path("plots"), metrics, points, variance, best.labels, profile)
    model_path = save_model(outputs.model, run.path("models", MODEL_FILE_NAME))  # type: ignore[arg-type]
    card = segment_card(model_path, run.run_id, metrics, input_columns(prepared.raw))
    write_json(run.path("models", "best.json"), signed_card(card, run.final.parent))
    return plots


def profile_rows(profiles: pd.DataFrame) -> list[dict[str, Any]]:
    """cluster_profile.csv as table rows, numbers rounded for people."""
    rounded = profiles.round(3).astype(object).where(profiles.notna(), None)
    return [{str(k): v for k, v in row.items()} for row in rounded.to_dict(orient="records")]


def segment_summary_markdown(
    metrics: dict[str, Any], run_path: Path, plots: dict[str, Path], profiles: pd.DataFrame
) -> str:
    """The `run-summary` artifact of a segmentation run."""
    lines = [
        f"# {metrics['dataset']}: {metrics['best_k']} segments ({metrics['algorithm']})",
        "",
        f"- chosen by **silhouette**: {metrics['selection_reason']}",
        f"- rows clustered: {metrics['n_rows']}; run directory: `{run_path}`",
    ]
    comparison = metrics.get("held_out_comparison")
    if comparison:
        lines.append(
            f"- against held-out `{comparison['column']}`: adjusted Rand index "
            f"{comparison['adjusted_rand_index']:.3f}"
        )
    lines += ["", "## Silhouette per k", "", markdown_table(metrics["per_k"]), ""]
    lines += ["## Cluster profiles", "", markdown_table(profile_rows(profiles)), ""]
    lines += [
        f"![{name}]({png_data_uri(plots[name])})\n" for name in SUMMARY_PLOTS if name in plots
    ]
    return "\n".join(lines)


def segment_report_html(
    metrics: dict[str, Any],
    manifest: dict[str, Any],
    profiles: pd.DataFrame,
    plots: dict[str, Path],
) -> str:
    """One self-contained page (plots inlined) a person opens to see the segments."""
    title = f"tabpipe segmentation {html.escape(manifest['run_id'])}"
    images = "".join(
        f'<img alt="{html.escape(name)}" src="{png_data_uri(path)}">'
        for name, path in plots.items()
    )
    comparison = metrics.get("held_out_comparison")
    compared = (
        f"<p>Against held-out <code>{html.escape(comparison['column'])}</code>: adjusted Rand "
        f"index {format_value(comparison['adjusted_rand_index'])}.</p>"
        if comparison
        else ""
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title><style>{REPORT_STYLE}</style></head>
<body>
<h1>{title}</h1>
<p>Dataset <b>{html.escape(metrics["dataset"])}</b>, {metrics["n_rows"]} rows,
algorithm {metrics["algorithm"]}.</p>
<h2>Chosen: <span id="best-k">k = {metrics["best_k"]}</span></h2>
<p>{html.escape(metrics["selection_reason"])}</p>
{compared}
<h2>Silhouette per k</h2>
{html_table(metrics["per_k"])}
<h2>Cluster profiles</h2>
{html_table(profile_rows(profiles))}
<h2>Plots</h2>
<div id="plots">{images}</div>
</body></html>
"""


@dataclass(frozen=True)
class SegmentOutputs:
    """Everything a finished segmentation run leaves behind, gathered before one write."""

    metrics: dict[str, Any]
    prepared: PreparedFeatures
    best: Clustering
    model: Pipeline
    profile: DataProfile
    projection: tuple[np.ndarray, list[float]]
    profiles: pd.DataFrame


def write_segment_run(writer: RunWriter, outputs: SegmentOutputs, clock: StageClock) -> Path:
    """Every file of a segmentation run through the run's writer; returns the final directory."""
    writer.write_schema()
    writer.plots = write_segment_files(writer.run, outputs)
    write_json(writer.run.path("leaderboard.json"), outputs.metrics["per_k"])
    clock.lap("write")
    writer.manifest.update(status="completed", ended_at=utc_now(), stage_seconds=clock.seconds)
    html_text = segment_report_html(
        outputs.metrics, writer.manifest, outputs.profiles, writer.plots
    )
    return writer.finish(html_text)
