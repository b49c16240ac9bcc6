"""Loading a config with the checks that need the model families or the schema, so an unknown
family, grid parameter or schema is reported before Prefect starts."""

from __future__ import annotations

import os
from pathlib import Path

from schemas.infer import load_schema
from tasks.config import RunConfig, parse_config
from tasks.errors import ConfigError, DataError
from tasks.model_selection.extra_families import require_installed
from tasks.model_selection.pipeline import (
    REGRESSION_FAMILIES,
    ModelFamily,
    family_registry,
    unknown_grid_parameters,
)


def families_for(task: str) -> dict[str, ModelFamily]:
    """The families a config may name: its task's, or (task: auto) any task's."""
    if task == "auto":
        return {**REGRESSION_FAMILIES, **family_registry("binary")}
    return family_registry(task)


def check_model_families(config: RunConfig, source: str) -> None:
    """Every family in `models` and `grids` exists, and every grid key is an estimator parameter."""
    families = families_for(config.task)
    known = ", ".join(families)
    for position, family in enumerate(config.models):
        if family not in families:
            raise ConfigError(
                f"{source}: key 'models.{position}' names an unknown model family '{family}' "
                f"(known: {known})."
            )
        require_installed(family, f"{source}: key 'models.{position}'")
    for family, grid in config.grids.items():
        if family not in families:
            raise ConfigError(
                f"{source}: key 'grids.{family}' names an unknown model family (known: {known})."
            )
        require_installed(family, f"{source}: key 'grids.{family}'")
        unknown = unknown_grid_parameters(families[family], grid)
        if unknown:
            estimator = type(families[family].build(0)).__name__
            raise ConfigError(
                f"{source}: key 'grids.{family}.{unknown[0]}' is not a parameter of {estimator}."
            )


def check_schema(config: RunConfig, source: str) -> None:
    """The schema reference imports and names a pandera schema."""
    if config.schema_ref is None:
        return
    try:
        load_schema(config.schema_ref)
    except ConfigError as error:
        raise ConfigError(f"{source}: key 'schema': {error}") from error


def check_data_file(config: RunConfig) -> None:
    """A data file that is not there (or is a folder), said before a run starts (the flow would
    say it too, but only after starting Prefect and a run that then fails)."""
    if not config.data.exists():
        raise DataError(f"Data file '{config.data}' does not exist.")
    if config.data.is_dir():
        raise DataError(f"Data file '{config.data}' is a directory; name a CSV or Parquet file.")


def check_runs_dir(runs_dir: Path) -> None:
    """runs_dir is a folder tabpipe can write (or can create), said before a run starts."""
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ConfigError(
            f"runs_dir '{runs_dir}' is a file, not a folder; set runs_dir to a folder."
        )
    existing = runs_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"runs_dir '{runs_dir}' cannot be created: '{existing}' is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"runs_dir '{runs_dir}' is not writable ('{existing}' is read-only); set runs_dir "
            "to a writable folder."
        )


def check_references(config: RunConfig, source: str) -> None:
    check_model_families(config, source)
    check_schema(config, source)


def load_config(
    path: Path | None,
    overrides: list[str] | None = None,
    data: Path | None = None,
    target: str | None = None,
) -> RunConfig:
    """The config parsed (tasks.config) and checked against the families and the schema."""
    config = parse_config(path, overrides=overrides, data=data, target=target)
    check_references(config, str(path) if path else "command line")
    return config
