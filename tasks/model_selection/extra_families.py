"""Model families from packages beyond scikit-learn, registered through one hook
(`family_registry` in pipeline.py). Each names the package it needs: a config that names a
family whose package is not installed gets a ConfigError saying what to install, never a crash.

LightGBM is in the lock and opt-in (`models: [..., lightgbm]`): benchmarks/README.md has the
comparison with XGBoost and CatBoost (larger installs, not adopted) and the families tabpipe had.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from tasks.errors import ConfigError

# family name -> (the package it imports, the pinned requirement to install)
REQUIRED_PACKAGES = {"lightgbm": ("lightgbm", "lightgbm==4.7.0")}


def lightgbm_classifier(seed: int) -> Any:
    from lightgbm import LGBMClassifier

    # One thread per fit: the CV runs folds in parallel processes already (tasks/parallel.py).
    return LGBMClassifier(n_jobs=1, random_state=seed, verbose=-1)


def lightgbm_regressor(seed: int) -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(n_jobs=1, random_state=seed, verbose=-1)


LIGHTGBM_GRID: dict[str, list[Any]] = {"num_leaves": [15, 31], "learning_rate": [0.05, 0.1]}


def extra_family_specs(task: str) -> list[dict[str, Any]]:
    """The extra families for a task, as ModelFamily's keyword arguments (pipeline.py builds
    them); opt-in: none is in the default grid."""
    regression = task == "regression"
    return [
        {
            "name": "lightgbm",
            "build": lightgbm_regressor if regression else lightgbm_classifier,
            "grid": LIGHTGBM_GRID,
            "supports_class_weight": not regression,
            "in_default_grid": False,
        }
    ]


def require_installed(name: str, where: str) -> None:
    """A ConfigError naming the package to install when a family's package is missing."""
    if name not in REQUIRED_PACKAGES:
        return
    module, requirement = REQUIRED_PACKAGES[name]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"{where} names the model family '{name}', but its package is not installed: "
            f"run `pip install {requirement}` (or remove '{name}')."
        )
