"""Bounded YAML reading for everything a user or a form hands tabpipe (configs, --set values,
schema files): safe types only, no anchors or aliases (a 1 KB file of nested aliases expands to
gigabytes), and a size limit. It lives in the lowest layer because configs and schemas need it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tasks.errors import ConfigError

MAX_YAML_BYTES = 1_000_000


class AliasRefused(yaml.YAMLError):
    """An anchor (&name) or alias (*name) in YAML tabpipe reads."""

    def __init__(self, mark: Any) -> None:
        super().__init__()
        self.mark = mark

    def __str__(self) -> str:
        where = f"line {self.mark.line + 1}, column {self.mark.column + 1}"
        return f"{where}: anchors and aliases are not allowed"


class NoAliasLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses anchors and aliases before anything is expanded."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise AliasRefused(event.start_mark)
        return super().compose_node(parent, index)


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error as one line: where, and what."""
    if isinstance(error, AliasRefused):
        return str(error)
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or type(error).__name__
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def parse_yaml(text: str, source: str) -> Any:
    """Safe YAML without aliases; an error is a ConfigError naming the source in one sentence."""
    if len(text.encode("utf-8", errors="replace")) > MAX_YAML_BYTES:
        raise ConfigError(f"{source} is larger than {MAX_YAML_BYTES:,} bytes; refusing to read it.")
    try:
        return yaml.load(text, Loader=NoAliasLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"{source} is not valid YAML ({yaml_problem(error)}).") from None
    except RecursionError:
        raise ConfigError(f"{source} nests too deeply to read.") from None


def read_yaml_file(path: Path, what: str) -> Any:
    """A YAML file after its size is checked (before it is read) and parsed without aliases."""
    source = f"{what} '{path}'"
    if path.is_dir():
        raise ConfigError(f"{source} is a directory, not a YAML file.")
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(
                f"{source} is larger than {MAX_YAML_BYTES:,} bytes; refusing to read it."
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source} does not exist.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source} is not UTF-8 text.") from None
    except OSError as error:
        raise ConfigError(f"{source} cannot be read ({error.strerror}).") from None
    return parse_yaml(text, source)
