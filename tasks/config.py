"""Run configuration: one YAML per dataset, validated by pydantic (unknown keys are errors)."""

from __future__ import annotations

import difflib
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

from schemas.safe_yaml import parse_yaml, read_yaml_file
from tasks.errors import ConfigError

MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's random_state bound
YAML_SCHEMA_SUFFIXES = (".yaml", ".yml")
MAX_NAME_LENGTH = 100  # run ids add about 25 characters; file names stop at 255

Rebalancing = Literal["none", "class_weight", "random_over", "random_under", "smote", "auto"]
TaskKind = Literal["auto", "binary", "multiclass", "regression", "clustering"]
# The roles a column can have (tasks/data/roles.py decides them; a config may declare one).
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
    groups: str | None = Field(
        None,
        description="Column whose rows stay together in train or test (and in every fold); "
        "'auto' uses the column tabpipe detects. It is not a feature.",
    )
    time: str | None = Field(
        None,
        description="Column that orders the rows: the test set is the latest share and CV "
        "chains forward. It is not a feature.",
    )
    gap: int = Field(0, ge=0, description="With time: rows left out between train and test.")

    @model_validator(mode="after")
    def _one_way_to_split(self) -> SplitConfig:
        if self.groups and self.time:
            raise ValueError("set groups or time, not both")
        if self.gap and not self.time:
            raise ValueError("gap needs time (a time-ordered split)")
        return self


class DiagnosticsConfig(StrictModel):
    """Thresholds of the run's diagnostics (the table in docs/trust.md)."""

    enabled: bool = True
    proxy_auc: float = Field(0.97, gt=0.5, le=1.0)
    proxy_balanced_accuracy: float = Field(0.95, gt=0.0, le=1.0)
    proxy_r2: float = Field(0.90, gt=0.0, le=1.0)
    proxy_margin: float = Field(0.15, gt=0.0, description="Single column above the best model.")
    duplicates_share: float = Field(0.05, ge=0.0, le=1.0)
    shift_auc: float = Field(0.6, gt=0.5, le=1.0)
    shift_column_auc: float = Field(0.55, gt=0.5, le=1.0)
    baseline_confidence: float = Field(0.95, gt=0.5, lt=1.0)
    overfitting_gap: float = Field(0.1, gt=0.0)
    unstable_ratio: float = Field(1.0, gt=0.0)
    test_interval_width: float = Field(0.2, gt=0.0)
    max_rows: int = Field(10_000, ge=100, description="Rows a diagnostic model sees at most.")
    drift_threshold: float = Field(0.1, gt=0.0, description="Wasserstein / Jensen-Shannon.")
    drift_p_value: float = Field(0.05, gt=0.0, lt=1.0, description="KS / chi-squared.")
    drift_share: float = Field(0.5, gt=0.0, le=1.0, description="Drifted columns for 'drift'.")


class SearchConfig(StrictModel):
    strategy: Literal["auto", "grid", "halving", "random"] = Field(
        "auto",
        description="auto: successive halving for large data with many candidates, else grid.",
    )
    n_iter: int = Field(20, ge=1, description="Candidates per family for strategy=random.")
    time_budget: float | None = Field(
        None,
        gt=0,
        description="Minutes the search may take; candidates that would not fit are skipped.",
    )
    ensemble: bool | Literal["auto"] = Field(
        "auto",
        description="Also try a weighted blend of each family's best; it wins only if CV says "
        "so. auto: below 50,000 training rows.",
    )

    @model_validator(mode="after")
    def _budget_needs_batches(self) -> SearchConfig:
        if self.time_budget is not None and self.strategy == "halving":
            raise ValueError(
                "time_budget works with strategy auto, grid or random (a halving round cannot "
                "stop part-way); remove one of them"
            )
        return self


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
    name: str = Field("", max_length=MAX_NAME_LENGTH)
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
    seed: int = Field(42, ge=0, le=MAX_SEED)
    n_jobs: int | None = Field(None, ge=1, description="Cores to use; all of them by default.")
    runs_dir: Path = Path("runs")
    schedule: ScheduleConfig | None = None
    clustering: ClusteringConfig = ClusteringConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()

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


MAX_ECHO = 200  # characters of a user's value repeated in an error message


def shorten(value: Any) -> str:
    """repr of a value, cut to MAX_ECHO characters (an error never echoes a whole payload)."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}... ({len(text)} characters)"


def known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed next to the one at loc (the fields of the model that holds it)."""
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation: Any = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            # e.g. `threshold: ThresholdConfig | None`: the model inside the union
            annotation = next(
                (
                    a
                    for a in getattr(annotation, "__args__", ())
                    if isinstance(a, type) and issubclass(a, BaseModel)
                ),
                None,
            )
        if annotation is None:
            return []
        model = annotation
    return [field.alias or name for name, field in model.model_fields.items()]


def did_you_mean(loc: tuple[Any, ...]) -> str:
    matches = difflib.get_close_matches(str(loc[-1]), known_keys(loc), n=1, cutoff=0.6)
    return f" Did you mean '{'.'.join([*map(str, loc[:-1]), matches[0]])}'?" if matches else ""


def source_of(loc: tuple[Any, ...], source: str, overrides: list[str]) -> str:
    """The --set that wrote the failing key, if one did (the last wins); else the config file."""
    key_path = [str(part) for part in loc]
    for assignment in reversed(overrides):
        keys = assignment.split("=", 1)[0].strip().split(".")
        if key_path[: len(keys)] == keys or keys[: len(key_path)] == key_path:
            return f"--set {shorten(assignment)[1:-1]}"
    return source


def _format_validation_error(
    error: ValidationError, source: str, overrides: list[str] | None = None
) -> str:
    first = error.errors()[0]
    key_path = ".".join(str(part) for part in first["loc"]) or "(top level)"
    source = source_of(tuple(first["loc"]), source, overrides or [])
    if first["type"] == "extra_forbidden":
        return (
            f"{source}: unknown key '{shorten(key_path)[1:-1]}'.{did_you_mean(tuple(first['loc']))}"
        )
    if first["type"] == "missing":
        return f"{source}: required key '{key_path}' is missing."
    message = " ".join(str(first["msg"]).lower().split())
    return f"{source}: key '{key_path}' {message} (got {shorten(first.get('input'))})."


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """Turn `a.b=value` into (['a', 'b'], value), the value parsed as YAML (so 3 is an int)."""
    shown = shorten(assignment)[1:-1]
    if "=" not in assignment:
        raise ConfigError(f"--set '{shown}' must look like key=value.")
    key, raw_value = assignment.split("=", 1)
    keys = key.strip().split(".")
    if not all(part.strip() for part in keys):
        raise ConfigError(f"--set '{shown}' names no key (it must look like key.path=value).")
    value = parse_yaml(raw_value, f"--set '{shown}': the value")
    return [part.strip() for part in keys], value


def apply_overrides(raw: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Return a copy of a raw config with each `key.path=value` applied."""
    merged: dict[str, Any] = yaml.safe_load(yaml.safe_dump(raw)) if raw else {}
    for assignment in assignments:
        keys, value = parse_override(assignment)
        node = merged
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                section = ".".join(keys[: depth + 1])
                raise ConfigError(
                    f"--set '{shorten(assignment)[1:-1]}': key '{section}' holds a value, not a "
                    f"section, so '{'.'.join(keys)}' cannot be set."
                )
            node = child
        node[keys[-1]] = value
    return merged


def override_keys(assignments: list[str]) -> list[str]:
    """The dotted keys a list of --set assignments sets (e.g. 'split.cv_folds')."""
    return [".".join(parse_override(a)[0]) for a in assignments]


def is_yaml_schema(reference: str) -> bool:
    return reference.lower().endswith(YAML_SCHEMA_SUFFIXES)


def refuse_code_schema_overrides(raw: dict[str, Any], assignments: list[str]) -> None:
    """A schema named on the command line or in a deployment form is a YAML file, never code:
    importing a Python schema runs it, so only a config file in the project may name one."""
    if "schema" not in override_keys(assignments):
        return
    reference = raw.get("schema")
    if reference is not None and not (isinstance(reference, str) and is_yaml_schema(reference)):
        raise ConfigError(
            f"--set schema={shorten(reference)[1:-1]}: a schema set from the command line or a "
            "deployment form must be a YAML schema file (pandera's to_yaml); name a Python "
            "schema in a config file of the project instead."
        )


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML config into a dict; a missing, oversized or malformed file (aliases included)
    is a ConfigError."""
    raw = read_yaml_file(path, "Config file")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"Config file '{path}' must be a mapping of keys to values.")
    return raw


def build_config(
    raw: dict[str, Any],
    source: str,
    base_dir: Path | None = None,
    overrides: list[str] | None = None,
) -> RunConfig:
    """Validate a raw mapping; relative data paths resolve against base_dir (the project root).
    An error in a key a --set wrote names that --set, not the file."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error, source, overrides)) from error
    if config.task != "clustering" and not config.target:
        # Only segmentation learns without a target; every other task names its column.
        raise ConfigError(f"{source}: required key 'target' is missing.")
    if base_dir is not None:
        try:
            schema_ref = resolve_schema_reference(config.schema_ref, base_dir)
        except ConfigError as error:
            raise ConfigError(f"{source}: key 'schema': {error}") from None
        config = config.model_copy(
            update={
                "data": base_dir / config.data,
                "runs_dir": base_dir / config.runs_dir,
                "schema_ref": schema_ref,
            }
        )
    return config


def resolve_schema_reference(reference: str | None, base_dir: Path) -> str | None:
    """A schema file ('schemas/x.yaml', 'schemas/x.py:Class') resolves against the project root,
    like data; so does a dotted module ('schemas.x:Class') whose file is there. Python schemas
    must be files of the project (or tabpipe's bundled schemas): naming one imports it."""
    if not reference:
        return reference
    if is_yaml_schema(reference):
        return str(base_dir / reference)
    if ":" not in reference:
        return reference  # load_schema says what a reference must look like
    module, _, attribute = reference.rpartition(":")
    if module.endswith(".py"):
        local = base_dir / module
        check_code_inside(local, base_dir, reference)
        return f"{local}:{attribute}"
    relative = Path(*module.split(".")).with_suffix(".py")
    local_file, bundled_file = base_dir / relative, BUNDLED_SCHEMAS.parent / relative
    bundled = module.startswith("schemas.") and bundled_file.is_file()
    if bundled and (not local_file.is_file() or local_file.resolve() == bundled_file.resolve()):
        return reference  # tabpipe's own bundled schema, imported as a module
    if local_file.is_file():
        check_code_inside(local_file, base_dir, reference)
        return f"{local_file}:{attribute}"
    raise ConfigError(
        f"Schema '{reference}' names no module file inside the project '{base_dir}' (a Python "
        "schema is imported, so only the project's own files are)."
    )


BUNDLED_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def is_within(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def check_code_inside(path: Path, base_dir: Path, reference: str) -> None:
    if not (is_within(path, base_dir) or is_within(path, BUNDLED_SCHEMAS)):
        raise ConfigError(
            f"Schema file '{path}' ({reference}) lies outside the project '{base_dir}'; a Python "
            "schema is imported (it runs), so only the project's own files are, or use a YAML "
            "schema."
        )


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
    refuse_code_schema_overrides(raw, overrides or [])
    source = str(path) if path else "command line"
    return build_config(
        raw,
        source,
        base_dir=project_root_of(path) if path else Path.cwd(),
        overrides=overrides or [],
    )


def project_root_of(config_path: Path) -> Path:
    """Data paths in a config are relative to the project root: the parent of configs/."""
    folder = config_path.resolve().parent
    return folder.parent if folder.name == "configs" else folder
