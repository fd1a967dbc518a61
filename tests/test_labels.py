"""Label-encoding detection: every encoding, every invalid reason, agreement with sklearn, properties."""

from __future__ import annotations

import json
import time
import tracemalloc
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.utils.multiclass import type_of_target

from lossaudit.core.head import MAX_UNITS, HeadSpec
from lossaudit.core.labels import (
    MAX_INFERRED_CLASSES,
    MAX_ONE_HOT_CELLS,
    LabelEncoding,
    LabelEvidence,
    LabelProblem,
    detect_labels,
    to_class_indices,
    to_one_hot,
)
from lossaudit.errors import BadInputError

ONE_HOT_4 = np.eye(4)[[0, 1, 3, 3, 1]]


@pytest.mark.parametrize(
    ("labels", "units", "encoding", "n", "k", "counts", "absent"),
    [
        pytest.param([0, 2, 1, 2, 2], None, "index", 5, 3, (1, 1, 3), (), id="index-n"),
        pytest.param([[0], [2], [1], [2]], None, "index", 4, 3, (1, 1, 2), (), id="index-n1"),
        pytest.param([0, 2, 2], 5, "index", 3, 5, (1, 0, 2, 0, 0), (1, 3, 4), id="index-units-absent"),
        pytest.param(np.array([0.0, 3.0, 1.0]), 4, "index", 3, 4, (1, 1, 0, 1), (2,), id="index-float-whole"),
        pytest.param([0, 1, 1, 1], None, "binary", 4, 2, (1, 3), (), id="binary-n"),
        pytest.param([[1], [0], [1]], 1, "binary", 3, 2, (1, 2), (), id="binary-n1-one-unit"),
        pytest.param([True, False, True], None, "binary", 3, 2, (1, 2), (), id="binary-bool"),
        pytest.param([1, 1, 1], 1, "binary", 3, 2, (0, 3), (0,), id="binary-one-class-seen"),
        pytest.param([0, 1, 0], 2, "binary", 3, 2, (2, 1), (), id="binary-two-units"),
        pytest.param(
            [0, 1, 0], 10, "index", 3, 10, (2, 1) + (0,) * 8, tuple(range(2, 10)), id="index-0-1-of-10"
        ),
        pytest.param(ONE_HOT_4, None, "one_hot", 5, 4, (1, 2, 0, 2), (2,), id="one-hot"),
        pytest.param(ONE_HOT_4.astype(np.int8), 4, "one_hot", 5, 4, (1, 2, 0, 2), (2,), id="one-hot-int8"),
        pytest.param(
            [[1, 0, 1], [0, 1, 0], [0, 0, 0]], None, "multi_hot", 3, 3, (1, 1, 1), (), id="multi-hot"
        ),
        pytest.param(
            [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]],
            None,
            "soft",
            3,
            3,
            (1, 1, 1),
            (),
            id="soft-smoothed",
        ),
        pytest.param([[0.5, 0.5], [0.2, 0.8]], 2, "soft", 2, 2, (1, 1), (), id="soft-distillation"),
    ],
)
def test_valid_encodings_and_evidence(
    labels: Any,
    units: int | None,
    encoding: str,
    n: int,
    k: int,
    counts: tuple[int, ...],
    absent: tuple[int, ...],
) -> None:
    ev = detect_labels(labels, units=units)
    assert ev.encoding == LabelEncoding(encoding)
    assert ev.is_valid and ev.problem is None and ev.reason is None
    assert ev.n_samples == n
    assert ev.n_classes == k
    assert ev.class_counts == counts
    assert ev.classes_absent == absent


@pytest.mark.parametrize(
    ("labels", "units", "problem", "reason_part"),
    [
        pytest.param([0.0, np.nan, 1.0], None, "nan", "NaN in 1 row", id="nan"),
        pytest.param([[1.0, 0.0], [np.nan, np.nan]], None, "nan", "NaN in 1 row", id="nan-matrix"),
        pytest.param([0.0, np.inf], None, "inf", "infinite", id="inf"),
        pytest.param([0, -1, 2], None, "negative", "negative values ({-1, 0, 2})", id="negative"),
        pytest.param([0.0, 0.5, 2.0], None, "non_integer", "not integers", id="non-integer"),
        pytest.param(np.array(["cat", "dog"]), None, "non_numeric", "strings", id="strings-unicode"),
        pytest.param(["cat", 1], None, "non_numeric", "strings", id="strings-mixed-list"),
        pytest.param(
            pd.Series(["a", "b"], dtype=object), None, "non_numeric", "strings", id="strings-series"
        ),
        pytest.param(np.array([1 + 2j]), None, "non_numeric", "complex", id="complex"),
        pytest.param([0, 3, 1], 3, "out_of_range", "largest label index is 3 but the head has 3", id="range"),
        pytest.param([0, 1, 2], 1, "out_of_range", "head has 1 unit", id="range-one-unit"),
        pytest.param([[0, 2], [1, 0]], None, "out_of_range", "must lie in [0, 1]", id="range-matrix"),
        pytest.param([0, MAX_INFERRED_CLASSES], None, "out_of_range", "look like ids", id="ids"),
        pytest.param([], None, "empty", "empty", id="empty-list"),
        pytest.param(np.zeros((0, 3)), None, "empty", "empty (shape (0, 3))", id="empty-matrix"),
        pytest.param([[0, 1], [1]], None, "ragged", "ragged", id="ragged"),
        pytest.param(np.zeros((2, 2, 2)), None, "rank", "rank 3", id="rank-3"),
        pytest.param(3, None, "rank", "single scalar", id="scalar"),
        pytest.param([-1, 1, 1], None, "not_binary", "two values {-1, 1}", id="minus-one-plus-one"),
        pytest.param([1, 2, 2], 1, "not_binary", "1-unit head needs 0 and 1", id="one-two-on-one-unit"),
        pytest.param([[0.5, 0.2], [0.1, 0.1]], None, "rows_not_normalised", "do not sum to 1", id="rows"),
    ],
)
def test_invalid_labels_name_the_reason(
    labels: Any, units: int | None, problem: str, reason_part: str
) -> None:
    ev = detect_labels(labels, units=units)
    assert ev.encoding is LabelEncoding.INVALID
    assert not ev.is_valid
    assert ev.problem is LabelProblem(problem)
    assert ev.reason is not None and reason_part in ev.reason
    assert "\n" not in ev.reason


def test_unreadable_problems_are_the_ones_no_rule_can_judge() -> None:
    unreadable = {p for p in LabelProblem if p.unreadable}
    assert unreadable == {
        LabelProblem.EMPTY,
        LabelProblem.RAGGED,
        LabelProblem.NON_NUMERIC,
        LabelProblem.NAN,
        LabelProblem.INF,
        LabelProblem.RANK,
    }


def test_object_array_with_none_is_nan() -> None:
    ev = detect_labels(np.array([1, None, 0], dtype=object))
    assert ev.problem is LabelProblem.NAN


def test_pandas_inputs() -> None:
    assert detect_labels(pd.Series([0, 1, 2, 1])).encoding is LabelEncoding.INDEX
    frame = pd.DataFrame(np.eye(3)[[0, 2, 1]], columns=["a", "b", "c"])
    ev = detect_labels(frame)
    assert ev.encoding is LabelEncoding.ONE_HOT
    assert ev.shape == (3, 3)


def test_multi_hot_details() -> None:
    ev = detect_labels([[1, 1, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0]])
    assert ev.encoding is LabelEncoding.MULTI_HOT
    assert ev.details == {"rows_with_no_label": 1, "rows_with_several_labels": 2, "max_labels_per_row": 3}
    assert ev.class_counts == (2, 3, 1)
    assert ev.majority_fraction is None


def test_evidence_properties_and_json() -> None:
    ev = detect_labels([0, 0, 0, 1, 2], units=4)
    assert ev.is_sparse and not ev.is_dense
    assert ev.width == 1
    assert ev.majority_fraction == pytest.approx(0.6)
    doc = json.loads(json.dumps(ev.to_dict()))
    assert doc["encoding"] == "index"
    assert doc["class_counts"] == [3, 1, 1, 0]
    assert doc["classes_absent"] == [3]
    assert doc["distinct_values"] == [0, 1, 2]
    one_hot = detect_labels(ONE_HOT_4)
    assert one_hot.is_dense and one_hot.width == 4


# Where the two vocabularies overlap, detect_labels and type_of_target agree (see the labels module
# docstring). sklearn infers the class count from the values, so only the family name is compared.
AGREEMENT = [
    ("binary", [0, 1, 1, 0], None),
    ("binary", [[1], [0]], None),
    ("binary", np.array([0.0, 1.0, 1.0]), None),
    ("binary", [1, 1, 1], 1),
    ("index", [0, 1, 2, 1], None),
    ("index", [[0], [4], [2]], None),
    ("index", [0, 1, 1], 10),
    ("one_hot", ONE_HOT_4, None),
    ("one_hot", np.eye(2)[[0, 1, 1]], None),
    ("multi_hot", [[1, 0, 1], [0, 1, 0]], None),
    ("soft", [[0.9, 0.1], [0.3, 0.7]], None),
]


def _sklearn_family(labels: Any) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(type_of_target(np.asarray(labels)))


def _expected_sklearn(ev: LabelEvidence) -> str:
    if ev.encoding in (LabelEncoding.ONE_HOT, LabelEncoding.MULTI_HOT):
        return "multilabel-indicator"
    if ev.encoding is LabelEncoding.SOFT:
        return "continuous-multioutput"
    # index and binary: sklearn looks at the values seen only.
    return "multiclass" if ev.n_distinct_values > 2 else "binary"


@pytest.mark.parametrize(("encoding", "labels", "units"), AGREEMENT)
def test_agrees_with_sklearn_type_of_target(encoding: str, labels: Any, units: int | None) -> None:
    ev = detect_labels(labels, units=units)
    assert ev.encoding == LabelEncoding(encoding)
    assert _sklearn_family(labels) == _expected_sklearn(ev)


def test_finer_than_sklearn_where_keras_needs_it() -> None:
    one_hot = np.eye(3)[[0, 1, 2]]
    multi_hot = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    # sklearn says multilabel-indicator for both; the loss a Keras head needs differs.
    assert _sklearn_family(one_hot) == _sklearn_family(multi_hot) == "multilabel-indicator"
    assert detect_labels(one_hot).encoding is LabelEncoding.ONE_HOT
    assert detect_labels(multi_hot).encoding is LabelEncoding.MULTI_HOT
    # A 10-class evaluation sample that only shows classes 0 and 1: sklearn says binary; the head
    # says 10 classes.
    sample = [0, 1, 1, 0]
    assert _sklearn_family(sample) == "binary"
    ev = detect_labels(sample, units=10)
    assert ev.encoding is LabelEncoding.INDEX and ev.n_classes == 10


def test_to_class_indices_and_one_hot() -> None:
    idx = np.array([2, 0, 1, 2])
    hot = to_one_hot(idx, 3)
    assert hot.dtype == np.float32 and hot.shape == (4, 3)
    assert np.array_equal(to_class_indices(hot, detect_labels(hot)), idx)
    assert np.array_equal(to_class_indices(idx.reshape(-1, 1), detect_labels(idx.reshape(-1, 1))), idx)


_NUMERIC_DTYPES = st.sampled_from(
    [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float16, np.float32, np.float64, np.bool_]
)


@settings(max_examples=150, deadline=None)
@given(
    arr=hnp.arrays(
        dtype=_NUMERIC_DTYPES,
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    ),
    units=st.none() | st.integers(min_value=1, max_value=12),
)
def test_never_crashes_on_numeric_arrays(arr: np.ndarray, units: int | None) -> None:
    ev = detect_labels(arr, units=units)
    assert isinstance(ev, LabelEvidence)
    json.dumps(ev.to_dict())  # always serialisable
    if ev.is_valid:
        assert ev.n_samples == arr.shape[0] > 0
        assert len(ev.class_counts) == ev.n_classes
        if ev.is_sparse:
            assert sum(ev.class_counts) == ev.n_samples
        if units is not None and ev.is_sparse:
            assert ev.n_classes == max(units, 2)
    else:
        assert ev.problem is not None and ev.reason


@settings(max_examples=80, deadline=None)
@given(
    k=st.integers(min_value=2, max_value=12),
    data=st.data(),
)
def test_one_hot_round_trip(k: int, data: st.DataObject) -> None:
    idx = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=40)))
    hot = to_one_hot(idx, k)
    ev = detect_labels(hot, units=k)
    assert ev.encoding is LabelEncoding.ONE_HOT
    assert ev.n_classes == k
    assert ev.class_counts == tuple(np.bincount(idx, minlength=k))
    assert np.array_equal(to_class_indices(hot, ev), idx)
    sparse = detect_labels(idx, units=k)
    assert sparse.class_counts == ev.class_counts
    assert sparse.classes_absent == ev.classes_absent


# --- any input: evidence or BadInputError, never anything else ------------------------------------
#
# These tests leave max_examples to the Hypothesis profile (tests/conftest.py): 200 by default,
# 10,000 with HYPOTHESIS_PROFILE=deep.

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**308, 10**309])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=4)
    | st.binary(max_size=4)
    | st.complex_numbers(allow_nan=True)
)
ANY_NESTED = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=5) | st.tuples(children, children),
    max_leaves=24,
)
_DTYPES = (
    hnp.scalar_dtypes()  # bool, ints, uints, floats, complex, datetime64, timedelta64
    | hnp.byte_string_dtypes(max_len=4)
    | hnp.unicode_string_dtypes(max_len=4)
    | hnp.nested_dtypes(max_itemsize=32)
    | st.sampled_from([np.dtype(np.longdouble), np.dtype(np.float16)])
)
_SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
ANY_ARRAY = hnp.arrays(dtype=_DTYPES, shape=_SHAPES) | hnp.arrays(
    dtype=np.dtype(object), shape=_SHAPES, elements=_SCALARS
)
ANY_UNITS = (
    st.none()
    | st.integers(min_value=1, max_value=12)
    | st.integers(min_value=-3, max_value=10**20)
    | st.sampled_from([MAX_UNITS, MAX_UNITS + 1, 10**12, True, 2.0, "3", np.int64(4)])
)


def _units_ok(units: Any) -> bool:
    return units is None or (
        isinstance(units, int | np.integer) and not isinstance(units, bool) and 1 <= units <= MAX_UNITS
    )


def _check_any(labels: Any, units: Any) -> LabelEvidence | None:
    try:
        ev = detect_labels(labels, units=units)
    except BadInputError as exc:
        # Only a bad head size is raised; what is wrong with the labels is evidence.
        assert not _units_ok(units), exc
        assert "\n" not in str(exc)
        return None
    assert _units_ok(units)
    assert isinstance(ev, LabelEvidence)
    json.dumps(ev.to_dict())
    line = ev.describe()
    assert "\n" not in line
    if ev.is_valid:
        assert ev.problem is None and ev.reason is None
        assert ev.n_samples > 0 and len(ev.class_counts) == ev.n_classes
        assert ev.n_classes <= max(MAX_UNITS, ev.width)
    else:
        assert ev.problem is not None and ev.reason and "\n" not in ev.reason
    return ev


@given(labels=ANY_NESTED, units=ANY_UNITS)
def test_any_nested_input_gives_evidence_or_bad_input(labels: Any, units: Any) -> None:
    _check_any(labels, units)


@given(arr=ANY_ARRAY, units=ANY_UNITS)
def test_any_array_gives_evidence_or_bad_input(arr: np.ndarray, units: Any) -> None:
    ev = _check_any(arr, units)
    if ev is not None and ev.is_valid and arr.dtype.kind in "biuf":
        # Where the two vocabularies overlap (numeric arrays; sklearn calls object arrays
        # 'unknown'), sklearn names the same family.
        assert _sklearn_family(arr) == _expected_sklearn(ev)


@st.composite
def valid_labels(draw: st.DrawFn) -> np.ndarray:
    """Index, one-hot, multi-hot and soft labels of several dtypes and shapes."""
    n = draw(st.integers(min_value=1, max_value=30))
    k = draw(st.integers(min_value=2, max_value=8))
    form = draw(st.sampled_from(["index", "index_column", "one_hot", "multi_hot", "soft"]))
    if form in ("index", "index_column"):
        idx = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
        dtype = draw(st.sampled_from([np.int64, np.int8, np.uint8, np.float32, np.float64]))
        arr = idx.astype(dtype)
        return arr.reshape(-1, 1) if form == "index_column" else arr
    if form == "one_hot":
        idx = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
        return np.eye(k, dtype=draw(st.sampled_from([np.float32, np.int64, np.uint8])))[idx]
    if form == "multi_hot":
        return np.array(draw(hnp.arrays(np.int64, (n, k), elements=st.integers(0, 1))))
    weights = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(0.01, 1.0)))
    return np.asarray(weights / weights.sum(axis=1, keepdims=True))


@given(labels=valid_labels())
def test_valid_labels_agree_with_sklearn(labels: np.ndarray) -> None:
    ev = detect_labels(labels)
    assert ev.is_valid, ev.reason
    assert _sklearn_family(labels) == _expected_sklearn(ev)
    if ev.is_sparse:
        assert sum(ev.class_counts) == ev.n_samples


# --- huge values and class counts: no allocation grows with a label's value ------------------------


def _peak_bytes(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("labels", "problem", "reason_part"),
    [
        pytest.param([0, 10**12], "out_of_range", "more than 100000 classes", id="id-like-1e12"),
        pytest.param(np.array([0, 2**63 - 1]), "out_of_range", "is 9.22e+18", id="int64-max"),
        pytest.param(np.array([0, 2**64 - 1], dtype=np.uint64), "out_of_range", "more than", id="uint64-max"),
        pytest.param([0.0, 1e308], "out_of_range", "is 1e+308", id="float-1e308"),
        pytest.param(np.array([0, np.longdouble("1e4000")]), "out_of_range", "about 10^", id="longdouble"),
        pytest.param([0, 10**400], "inf", "too large for a 64-bit float (about 10^400)", id="400-digits"),
        pytest.param([[0, 10**5000]], "inf", "about 10^5000", id="5000-digits"),
        pytest.param(np.array([1, "2"], dtype=object), "non_numeric", "strings", id="numeric-text"),
        pytest.param([b"1", b"0"], "non_numeric", "byte strings", id="bytes"),
        pytest.param(np.array([1, 2j], dtype=object), "non_numeric", "complex", id="complex-object"),
        pytest.param(iter([1, 2]), "ragged", "mixed objects", id="iterator"),
        pytest.param({"a": 1}, "ragged", "mixed objects", id="dict"),
        pytest.param(np.zeros((2, 2, 2, 2)), "rank", "rank 4", id="rank-4"),
        pytest.param(
            np.array(["2024-01-01"], dtype="datetime64[D]"), "non_numeric", "not a number", id="date"
        ),
    ],
)
def test_huge_and_odd_labels_are_evidence(labels: Any, problem: str, reason_part: str) -> None:
    ev = detect_labels(labels)
    assert ev.problem is LabelProblem(problem), ev.reason
    assert ev.reason is not None and reason_part in ev.reason


def test_huge_units_are_refused_before_any_allocation() -> None:
    for units in (MAX_UNITS + 1, 10**12, 10**20, 99999999999999999999, 0, -1, True, 2.5, "3"):
        with pytest.raises(BadInputError, match="units must be"):
            detect_labels([0, 1], units=units)  # type: ignore[arg-type]
        if isinstance(units, int) and not isinstance(units, bool) and units > 0:
            with pytest.raises(BadInputError, match=f"at most {MAX_UNITS}"):
                HeadSpec.from_values(units=units, activation="softmax")
    with pytest.raises(BadInputError, match="about 10\\^5000"):
        HeadSpec.from_values(units=10**5000)


def test_labels_up_to_the_cap_cost_little() -> None:
    """An index label of 10**12 with a head of MAX_UNITS units: K = MAX_UNITS counts, no more."""
    start = time.perf_counter()
    peak = _peak_bytes(lambda: detect_labels([0, 10**12, 3], units=MAX_UNITS))
    ev = detect_labels([0, 5, 3], units=MAX_UNITS)
    assert ev.n_classes == MAX_UNITS and sum(ev.class_counts) == 3
    # The report line stays a line: 20 classes listed, the rest counted.
    line = ev.describe()
    assert f"... {MAX_UNITS - 20} more]" in line and f"... {MAX_UNITS - 3 - 20} more]" in line
    assert len(line) < 400
    assert peak < 64 * 2**20
    assert _peak_bytes(lambda: detect_labels(np.array([0.0, 1e300]))) < 2**20
    assert time.perf_counter() - start < 5
    out_of_range = detect_labels([0, 10**12], units=3)
    assert out_of_range.problem is LabelProblem.OUT_OF_RANGE and out_of_range.n_classes == 10**12 + 1


def test_one_hot_refuses_what_it_cannot_build() -> None:
    with pytest.raises(BadInputError, match="1 to 100000 classes"):
        to_one_hot([0, 1], 10**12)
    with pytest.raises(BadInputError, match="cells"):
        to_one_hot(np.zeros(MAX_ONE_HOT_CELLS // MAX_UNITS + 1, dtype=np.int64), MAX_UNITS)
    with pytest.raises(BadInputError, match=r"must lie in 0\.\.2"):
        to_one_hot([0, 3], 3)
    with pytest.raises(BadInputError, match=r"must lie in 0\.\.2"):
        to_one_hot([0, -1], 3)
