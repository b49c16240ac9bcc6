"""The prediction service: a FastAPI app around one checked model, plus the runs' reports.

POST /predict  JSON records, validated by a pydantic model derived from the training schema
GET  /health   liveness and which run is served
GET  /model    the model card
GET  /runs/... report pages, plots and tables of runs (never model files or staging directories)

For a shared network: TABPIPE_API_TOKEN (a bearer token every route but /health then needs),
a request size limit (TABPIPE_API_MAX_BYTES, 10 MB by default), errors that echo at most 200
characters of any input, and HTML that escapes every name it shows.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint's record type, which
# is built at run time, from real annotations.

import hmac
import html
import math
import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import pandas as pd
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tasks.errors import RegistryError, ValidationFailed
from tasks.serving.predict import RunModel, predict_rows, prediction_summary
from tasks.serving.registry import list_runs

SERVED_SUFFIXES = {".html", ".png", ".svg", ".csv", ".json", ".yaml"}
TOKEN_ENV = "TABPIPE_API_TOKEN"
MAX_BYTES_ENV = "TABPIPE_API_MAX_BYTES"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_ECHO = 200  # characters of a user's input an error may repeat
OPEN_PATHS = {"/health"}


def python_type_of(dtype: str) -> type:
    """The JSON-side type of a training column: integers (a fraction is refused, not
    truncated), other numbers, booleans, everything else text."""
    if dtype.startswith(("int", "uint", "Int", "UInt")):
        return int
    if dtype.startswith(("float", "Float")):
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
                "input": None if pd.isna(case.get("failure_case")) else short(case["failure_case"]),
                "type": "schema",
            }
        )
    return details


def short(value: Any) -> Any:
    """A user's value as echoed in an error: at most MAX_ECHO characters of it; an infinite or
    NaN number as text (JSON has no such numbers: echoed as is, they made the answer a 500)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}... ({len(text)} characters)"


def shortened_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's 422 detail with every echoed input cut to MAX_ECHO characters."""
    return [
        {
            "loc": [short(part) for part in error.get("loc", [])],
            "msg": short(str(error.get("msg", ""))),
            "type": error.get("type"),
            **({"input": short(error["input"])} if "input" in error else {}),
        }
        for error in errors
    ]


def runs_index(runs_dir: Path) -> str:
    """A plain page linking every run's report, newest first; every name is escaped (a run id
    comes from a data file's name, which can hold markup). Champions come from the registry; a
    damaged registry is said in one sentence instead."""
    try:
        rows = list_runs(runs_dir)
    except RegistryError as error:
        message = html.escape(str(error))
        return f"<!doctype html><title>tabpipe runs</title><h1>Runs</h1><p>{message}</p>"
    items = "".join(
        f'<li><a href="/runs/{html.escape(quote(row["run_id"]))}/report.html">'
        f"{html.escape(row['run_id'])}</a> "
        f"{html.escape(str(row['status']))}{' (champion)' if row['champion'] else ''}</li>"
        for row in rows
    )
    return f"<!doctype html><title>tabpipe runs</title><h1>Runs</h1><ul>{items}</ul>"


DOCS_ASSETS_URL = "/docs-assets"


def add_offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the assets the fastapi-offline package ships (swagger-ui 5, which
    reads FastAPI's OpenAPI 3.1), instead of FastAPI's default CDN links."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API docs",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
        )


class SharedNetworkGuard:
    """ASGI middleware: a bearer token on every route but /health (when one is set), and a
    request body limit (413), counted as the body arrives, Content-Length or not."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_bytes: int) -> None:
        self.app, self.token, self.max_bytes = app, token, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token and scope["path"] not in OPEN_PATHS and not self.authorized(scope):
            await plain_json(send, 401, "Missing or wrong bearer token.", bearer=True)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await plain_json(send, 413, f"Request body is larger than {self.max_bytes} bytes.")
            return
        await self.app(scope, self.counting(receive, send), send)

    def authorized(self, scope: Scope) -> bool:
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, given = header.decode("latin-1").partition(" ")
        expected = self.token or ""
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), expected)

    def counting(self, receive: Receive, send: Send) -> Receive:
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        return limited


class BodyTooLarge(HTTPException):
    """A chunked body went past the limit while it arrived (FastAPI passes HTTPExceptions on)."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Request body is too large.")


async def plain_json(send: Send, status: int, detail: str, bearer: bool = False) -> None:
    response = JSONResponse(status_code=status, content={"detail": detail})
    if bearer:
        response.headers["www-authenticate"] = "Bearer"
    await response({"type": "http"}, receive_nothing, send)


async def receive_nothing() -> Message:
    return {"type": "http.disconnect"}


def api_token_from_env() -> str | None:
    return os.environ.get(TOKEN_ENV) or None


def max_bytes_from_env() -> int:
    raw = os.environ.get(MAX_BYTES_ENV, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_BYTES


def build_app(
    run_model: RunModel,
    runs_dir: Path,
    *,
    api_token: str | None = None,
    max_bytes: int | None = None,
) -> FastAPI:
    """The service for one loaded model; reports of every run under runs_dir. The token and the
    size limit default to TABPIPE_API_TOKEN and TABPIPE_API_MAX_BYTES."""
    app = FastAPI(
        title="tabpipe",
        description=f"Predictions of run {run_model.card['run_id']}",
        docs_url=None,  # served below from packaged assets: /docs works offline
        redoc_url=None,
    )
    add_offline_docs(app)
    app.add_middleware(
        SharedNetworkGuard,
        token=api_token if api_token is not None else api_token_from_env(),
        max_bytes=max_bytes or max_bytes_from_env(),
    )
    Record = record_model(run_model)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": shortened_errors(error.errors())})

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
            ("class_balance" if run_model.classes else "value_summary"): prediction_summary(
                predictions, run_model.classes
            ),
        }

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return runs_index(runs_dir)

    app.mount("/runs", ReportFiles(directory=runs_dir, check_dir=False), name="runs")
    return app
