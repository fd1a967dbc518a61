"""The Great Expectations adapter: suites generated from the head, run for real on small data.

Each GX run costs 0.05-0.5 s (plus ~4 s for the first import), so every scenario runs once in a
module fixture and several tests read its result.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from lossaudit.core.catalogue import RULES
from lossaudit.core.findings import AuditFacts, DataCheck, run_rules
from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import LabelEncoding
from lossaudit.errors import BadInputError
from lossaudit.validation import GxValidation, validate_with_gx
from lossaudit.validation.gx import FEATURES_OK_COLUMN, expected_label_encoding

SPARSE_10 = HeadSpec.from_values(units=10, activation="softmax", loss="sparse_categorical_crossentropy")
ONE_HOT_3 = HeadSpec.from_values(units=3, activation="softmax", loss="categorical_crossentropy")
MULTI_HOT_3 = HeadSpec.from_values(units=3, activation="sigmoid", loss="binary_crossentropy")
BINARY_1 = HeadSpec.from_values(units=1, activation="sigmoid", loss="binary_crossentropy")

MULTI_HOT_LABELS = np.array([[1, 1, 0], [0, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1]])


def failed(result: GxValidation) -> dict[str, DataCheck]:
    return {c.name: c for c in result.checks if not c.success}


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return x, y


@pytest.fixture(scope="module")
def clean_index(
    digits: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> GxValidation:
    """Digits as they are: 1797 index labels in range(10), 64 finite pixel columns; Data Docs on."""
    x, y = digits
    return validate_with_gx(y, SPARSE_10, x, docs_dir=tmp_path_factory.mktemp("docs"))


@pytest.fixture(scope="module")
def broken_digits(digits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Digits with two labels out of range, one 2.5, one NaN pixel and one inf pixel."""
    x, y = digits
    x, y = x.copy(), y.astype(np.float64)
    y[[3, 40]] = [10, 12]
    y[100] = 2.5
    x[5, 3] = np.nan
    x[7, 10] = np.inf
    return x, y


@pytest.fixture(scope="module")
def broken_index(broken_digits: tuple[np.ndarray, np.ndarray]) -> GxValidation:
    x, y = broken_digits
    return validate_with_gx(y, SPARSE_10, x)


@pytest.fixture(scope="module")
def narrow_features() -> GxValidation:
    """Three named feature columns (checked one by one), one NaN, one -inf, an expected column missing."""
    x = np.array([[0.1, 1.0, 5.0], [np.nan, 2.0, 5.0], [0.3, -np.inf, 5.0], [0.4, 4.0, 5.0]])
    return validate_with_gx(
        [0, 1, 1, 0],
        BINARY_1,
        x,
        feature_columns=["age", "dose", "weight"],
        expected_columns=["age", "dose", "weight", "height"],
    )


def test_clean_index_labels_pass_with_combined_feature_check(clean_index: GxValidation) -> None:
    assert clean_index.success is True
    assert all(c.success for c in clean_index.checks)
    names = [c.name for c in clean_index.checks]
    assert "label values are class indices in range(10)" in names
    # 64 pixel columns are wider than PER_COLUMN_LIMIT: one derived row-wise check, not 128.
    assert "every feature of x_0..x_63 is non-null and finite" in names
    assert len(clean_index.checks) == 5
    assert clean_index.result_json["success"] is True
    assert clean_index.result_json["statistics"]["evaluated_expectations"] == 5
    types = [e["type"] for e in clean_index.suite_json["expectations"]]
    assert types.count("expect_column_values_to_be_in_set") == 2
    assert "expect_table_columns_to_match_set" in types


def test_out_of_range_index_labels_and_bad_pixels_fail(broken_index: GxValidation) -> None:
    assert broken_index.success is False
    bad = failed(broken_index)
    assert set(bad) == {
        "label values are class indices in range(10)",
        "every feature of x_0..x_63 is non-null and finite",
    }
    labels = bad["label values are class indices in range(10)"]
    assert labels.column == "label"
    assert labels.severity == "error"
    assert labels.detail.startswith("3 of 1797 rows unexpected (0.167%), e.g. ")
    assert "12" in labels.detail and "2.5" in labels.detail and "rows 3, 40, 100" in labels.detail
    features = bad["every feature of x_0..x_63 is non-null and finite"]
    assert features.column == FEATURES_OK_COLUMN
    assert features.detail == (
        "2 of 1797 rows unexpected (0.111%); rows 5, 7; null/NaN in x_3 (1 row); inf in x_10 (1 row)"
    )


def test_wide_array_features_reach_gx_as_one_derived_column_with_the_frames_verdict(
    broken_digits: tuple[np.ndarray, np.ndarray], broken_index: GxValidation
) -> None:
    import pandas as pd

    from lossaudit.validation.gx import _plan

    x, y = broken_digits
    # The frame GX validates holds the labels and one column for 64 pixel columns...
    plan = _plan(y, SPARSE_10, x, feature_columns=None, expected_columns=None)
    assert list(plan.frame.columns) == ["label", FEATURES_OK_COLUMN]
    # Row flags the caller already has (the audit's finiteness pass) give the same plan, x unread.
    flags = np.isfinite(x).all(axis=1)
    given = _plan(y, SPARSE_10, x, feature_columns=None, expected_columns=None, finite_rows=flags)
    assert given.expectations == plan.expectations
    assert given.frame.equals(plan.frame)
    # ...and says what a frame of every pixel column says (a DataFrame is laid out column by column).
    frame = pd.DataFrame(x, columns=[f"x_{j}" for j in range(x.shape[1])])
    via_frame = validate_with_gx(y, SPARSE_10, frame)
    assert [(c.name, c.success, c.detail) for c in broken_index.checks] == [
        (c.name, c.success, c.detail) for c in via_frame.checks
    ]


def test_per_column_feature_checks_catch_nan_inf_and_missing_column(narrow_features: GxValidation) -> None:
    bad = failed(narrow_features)
    assert set(bad) == {
        "feature age is never null or NaN",
        "feature dose is finite (no +-inf)",
        "column height exists",
        "no columns besides the expected label and feature columns",
    }
    assert bad["feature age is never null or NaN"].column == "age"
    assert bad["feature age is never null or NaN"].detail == "1 of 4 rows unexpected (25%), e.g. null; rows 1"
    assert (
        bad["feature dose is finite (no +-inf)"].detail == "1 of 4 rows unexpected (25%), e.g. -inf; rows 2"
    )
    assert bad["column height exists"].column == "height"
    assert bad["column height exists"].severity == "error"
    extra = bad["no columns besides the expected label and feature columns"]
    assert extra.severity == "warning"
    assert extra.detail == "missing columns: height"
    # The binary labels {0, 1} themselves pass.
    assert not any(c.column == "label" for c in bad.values())
    # The -inf kept in the GX result is written as a string: the artifact stays strict JSON.
    json.dumps(narrow_features.result_json, allow_nan=False)
    assert "-inf" in json.dumps(narrow_features.result_json)


def test_one_hot_rows_that_do_not_sum_to_one_fail_the_multicolumn_check() -> None:
    y = np.eye(3)[[0, 1, 2, 1, 0, 2]]
    y[1, 0] = 1  # two classes
    y[4, 0] = 0  # no class
    result = validate_with_gx(y, ONE_HOT_3)
    bad = failed(result)
    assert list(bad) == ["one-hot rows of label_0..label_2 sum to 1"]
    check = bad["one-hot rows of label_0..label_2 sum to 1"]
    assert check.detail == ("2 of 6 rows unexpected (33.3%), e.g. (label_0=1, label_1=1), (all 0); rows 1, 4")
    assert result.result_json["statistics"]["unsuccessful_expectations"] == 1


def test_multi_hot_labels_pass_the_multi_hot_suite_but_not_a_one_hot_one() -> None:
    as_multi = validate_with_gx(MULTI_HOT_LABELS, MULTI_HOT_3)
    assert as_multi.success is True
    assert sum("values are 0 or 1" in c.name for c in as_multi.checks) == 3
    assert not any("sum to 1" in c.name for c in as_multi.checks)
    as_one_hot = validate_with_gx(MULTI_HOT_LABELS, ONE_HOT_3)
    bad = failed(as_one_hot)
    assert list(bad) == ["one-hot rows of label_0..label_2 sum to 1"]
    assert bad["one-hot rows of label_0..label_2 sum to 1"].detail.startswith("3 of 5 rows unexpected (60%)")


def test_fewer_label_columns_than_units_fail_the_label_column_check() -> None:
    result = validate_with_gx(MULTI_HOT_LABELS[:, :2], MULTI_HOT_3)
    bad = failed(result)
    assert set(bad) == {
        "label columns label_0..label_2 are all present",
        "no columns besides the expected label and feature columns",
    }
    assert bad["label columns label_0..label_2 are all present"].detail == "missing columns: label_2"
    assert bad["label columns label_0..label_2 are all present"].severity == "error"


def test_binary_labels_minus_one_one_fail() -> None:
    result = validate_with_gx(np.array([-1, 1, 1, -1, 1]), BINARY_1)
    bad = failed(result)
    assert list(bad) == ["label values are 0 or 1"]
    assert bad["label values are 0 or 1"].detail == "2 of 5 rows unexpected (40%), e.g. -1, -1; rows 0, 3"


def test_data_docs_site_is_written_and_names_the_expectations(clean_index: GxValidation) -> None:
    docs = clean_index.data_docs_dir
    assert docs is not None
    index = docs / "index.html"
    assert index.is_file()
    assert "lossaudit_index_labels_k10" in index.read_text(encoding="utf-8")
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 1
    page = pages[0].read_text(encoding="utf-8")
    assert "values must belong to this set" in page
    assert FEATURES_OK_COLUMN in page


def test_failed_checks_become_la601_and_la602_findings(
    broken_index: GxValidation, narrow_features: GxValidation
) -> None:
    checks = broken_index.checks + narrow_features.checks
    findings = run_rules(RULES, AuditFacts(head=SPARSE_10, data_checks=checks))
    la601 = [f for f in findings if f.code == "LA601"]
    la602 = [f for f in findings if f.code == "LA602"]
    # Critical expectations are errors (LA601); the advisory column-set check stays a warning.
    assert len(la601) == 5 and len(la602) == 1
    assert la601[0].message.startswith(
        "expectation failed (column label): label values are class indices in range(10): 3 of 1797 rows"
    )
    assert {f.evidence["column"] for f in la601} == {"label", FEATURES_OK_COLUMN, "age", "dose", "height"}
    assert {f.evidence["severity"] for f in la601} == {"error"}
    assert (la602[0].evidence["column"], la602[0].evidence["severity"]) == (None, "warning")
    clean = run_rules(
        RULES, AuditFacts(head=SPARSE_10, data_checks=validate_with_gx([0, 9], SPARSE_10).checks)
    )
    assert not [f for f in clean if f.code in ("LA601", "LA602")]


def test_a_run_is_silent(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    validate_with_gx(MULTI_HOT_LABELS, MULTI_HOT_3, MULTI_HOT_LABELS * 0.5)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert not [r for r in caplog.records if r.name.startswith("great_expectations")]
    # Levels GX set for itself come back after the call.
    assert logging.getLogger("great_expectations.data_context.types.base").level == logging.INFO


def test_first_call_in_a_fresh_interpreter_is_silent_and_imports_gx_lazily(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import logging, sys
        import numpy as np
        logging.basicConfig(level=logging.WARNING)  # a root handler, as an application would have
        from lossaudit.core.head import HeadSpec
        from lossaudit.validation import validate_with_gx
        assert "great_expectations" not in sys.modules
        head = HeadSpec.from_values(units=3, activation="softmax", loss="categorical_crossentropy")
        result = validate_with_gx(np.eye(3)[[0, 1, 2]], head, np.ones((3, 2)), docs_dir=sys.argv[1])
        assert result.success and result.data_docs_dir is not None
        """
    )
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "docs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (done.stdout, done.stderr) == ("", "")
    assert (tmp_path / "docs" / "index.html").is_file()


@pytest.mark.parametrize(
    ("y", "x", "message"),
    [
        ([], None, "labels are empty"),
        (np.zeros((2, 2, 2)), None, "labels have rank 3"),
        ([0, 1], np.zeros((3, 2)), "features have 3 rows but labels have 2"),
        ([0, 1], {"label": [1, 2]}, "feature column(s) label clash"),
    ],
)
def test_untabular_input_is_bad_input(y: object, x: object, message: str) -> None:
    if isinstance(x, dict):
        import pandas as pd

        x = pd.DataFrame(x)
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_with_gx(y, SPARSE_10, x)


@pytest.mark.parametrize(
    ("head", "y", "expected"),
    [
        (SPARSE_10, np.zeros((4, 1)), LabelEncoding.INDEX),
        (ONE_HOT_3, np.zeros((4, 1)), LabelEncoding.INDEX),
        (BINARY_1, np.zeros((4, 1)), LabelEncoding.BINARY),
        (ONE_HOT_3, np.eye(3), LabelEncoding.ONE_HOT),
        (ONE_HOT_3, np.full((2, 3), 1 / 3), LabelEncoding.SOFT),
        (MULTI_HOT_3, np.eye(3), LabelEncoding.MULTI_HOT),
        (
            HeadSpec.from_values(units=3, activation="linear", loss="binary_crossentropy", from_logits=True),
            np.eye(3),
            LabelEncoding.MULTI_HOT,
        ),
        (
            HeadSpec.from_values(units=3, activation="softmax", loss="binary_crossentropy"),
            np.eye(3),
            LabelEncoding.ONE_HOT,
        ),
        (
            HeadSpec.from_values(units=3, activation="softmax", loss="sparse_categorical_crossentropy"),
            np.eye(3),
            LabelEncoding.INDEX,
        ),
    ],
)
def test_expected_encoding_follows_the_head(head: HeadSpec, y: np.ndarray, expected: LabelEncoding) -> None:
    assert expected_label_encoding(y, head) is expected
