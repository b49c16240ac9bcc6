"""The segmentation flow: load -> validate -> profile -> prepare -> cluster (per k) -> choose k ->
write run. Read it top to bottom; every step is a task over a plain function."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field
from threadpoolctl import threadpool_limits

from flows.runtime import (
    available_cores,
    current_flow_run_id,
    data_facts,
    generate_run_name,
    untagged_task_runs,
)
from tasks.checks import load_config
from tasks.config import RunConfig
from tasks.run.artifacts import (
    publish_report_link,
    publish_run_summary,
    publish_segment_leaderboard,
)
from tasks.run.outputs import RunWriter
from tasks.run.rundir import StageClock
from tasks.segmentation.clustering import (
    assignment_model,
    choose_k,
    cluster_profiles,
    compare_with_column,
    k_values,
    project_2d,
    segment_metrics,
)
from tasks.segmentation.outputs import (
    SegmentOutputs,
    segment_summary_markdown,
    write_segment_run,
)
from tasks.steps import (
    choose_schema,
    cluster_k,
    load_data,
    prepare_segment_features,
    profile_segment_data,
    validate_data,
)


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
    writer = RunWriter.begin(config, flow_run_id=current_flow_run_id())
    clock = StageClock()
    with writer.failed_on_error(), untagged_task_runs():
        table = load_data(config.data)
        writer.manifest["data"] = data_facts(table)
        schema = choose_schema(config, table)
        writer.schema_yaml = schema.to_yaml() or ""
        frame = validate_data(table, schema)
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
        outputs = SegmentOutputs(
            metrics=metrics,
            prepared=prepared,
            best=best,
            model=assignment_model(prepared, best),
            profile=profile,
            projection=project_2d(prepared.matrix, config.seed),
            profiles=cluster_profiles(prepared.raw, best.labels, profile),
        )
        final = write_segment_run(writer, outputs, clock)
    publish_segment_leaderboard(metrics["per_k"], config.dataset_name)
    publish_run_summary(
        segment_summary_markdown(metrics, final, writer.plots, outputs.profiles),
        config.dataset_name,
    )
    publish_report_link((final / "report.html").as_uri(), final)
    get_run_logger().info("Segmentation complete: %s (k=%s)", final, best.k)
    return str(final)
