"""Data contracts for new data: `tabpipe init` writes a starter config and YAML schema,
`tabpipe validate` checks a file against a schema without training."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import yaml

from schemas.infer import class_name_for, infer_schema, load_schema, schema_yaml_source
from tasks.config import RunConfig, parse_config, project_root_of
from tasks.data.profile import DataProfile, profile_frame, profile_notes
from tasks.data.read import LoadedTable, read_table
from tasks.data.split import check_class_sizes
from tasks.data.validate import validate_frame
from tasks.errors import ConfigError


@dataclass(frozen=True)
class StarterFiles:
    config: Path
    schema: Path
    schema_ref: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationReport:
    """A file that passed its schema (and, with a target, the checks training makes)."""

    source: Path
    schema_name: str
    n_rows: int
    n_columns: int
    notes: list[str] = field(default_factory=list)


def dataset_name_for(path: Path) -> str:
    """A config name from a file name: 'Heart Disease.csv' -> 'heart_disease'."""
    return re.sub(r"[^0-9a-zA-Z_-]+", "_", path.stem).strip("_").lower() or "data"


def path_for_config(path: Path, root: Path) -> str:
    """Relative to the project root when inside it (configs travel with the project), else
    absolute."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(resolved)


def starter_config_text(
    name: str,
    data_ref: str,
    target: str,
    schema_ref: str,
    source: Path,
    roles: dict[str, str] | None = None,
) -> str:
    """A commented YAML config that trains with every default; the user edits from here.
    `roles` are the inferred column roles, written out so a person can change any of them."""
    config: dict[str, Any] = {
        "name": name,
        "data": data_ref,
        "target": target,
        "schema": schema_ref,
        "rebalance": ["auto"],
        "split": {"test_size": 0.2, "cv_folds": 5},
        "seed": 42,
    }
    if roles:
        config["columns"] = roles
    header = (
        f"# Written by `tabpipe init` from {json.dumps(source.name)}. Tighten the YAML schema,\n"
        "# pick `models:` and `grids:` if you like, then run `tabpipe train` on this file.\n"
        "# `columns:` holds the role inferred for each column (identifier, group_key, text and\n"
        "# constant columns are left out); change a role to override it.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def refuse_overwrite(paths: list[Path], force: bool) -> None:
    for path in paths:
        if path.exists() and not force:
            raise ConfigError(f"File '{path}' already exists; pass --force to replace it.")


def write_starter_files(
    data: Path,
    target: str,
    configs_dir: Path,
    schemas_dir: Path,
    name: str | None = None,
    force: bool = False,
) -> StarterFiles:
    """Infer a schema from the file, write it as a pandera YAML schema (data, not code, so any
    column name works) and a config using it; both are loaded back, so what init writes loads."""
    name = name or dataset_name_for(data)
    if not re.fullmatch(r"[0-9A-Za-z_-]+", name):
        raise ConfigError(f"Name '{name}' may contain only letters, digits, '-' and '_'.")
    table = read_table(data)
    profile = profile_frame(table.frame, target)  # a target training cannot use is said now
    class_name = class_name_for(name)
    config_path = configs_dir / f"{name}.yaml"
    schema_path = schemas_dir / f"{name}.yaml"
    refuse_overwrite([config_path, schema_path], force)
    schema = infer_schema(table.frame, name=class_name)
    root = project_root_of(config_path)
    schema_ref = path_for_config(schema_path, root)
    schemas_dir.mkdir(parents=True, exist_ok=True)
    schema_path.write_text(schema_yaml_source(schema, data.name), encoding="utf-8")
    configs_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(
        starter_config_text(
            name,
            path_for_config(data, root),
            target,
            schema_ref,
            data,
            roles={column: role.role for column, role in profile.column_roles.items()},
        ),
        encoding="utf-8",
    )
    load_schema(parse_config(config_path).schema_ref or schema_ref)  # the written files load
    notes = [*table.notes, *profile_notes(profile)]
    return StarterFiles(config_path, schema_path, schema_ref, notes)


def schema_for(reference: str | None, frame: pd.DataFrame, name: str) -> pa.DataFrameSchema:
    """The named schema, else one inferred from the frame (which still checks for inf)."""
    return load_schema(reference) if reference else infer_schema(frame, name=f"{name}_inferred")


def target_checks(frame: pd.DataFrame, config: RunConfig) -> DataProfile:
    """What training would refuse about the target: missing, empty, one class, tiny classes."""
    profile = profile_frame(
        frame,
        config.target,
        task=config.task,
        positive_label=config.positive_label,
        drop_columns=config.drop_columns,
        columns=config.columns,
    )
    check_class_sizes(profile.class_counts, profile.target)
    return profile


def validate_table(
    table: LoadedTable, schema: pa.DataFrameSchema, config: RunConfig | None = None
) -> ValidationReport:
    """Validate lazily (ValidationFailed lists every failure); with a config, check its target."""
    frame = validate_frame(table.frame, schema, str(table.path))
    notes = list(table.notes)
    if config is not None:
        notes += profile_notes(target_checks(frame, config))
    return ValidationReport(table.path, str(schema.name), *frame.shape, notes=notes)


def validate_config_data(config: RunConfig) -> ValidationReport:
    table = read_table(config.data)
    schema = schema_for(config.schema_ref, table.frame, config.dataset_name)
    return validate_table(table, schema, config)


def validate_file(data: Path, schema_ref: str | None) -> ValidationReport:
    table = read_table(data)
    return validate_table(table, schema_for(schema_ref, table.frame, dataset_name_for(data)))
