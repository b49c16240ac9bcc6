"""Column names are data: any string works end to end through the plain pipeline functions.

A property-based test (hypothesis) draws column names from what breaks code that treats names as
code: Python keywords, names of pandas / numpy / scikit-learn parameters, dots, brackets, spaces
(leading and trailing too), quotes, format strings, unicode, emoji and numbers; then reads them
from a real CSV, infers and validates a schema (and the schema module `tabpipe init` writes),
profiles, splits, fits and predicts."""

from __future__ import annotations

import keyword
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from schemas.infer import infer_schema, load_yaml_schema, schema_yaml_source
from tasks.config import EncodingConfig, ImputeConfig
from tasks.data.profile import profile_frame
from tasks.data.read import read_table
from tasks.data.split import split_frame
from tasks.data.validate import validate_frame
from tasks.model_selection.encoding import layout_for, plan_encoding
from tasks.model_selection.pipeline import FAMILIES, build_pipeline

PARAMETER_NAMES = [
    # pandas DataFrame.assign / rename / astype / query / eval and friends
    "self",
    "columns",
    "index",
    "axis",
    "copy",
    "inplace",
    "errors",
    "level",
    "dtype",
    "data",
    "name",
    "other",
    "func",
    "args",
    "kwargs",
    "values",
    "T",
    "shape",
    "size",
    "expr",
    "mapper",
    # numpy
    "out",
    "where",
    "keepdims",
    "order",
    "casting",
    # scikit-learn fit / transform / ColumnTransformer
    "X",
    "y",
    "sample_weight",
    "n_jobs",
    "verbose",
    "random_state",
    "deep",
    "remainder",
    "transformers",
    "categorical_features",
    # pandera / pydantic
    "checks",
    "nullable",
    "coerce",
    "regex",
    "model_config",
    "Config",
    "alias",
]
ODD_NAMES = [
    "a.b",
    "x[0]",
    "f(x)",
    "a b",
    " leading",
    "trailing ",
    " both ",
    "naïve",
    "數據",
    "🔥 hot",
    "0",
    "1.5",
    "-1",
    "nan",
    "None",
    "True",
    "label__month",
    "{x}",
    "%s",
    "a=b",
    "'quoted'",
    '"dq"',
    "back\\slash",
    "col,comma",
    "__class__",
    "__init__",
    "@at",
    "$dollar",
    "#hash",
]
NAME = st.one_of(
    st.sampled_from(sorted(keyword.kwlist)),
    st.sampled_from(PARAMETER_NAMES),
    st.sampled_from(ODD_NAMES),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=12,
    ),
)
# A CSV header must differ from every other after reading (pandas keeps spaces, numbers stay text).
NAMES = st.lists(NAME, min_size=5, max_size=5, unique=True).filter(
    lambda names: all(name.strip() for name in names)
)


def hostile_frame(names: list[str], n_rows: int = 60) -> pd.DataFrame:
    """numeric, few-level category, many-level category, timestamp, and the target: the names
    are set by position, never as keyword arguments."""
    rng = np.random.default_rng(0)
    y = rng.random(n_rows) < 0.4
    columns = [
        rng.normal(size=n_rows) + y,
        rng.choice(["red", "green", "blue"], size=n_rows),
        [f"shop-{i}" for i in rng.integers(0, 35, n_rows)],
        pd.date_range("2024-01-01", periods=n_rows, freq="9h").strftime("%Y-%m-%d %H:%M"),
        np.where(y, "yes", "no"),
    ]
    frame = pd.concat([pd.Series(values) for values in columns], axis=1)
    return frame.set_axis(names, axis="columns")


def generated_schema(frame: pd.DataFrame, folder: Path) -> pa.DataFrameSchema:
    """The YAML schema `tabpipe init` would write, written and loaded as tabpipe loads it."""
    path = folder / "hostile.yaml"
    path.write_text(schema_yaml_source(infer_schema(frame, name="S"), "hostile.csv"), "utf-8")
    return load_yaml_schema(path)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    # Each example fits two pipelines: report a failing example as found, without shrinking.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
@given(names=NAMES)
# Names that broke the generated Python schema module before init wrote YAML: NFKC-folded
# letters, digits that are not identifier characters, and names the model body itself used.
@example(names=["º", "¹", "Config", "pa", "Series"])
@example(names=["validate", "to_schema", "class", "columns", " x "])
def test_any_column_names_go_through_every_plain_step(names: list[str], tmp_path: Path) -> None:
    path = tmp_path / "hostile.csv"
    hostile_frame(names).to_csv(path, index=False)
    table = read_table(path)
    assert list(table.frame.columns) == names
    frame = validate_frame(table.frame, infer_schema(table.frame), str(path))
    validate_frame(table.frame, generated_schema(table.frame, tmp_path), str(path))
    number, few, many, when, target = names
    profile = profile_frame(frame, target)
    roles = {name: role.role for name, role in profile.column_roles.items()}
    assert roles == {
        number: "numeric",
        few: "categorical",
        many: "categorical",
        when: "datetime",
    }
    split = split_frame(frame, profile, 0.25, seed=0)
    plan = plan_encoding(profile, split.X_train, EncodingConfig(), cv_folds=3)
    layout = layout_for(profile, split.X_train, plan, EncodingConfig(), seed=0)
    for family in ("logistic_regression", "hist_gradient_boosting"):
        pipeline = build_pipeline(
            FAMILIES[family],
            profile.numeric_columns,
            profile.categorical_columns,
            ImputeConfig(),
            seed=0,
            layout=layout,
        )
        pipeline.fit(split.X_train, split.y_train)
        probabilities = pipeline.predict_proba(split.X_test)
        assert probabilities.shape == (len(split.X_test), 2)
