"""Generated benchmark data: binary target (~5% positives), 20 numeric + 2 categorical columns,
5% of feature cells missing; seeded, written as CSV and Parquet into benchmarks/data/."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data"
N_NUMERIC = 20
CATEGORIES = {"region": ["north", "south", "east", "west", "centre"], "plan": list("ABCDEFGH")}
POSITIVE_SHARE = 0.05
MISSING_SHARE = 0.05
TARGET = "churned"


def generate_frame(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """Features with signal in a few numeric columns and one categorical; ~5% positives."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n_rows, N_NUMERIC)).astype(np.float64)
    frame = pd.DataFrame(numeric, columns=[f"x{i:02d}" for i in range(N_NUMERIC)])
    for name, levels in CATEGORIES.items():
        frame[name] = rng.choice(levels, size=n_rows)
    logit = numeric[:, :5] @ np.array([1.2, -0.9, 0.7, 0.5, -0.4]) + 0.6 * numeric[:, 5] ** 2
    logit += np.where(frame["region"].to_numpy() == "south", 0.8, 0.0)
    score = logit + rng.logistic(size=n_rows)
    positive = score > np.quantile(score, 1 - POSITIVE_SHARE)  # the top 5% are positives
    missing = rng.random(frame.shape) < MISSING_SHARE
    frame = frame.mask(missing)
    frame[TARGET] = np.where(positive, "yes", "no")
    return frame


def data_paths(n_rows: int) -> dict[str, Path]:
    stem = f"generated_{n_rows}"
    return {"csv": DATA_DIR / f"{stem}.csv", "parquet": DATA_DIR / f"{stem}.parquet"}


def ensure_data(n_rows: int, seed: int = 0) -> dict[str, Path]:
    """Write the CSV and Parquet files for n_rows unless they are there already."""
    paths = data_paths(n_rows)
    if all(path.exists() for path in paths.values()):
        return paths
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    frame = generate_frame(n_rows, seed)
    frame.to_csv(paths["csv"], index=False)
    frame.to_parquet(paths["parquet"], engine="pyarrow", index=False)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", nargs="+", type=int, help="e.g. 10000 100000 1000000")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for n_rows in args.rows:
        for kind, path in ensure_data(n_rows, args.seed).items():
            print(f"{n_rows} rows ({kind}): {path}")


if __name__ == "__main__":
    main()
