"""The layout's rules (docs/architecture.md): no import cycles, lower layers never import upper
ones, no folder of more than 12 modules, nothing outside the repository named in code.

`python tests/invariants/test_layout.py` prints the import graph, one module a line."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flows", "tasks", "schemas")
MAX_MODULES_PER_FOLDER = 12
# Lowest first: a module may import its own layer and any layer listed before it.
LAYERS = (
    "tasks.errors",
    "tasks.memory",
    "schemas",
    "tasks.config",
    "tasks.data",
    "tasks.model_selection",
    "tasks.evaluation",
    "tasks.run",
    "tasks.serving",
    "tasks.segmentation",
    "tasks.checks",
    "tasks.steps",
    "flows",
    "flows.cli",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Project modules a file imports, at the top or inside functions alike."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in candidates if name in known)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imported_modules(path, known) - {name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    """The index of the most specific layer the module belongs to."""
    matches = [
        i for i, layer in enumerate(LAYERS) if module == layer or module.startswith(layer + ".")
    ]
    return max(matches, key=lambda i: len(LAYERS[i]))


def test_there_is_no_import_cycle() -> None:
    try:
        tuple(TopologicalSorter(import_graph()).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_lower_layers_never_import_upper_ones() -> None:
    upward = [
        f"{module} ({LAYERS[layer_of(module)]}) imports {target} ({LAYERS[layer_of(target)]})"
        for module, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_schemas_depend_on_nothing_in_tasks_but_its_errors() -> None:
    reaching = {
        target
        for module, targets in import_graph().items()
        if module.startswith("schemas")
        for target in targets
        if target.startswith("tasks")
    }
    assert reaching <= {"tasks.errors"}


def test_no_folder_holds_more_than_twelve_modules() -> None:
    per_folder: dict[Path, int] = defaultdict(int)
    for path in project_modules().values():
        if path.name != "__init__.py":
            per_folder[path.parent.relative_to(ROOT)] += 1
    assert {str(f): n for f, n in per_folder.items() if n > MAX_MODULES_PER_FOLDER} == {}


def test_no_code_names_files_outside_the_repository() -> None:
    sources = [*project_modules().values(), ROOT / "Makefile", *(ROOT / "benchmarks").glob("*.py")]
    outside = [str(p.relative_to(ROOT)) for p in sources if "../shared" in p.read_text()]
    assert outside == []


if __name__ == "__main__":
    for name, targets in sorted(import_graph().items()):
        sys.stdout.write(f"{name} -> {', '.join(sorted(targets)) or '-'}\n")
