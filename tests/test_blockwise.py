"""The local block-wise reduction (:mod:`lossaudit.core.blockwise`) gives what the array path gives.

Every metric but ROC-AUC equals :func:`lossaudit.core.audit.score`'s (scikit-learn on the whole
arrays): counts exactly, sums to float rounding; every definition of 'accuracy' equals
:func:`lossaudit.core.compare.accuracy_definitions`'; the exact ROC-AUC lies within the bounds the
histograms give. Over every reading the heads allow (softmax, logits, K sigmoids renormalised, raw
outputs that are or are not probabilities, one unit, multi-label), index and one-hot labels, and
any block size.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossaudit.core.audit import inspect_labels, score
from lossaudit.core.blockwise import BlockReducer, MergedOutputs
from lossaudit.core.compare import accuracy_definitions
from lossaudit.core.head import HeadSpec
from lossaudit.errors import BadInputError

N = 240


def _head(units: int, activation: str, loss: str) -> HeadSpec:
    return HeadSpec.from_values(
        units=units, activation=activation, loss=loss, from_logits=activation == "linear"
    )


def _case(name: str, rng: np.random.Generator) -> tuple[HeadSpec, np.ndarray, np.ndarray]:
    """(head, labels, raw outputs) of one reading."""
    idx = rng.integers(0, 4, N)
    z = rng.normal(size=(N, 4)) + 2.0 * np.eye(4)[idx]
    if name == "softmax-index":
        e = np.exp(z)
        return _head(4, "softmax", "sparse_categorical_crossentropy"), idx, e / e.sum(axis=1, keepdims=True)
    if name == "softmax-onehot":
        e = np.exp(z)
        return (
            _head(4, "softmax", "categorical_crossentropy"),
            np.eye(4)[idx],
            e / e.sum(axis=1, keepdims=True),
        )
    if name == "logits":
        return _head(4, "linear", "sparse_categorical_crossentropy"), idx, z
    if name == "k-sigmoids":
        return _head(4, "sigmoid", "binary_crossentropy"), np.eye(4)[idx], 1 / (1 + np.exp(-z))
    if name == "relu-scores":
        return _head(4, "relu", "categorical_crossentropy"), np.eye(4)[idx], np.maximum(z, 0)
    if name == "softmax-out-of-range":
        return _head(4, "softmax", "categorical_crossentropy"), np.eye(4)[idx], z
    y1 = (rng.random(N) < 0.4).astype(np.int64)
    s = rng.normal(size=(N, 1)) + 1.5 * y1[:, None]
    if name == "binary-sigmoid":
        return _head(1, "sigmoid", "binary_crossentropy"), y1, 1 / (1 + np.exp(-s))
    if name == "binary-logits":
        return _head(1, "linear", "binary_crossentropy"), y1, s
    if name == "binary-tanh":
        return _head(1, "tanh", "binary_crossentropy"), y1, np.tanh(s)
    multi = (rng.random((N, 5)) < 0.35).astype(np.int64)
    m = rng.normal(size=(N, 5)) + 1.5 * multi
    if name == "multilabel-sigmoid":
        return _head(5, "sigmoid", "binary_crossentropy"), multi, 1 / (1 + np.exp(-m))
    if name == "multilabel-logits":
        return _head(5, "linear", "binary_crossentropy"), multi, m
    raise AssertionError(name)


CASES = (
    "softmax-index",
    "softmax-onehot",
    "logits",
    "k-sigmoids",
    "relu-scores",
    "softmax-out-of-range",
    "binary-sigmoid",
    "binary-logits",
    "binary-tanh",
    "multilabel-sigmoid",
    "multilabel-logits",
)


def _reduce(head: HeadSpec, y: np.ndarray, raw: np.ndarray, block: int) -> MergedOutputs:
    reducer = BlockReducer(head, inspect_labels(y, head), y)
    for start in range(0, len(raw), block):
        # float32, as Keras hands the outputs over
        reducer.add(start, raw[start : start + block].astype(np.float32))
    return reducer.result()


def _assert_as_the_array_path(head: HeadSpec, y: np.ndarray, raw: np.ndarray, merged: MergedOutputs) -> None:
    raw32 = raw.astype(np.float32)
    scored = score(head, y, raw32)
    expected, got = scored.metrics, merged.metrics
    assert got is not None and merged.unscored is None
    assert got.confusion_matrix == expected.confusion_matrix
    assert got.predicted_counts == expected.predicted_counts
    exact = expected.values.get("roc_auc")
    for name, value in expected.values.items():
        if name == "roc_auc":
            continue
        assert got.values[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    if exact is None:
        assert got.values.get("roc_auc") is None and "roc_auc_lower" not in got.values
    else:
        lower = got.values.get("roc_auc_lower", got.values.get("roc_auc"))
        upper = got.values.get("roc_auc_upper", got.values.get("roc_auc"))
        assert lower is not None and upper is not None
        assert lower - 1e-12 <= exact <= upper + 1e-12
        assert upper - lower < 0.01
    for mine_class, their_class in zip(got.per_class, expected.per_class, strict=True):
        assert mine_class.to_dict() == pytest.approx(their_class.to_dict(), abs=1e-12)
    wanted = accuracy_definitions(y, scored.labels, scored.outputs, head)
    assert merged.accuracy_defs is not None
    assert [d.key for d in merged.accuracy_defs] == [d.key for d in wanted]
    for mine, theirs in zip(merged.accuracy_defs, wanted, strict=True):
        assert mine.value == pytest.approx(theirs.value, abs=1e-12), mine.key
    assert merged.reading is not None
    assert merged.reading.are_logits == scored.outputs.are_logits
    assert merged.reading.problem == scored.outputs.problem
    assert (merged.reading.probabilities is None) == (scored.outputs.probabilities is None)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("block", [7, N])
def test_blocks_add_up_to_the_array_path(case: str, block: int) -> None:
    head, y, raw = _case(case, np.random.default_rng(CASES.index(case)))
    _assert_as_the_array_path(head, y, raw, _reduce(head, y, raw, block))


@settings(max_examples=30, deadline=None)
@given(
    case=st.sampled_from(CASES),
    seed=st.integers(0, 2**16),
    sizes=st.lists(st.integers(1, 90), min_size=1, max_size=30),
)
def test_any_split_into_blocks_adds_up_to_the_same(case: str, seed: int, sizes: list[int]) -> None:
    head, y, raw = _case(case, np.random.default_rng(seed))
    reducer = BlockReducer(head, inspect_labels(y, head), y)
    start = 0
    for size in sizes:
        if start >= N:
            break
        reducer.add(start, raw[start : start + size].astype(np.float32))
        start += size
    if start < N:
        reducer.add(start, raw[start:].astype(np.float32))
    _assert_as_the_array_path(head, y, raw, reducer.result())


def test_a_row_of_nan_leaves_the_outputs_unscored_with_the_rows_counted() -> None:
    head, y, raw = _case("softmax-index", np.random.default_rng(0))
    raw = raw.copy()
    raw[[3, 100]] = np.nan
    merged = _reduce(head, y, raw, 50)
    assert merged.metrics is None and merged.accuracy_defs is None
    assert merged.unscored == f"2 of {N} prediction rows contain NaN or infinite values"
    assert merged.outputs.non_finite_rows == 2


def test_labels_out_of_range_are_unscored_not_an_error() -> None:
    head = _head(2, "softmax", "sparse_categorical_crossentropy")
    y = np.array([0, 1, 5, 1])
    merged = _reduce(head, y, np.full((4, 2), 0.5), 2)
    assert merged.metrics is None and merged.unscored is not None
    assert "labels cannot be scored" in merged.unscored


def test_a_forward_pass_that_stopped_early_is_refused() -> None:
    head, y, raw = _case("logits", np.random.default_rng(0))
    reducer = BlockReducer(head, inspect_labels(y, head), y)
    reducer.add(0, raw[:100])
    with pytest.raises(BadInputError, match=f"labels have {N} rows but predictions have 100"):
        reducer.result()
    with pytest.raises(BadInputError, match="3 column"):
        reducer.add(100, raw[100:, :3])


def test_memory_is_the_histograms_not_the_rows() -> None:
    """What the reducer holds does not grow with the rows folded."""
    head, y, raw = _case("softmax-index", np.random.default_rng(0))
    big_y = np.tile(y, 50)
    reducer = BlockReducer(head, inspect_labels(big_y, head), big_y)
    held = reducer.as_is.histograms.positives.nbytes + reducer.as_is.histograms.negatives.nbytes
    for i in range(50):
        reducer.add(i * N, raw.astype(np.float32))
    after = reducer.as_is.histograms.positives.nbytes + reducer.as_is.histograms.negatives.nbytes
    assert held == after == 2 * 4 * reducer.bins * 8
    merged = reducer.result()
    assert merged.metrics is not None and merged.metrics.n_samples == 50 * N
