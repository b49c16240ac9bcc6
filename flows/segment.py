"""The segmentation flow: load -> validate -> profile -> prepare -> cluster (per k) -> choose k ->
write run. Read it top to bottom; every step is a task over a plain function."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field
from threadpoolctl import threadpool_limits

from flows.train import available_cores, begin_manifest, data_facts, generate_run_name
from tasks.artifacts import publish_report_link, publish_run_summary
from tasks.config import RunConfig, load_config
from tasks.rundir import (
    StageClock,
    failed_run_on_error,
    publish_run,
    start_run,
    utc_now,
    write_json,
)
from tasks.segment import (
    assignment_model,
    choose_k,
    cluster_profiles,
    compare_with_column,
    k_values,
    project_2d,
    segment_metrics,
)
from tasks.segment_outputs import (
    segment_summary_markdown,
    write_segment_files,
    write_segment_report,
)
from tasks.segment_steps import (
    cluster_k,
    prepare_segment_features,
    profile_segment_data,
    publish_segment_leaderboard,
)
from tasks.steps import load_data, validate_data


class SegmentParameters(BaseModel):
    """What the Prefect UI's run form asks for: a config, or a data file."""

    config: str | None = Field(None, description="A YAML config (its task becomes clustering).")
    data: str | None = Field(None, description="A CSV or Parquet file (when no config is given).")
    overrides: list[str] = Field(
        default_factory=list, description="key=value overrides, e.g. clustering.k_max=6."
    )


def resolve_segment_config(params: SegmentParameters) -> RunConfig:
    """The config with task: clustering; a target it names is held out and compared with."""
    return load_config(
        Path(params.config) if params.config else None,
        overrides=[*params.overrides, "task=clustering"],
        data=Path(params.data) if params.data else None,
    )


@flow(
    name="segment",
    flow_run_name=generate_run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=available_cores()),  # type: ignore[arg-type]
    log_prints=True,
)
def segment(params: SegmentParameters | None = None) -> str:
    """Cluster the rows for each k, let the silhouette choose k; returns the run directory."""
    config = resolve_segment_config(params or SegmentParameters())
    run = start_run(config.runs_dir, config.dataset_name)
    manifest = begin_manifest(config, run)
    clock = StageClock()
    with failed_run_on_error(run, manifest):
        table = load_data(config.data)
        manifest["data"] = data_facts(table)
        frame = validate_data(table, config, run)
        clock.lap("load_and_validate")
        profile = profile_segment_data(frame, config)
        prepared = prepare_segment_features(frame, profile, config)
        clock.lap("profile_and_prepare")
        with threadpool_limits(limits=1):  # one core per k; the ks run side by side
            futures = [
                cluster_k.submit(prepared.matrix, k, config.clustering, config.seed)
                for k in k_values(config.clustering, profile.n_rows)
            ]
            results = [future.result() for future in futures]
        best = choose_k(results)
        clock.lap("cluster")
        comparison = (
            compare_with_column(best.labels, frame[config.target]) if config.target else None
        )
        metrics = segment_metrics(
            config.dataset_name, config.clustering, profile, results, best, comparison
        )
        profiles = cluster_profiles(prepared.raw, best.labels, profile)
        plots = write_segment_files(
            run,
            metrics,
            prepared,
            best,
            assignment_model(prepared, best),
            profile,
            project_2d(prepared.matrix, config.seed),
            profiles,
        )
        manifest.update(status="completed", ended_at=utc_now(), stage_seconds=clock.seconds)
        write_segment_report(run, metrics, manifest, profiles, plots)
        write_json(run.path("leaderboard.json"), metrics["per_k"])
        publish_segment_leaderboard(metrics["per_k"], config.dataset_name)
        publish_run_summary(
            segment_summary_markdown(metrics, run.final, plots, profiles), config.dataset_name
        )
        clock.lap("write")
        manifest["stage_seconds"] = clock.seconds
        write_json(run.path("manifest.json"), manifest)
        final = publish_run(run)
    publish_report_link((final / "report.html").as_uri(), final)
    get_run_logger().info("Segmentation complete: %s (k=%s)", final, best.k)
    return str(final)
