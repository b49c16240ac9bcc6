"""Run configuration: one YAML per dataset, validated by pydantic (unknown keys are errors)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tasks.errors import ConfigError

Rebalancing = Literal["none", "class_weight", "random_over", "random_under", "smote", "auto"]
TaskKind = Literal["auto", "binary", "multiclass", "regression", "clustering"]
# The roles of tasks/data/roles.py a config may declare for a column.
ColumnRoleName = Literal[
    "identifier",
    "group_key",
    "text",
    "datetime",
    "categorical",
    "numeric",
    "constant",
    "boolean",
]
SelectionMetric = Literal[
    "roc_auc",
    "average_precision",
    "f1",
    "f1_macro",
    "f1_micro",
    "accuracy",
    "balanced_accuracy",
    "neg_root_mean_squared_error",
    "neg_mean_squared_error",
    "neg_mean_absolute_error",
    "r2",
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImputeConfig(StrictModel):
    numeric: Literal["median", "mean", "constant"] = "median"
    categorical: Literal["most_frequent", "constant"] = "most_frequent"
    numeric_fill_value: float = 0.0
    categorical_fill_value: str = "missing"


class SplitConfig(StrictModel):
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    cv_folds: int = Field(5, ge=2, le=20)


class SearchConfig(StrictModel):
    strategy: Literal["grid", "halving", "random"] = "grid"
    n_iter: int = Field(20, ge=1, description="Candidates per family for strategy=random.")


class EncodingConfig(StrictModel):
    """Bounded encoding: rare levels grouped, one-hot capped, a memory budget per fold."""

    max_one_hot: int = Field(
        30, ge=2, description="Most one-hot columns per categorical; more levels are grouped."
    )
    min_frequency: int = Field(
        5, ge=1, description="Levels seen in fewer training rows are grouped as infrequent."
    )
    memory_budget_mb: int = Field(
        1024, ge=16, description="Largest design matrix of one CV fold, in MB, before reducing."
    )


class ThresholdConfig(StrictModel):
    """Binary only: tune the decision threshold on out-of-fold training predictions."""

    objective: Literal["f1", "min_recall", "cost"] = "f1"
    min_recall: float = Field(0.8, gt=0.0, le=1.0)
    cost_fp: float = Field(1.0, ge=0.0)
    cost_fn: float = Field(1.0, ge=0.0)


class ClusteringConfig(StrictModel):
    """Segmentation (task: clustering): the range of k tried and the algorithm."""

    algorithm: Literal["kmeans", "agglomerative"] = "kmeans"
    k_min: int = Field(2, ge=2)
    k_max: int = Field(8, ge=2)
    linkage: Literal["ward", "complete", "average", "single"] = "ward"

    @model_validator(mode="after")
    def _k_range_is_ordered(self) -> ClusteringConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) must not exceed k_max ({self.k_max})")
        return self


class ScheduleConfig(StrictModel):
    cron: str | None = None
    interval_seconds: int | None = Field(None, ge=1)
    timezone: str = "UTC"


class RunConfig(StrictModel):
    """Everything a training run needs; every field but data and target has a default."""

    data: Path
    target: str = Field("", description="The column to predict; optional for task: clustering.")
    name: str = ""
    task: TaskKind = "auto"
    schema_ref: str | None = Field(
        None,
        alias="schema",
        description="'module:Class' of a pandera DataFrameModel; inferred from the data if absent.",
    )
    positive_label: str | None = None
    drop_columns: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnRoleName] = Field(
        default_factory=dict, description="Column roles that override the inferred ones."
    )
    encoding: EncodingConfig = EncodingConfig()
    impute: ImputeConfig = ImputeConfig()
    rebalance: list[Rebalancing] = Field(default_factory=lambda: ["auto"], min_length=1)  # type: ignore[arg-type]
    models: list[str] = Field(default_factory=list)
    grids: dict[str, dict[str, list[Any]]] = Field(default_factory=dict)
    selection_metric: SelectionMetric | None = None
    split: SplitConfig = SplitConfig()
    search: SearchConfig = SearchConfig()
    threshold: ThresholdConfig | None = None
    seed: int = 42
    n_jobs: int | None = Field(None, ge=1, description="Cores to use; all of them by default.")
    runs_dir: Path = Path("runs")
    schedule: ScheduleConfig | None = None
    clustering: ClusteringConfig = ClusteringConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("positive_label", mode="before")
    @classmethod
    def _label_as_text(cls, value: Any) -> Any:
        """Labels are compared as text: YAML and --set give 1, 1.0 or True for a label."""
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, int | float):
            return str(value)
        return value

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str) -> str:
        if value and not all(ch.isalnum() or ch in "-_" for ch in value):
            raise ValueError("may contain only letters, digits, '-' and '_'")
        return value

    @property
    def dataset_name(self) -> str:
        """The name runs, deployments and tags use: `name`, else the data file's stem."""
        return self.name or self.data.stem.replace(".", "-")


def _format_validation_error(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key_path = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key_path}'."
    if first["type"] == "missing":
        return f"{source}: required key '{key_path}' is missing."
    return f"{source}: key '{key_path}' {first['msg'].lower()} (got {first.get('input')!r})."


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """Turn `a.b=value` into (['a', 'b'], value), the value parsed as YAML (so 3 is an int)."""
    if "=" not in assignment:
        raise ConfigError(f"--set '{assignment}' must look like key=value.")
    key, raw_value = assignment.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw_value)


def apply_overrides(raw: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Return a copy of a raw config with each `key.path=value` applied."""
    merged: dict[str, Any] = yaml.safe_load(yaml.safe_dump(raw)) if raw else {}
    for assignment in assignments:
        keys, value = parse_override(assignment)
        node = merged
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return merged


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML config into a dict; a missing or malformed file is a ConfigError."""
    if not path.is_file():
        raise ConfigError(f"Config file '{path}' does not exist.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"Config file '{path}' is not valid YAML: {error}.") from error
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"Config file '{path}' must be a mapping of keys to values.")
    return raw


def build_config(raw: dict[str, Any], source: str, base_dir: Path | None = None) -> RunConfig:
    """Validate a raw mapping; relative data paths resolve against base_dir (the project root)."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error, source)) from error
    if config.task != "clustering" and not config.target:
        # Only segmentation learns without a target; every other task names its column.
        raise ConfigError(f"{source}: required key 'target' is missing.")
    if base_dir is not None:
        config = config.model_copy(
            update={
                "data": base_dir / config.data,
                "runs_dir": base_dir / config.runs_dir,
                "schema_ref": resolve_schema_reference(config.schema_ref, base_dir),
            }
        )
    return config


def resolve_schema_reference(reference: str | None, base_dir: Path) -> str | None:
    """A schema file path ('schemas/x.py:Class') resolves against the project root, like data;
    so does a dotted module ('schemas.x:Class') whose file is there but not on sys.path."""
    if not reference or ":" not in reference:
        return reference
    module, _, attribute = reference.rpartition(":")
    if module.endswith(".py"):
        return f"{base_dir / module}:{attribute}"
    local_file = base_dir / (module.replace(".", "/") + ".py")
    if local_file.is_file() and not module_importable(module):
        return f"{local_file}:{attribute}"
    return reference


def module_importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def parse_config(
    path: Path | None,
    overrides: list[str] | None = None,
    data: Path | None = None,
    target: str | None = None,
) -> RunConfig:
    """Config from a YAML file and/or --data/--target, with --set overrides applied last; the
    checks that need model families or schemas are tasks.checks.load_config's."""
    raw: dict[str, Any] = read_config_file(path) if path else {}
    if data is not None:
        raw["data"] = str(data.resolve())
    if target is not None:
        raw["target"] = target
    raw = apply_overrides(raw, overrides or [])
    source = str(path) if path else "command line"
    return build_config(raw, source, base_dir=project_root_of(path) if path else Path.cwd())


def project_root_of(config_path: Path) -> Path:
    """Data paths in a config are relative to the project root: the parent of configs/."""
    folder = config_path.resolve().parent
    return folder.parent if folder.name == "configs" else folder
