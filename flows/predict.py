"""The batch-predict flow: load a checked model -> load new rows -> validate and predict -> write.

Deploy it on a schedule next to training with `predict_deployment(...)`, e.g. in `prefect.serve`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from tasks.serving.predict import check_output_path, prediction_summary
from tasks.steps import load_data, load_model, predict_new_rows, write_batch_predictions

CLASS_BALANCE_KEY = "predicted-class-balance"
VALUE_SUMMARY_KEY = "predicted-values"


class PredictParameters(BaseModel):
    """What the Prefect UI's run form asks for."""

    model: str = Field(..., description="A run directory, or champion:NAME.")
    data: str = Field(..., description="New rows: a CSV or Parquet file.")
    out: str = Field(..., description="Where to write predictions (.csv or .parquet).")
    runs_dir: str = Field("runs", description="The runs directory (models outside need trust).")
    trust: bool = Field(
        False,
        description="Load a model from outside runs_dir, or one this machine did not sign.",
    )
    allow_failed: bool = Field(
        False, description="Use the model of a failed or unfinished run (refused otherwise)."
    )


def generate_predict_run_name() -> str:
    params = flow_run.parameters.get("params") or {}
    if isinstance(params, BaseModel):
        params = params.model_dump()
    return f"predict-{Path(str(params.get('data', 'rows'))).stem}"


@flow(name="batch-predict", flow_run_name=generate_predict_run_name, log_prints=True)
def batch_predict(params: PredictParameters) -> dict[str, Any]:
    """Predict new rows with a saved model; returns the output path and what was predicted (the
    class balance, or a regressor's value summary)."""
    run_model = load_model(params.model, Path(params.runs_dir), params.trust, params.allow_failed)
    check_output_path(
        Path(params.out),
        data=Path(params.data),
        runs_dir=Path(params.runs_dir),
        run_dir=run_model.run_dir,
    )
    table = load_data(Path(params.data))
    predictions = predict_new_rows(run_model, table)
    out = write_batch_predictions(predictions, Path(params.out))
    summary = prediction_summary(predictions, run_model.classes)
    create_table_artifact(
        key=CLASS_BALANCE_KEY if run_model.classes else VALUE_SUMMARY_KEY,
        table=summary,
        description=f"{table.path.name} scored by {run_model.card['run_id']}",
    )
    get_run_logger().info("Wrote %d predictions to %s", len(predictions), out)
    return {
        "out": str(out),
        "rows": len(predictions),
        "run_id": run_model.card["run_id"],
        ("class_balance" if run_model.classes else "value_summary"): summary,
    }


def predict_deployment(params: PredictParameters, cron: str | None = None) -> Any:
    """A deployment of batch-predict (for `prefect.serve`), on a cron schedule when given."""
    return batch_predict.to_deployment(
        name=f"batch-predict-{Path(params.data).stem}",
        parameters={"params": params.model_dump()},
        cron=cron,
        tags=["tabpipe", "batch-predict"],
    )
