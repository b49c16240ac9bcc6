"""The prediction service: a FastAPI app around one checked model, plus the runs' reports.

POST /predict  JSON records, validated by a pydantic model derived from the training schema
GET  /health   liveness and which run is served
GET  /model    the model card
GET  /runs/... report pages, plots and tables of runs (never model files or staging directories)
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint's record type, which
# is built at run time, from real annotations.

import html
import math
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.responses import Response
from starlette.types import Scope

from tasks.errors import RegistryError, ValidationFailed
from tasks.serving.predict import RunModel, class_balance, predict_rows
from tasks.serving.registry import list_runs

SERVED_SUFFIXES = {".html", ".png", ".svg", ".csv", ".json", ".yaml"}


def python_type_of(dtype: str) -> type:
    """The JSON-side type of a training column: numbers, booleans, everything else text."""
    if dtype.startswith(("float", "int", "uint", "Float", "Int", "UInt")):
        return float
    if dtype in {"bool", "boolean"}:
        return bool
    return str


def record_model(run_model: RunModel) -> type[BaseModel]:
    """One JSON record: every input column is required (null allowed where training had gaps);
    unknown keys are refused. Field aliases keep column names that are not identifiers."""
    fields: dict[str, Any] = {}
    for i, (column, dtype) in enumerate(run_model.card["input_columns"].items()):
        schema_column = run_model.schema.columns.get(column)
        nullable = schema_column is None or bool(schema_column.nullable)
        python_type = python_type_of(str(dtype))
        annotation = python_type | None if nullable else python_type
        fields[f"column_{i}"] = (annotation, Field(..., alias=column))
    return create_model(
        "PredictionRecord",
        __config__=ConfigDict(extra="forbid", populate_by_name=False),
        **fields,
    )


class ReportFiles(StaticFiles):
    """Static files of runs, limited to reports, plots and tables."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        parts = Path(path).parts
        if any(part.startswith(".") for part in parts) or "models" in parts:
            raise HTTPException(status_code=404)
        if Path(path).suffix.lower() not in SERVED_SUFFIXES:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def failure_details(failure: ValidationFailed) -> list[dict[str, Any]]:
    """Schema failures in FastAPI's 422 shape: loc names the record and the column."""
    details = []
    for case in failure.failure_cases.to_dict(orient="records"):
        index = case.get("index")
        row = None if index is None or (isinstance(index, float) and math.isnan(index)) else index
        details.append(
            {
                "loc": ["body", row, case.get("column")],
                "msg": f"failed check {case.get('check')}",
                "input": None if pd.isna(case.get("failure_case")) else str(case["failure_case"]),
                "type": "schema",
            }
        )
    return details


def runs_index(runs_dir: Path) -> str:
    """A plain page linking every run's report, newest first (champions from the registry; a
    damaged registry is said in one sentence instead)."""
    try:
        rows = list_runs(runs_dir)
    except RegistryError as error:
        message = html.escape(str(error))
        return f"<!doctype html><title>tabpipe runs</title><h1>Runs</h1><p>{message}</p>"
    items = "".join(
        f'<li><a href="/runs/{row["run_id"]}/report.html">{row["run_id"]}</a> '
        f"{row['status']}{' (champion)' if row['champion'] else ''}</li>"
        for row in rows
    )
    return f"<!doctype html><title>tabpipe runs</title><h1>Runs</h1><ul>{items}</ul>"


def build_app(run_model: RunModel, runs_dir: Path) -> FastAPI:
    """The service for one loaded model; reports of every run under runs_dir."""
    app = FastAPI(title="tabpipe", description=f"Predictions of run {run_model.card['run_id']}")
    Record = record_model(run_model)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "run_id": run_model.card["run_id"]}

    @app.get("/model")
    def model_card() -> dict[str, Any]:
        return run_model.card

    @app.post("/predict")
    def predict(records: Annotated[list[Record], Body(min_length=1)]) -> Any:  # type: ignore[valid-type]
        frame = pd.DataFrame([r.model_dump(by_alias=True) for r in records])  # type: ignore[attr-defined]
        try:
            predictions = predict_rows(run_model, frame, "request body")
        except ValidationFailed as failure:
            return JSONResponse(status_code=422, content={"detail": failure_details(failure)})
        return {
            "run_id": run_model.card["run_id"],
            "predictions": predictions.drop(columns="row").to_dict(orient="records"),
            "class_balance": class_balance(predictions, run_model.classes),
        }

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return runs_index(runs_dir)

    app.mount("/runs", ReportFiles(directory=runs_dir, check_dir=False), name="runs")
    return app
