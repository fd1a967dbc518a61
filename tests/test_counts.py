"""Metrics from merged counts (:mod:`lossaudit.core.counts`) equal the array path's (scikit-learn),
and label evidence from aggregates equals the detector's on the labels themselves.

The counts are built here from the arrays with numpy, as a distributed engine merges them; the
array path is :func:`lossaudit.core.audit.score` and :func:`lossaudit.core.compare.accuracy_definitions`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lossaudit.core.audit import score
from lossaudit.core.compare import accuracy_definitions
from lossaudit.core.counts import (
    AccuracyCounts,
    ProbabilitySums,
    SingleLabelCounts,
    accuracy_definitions_from_counts,
    roc_auc_of,
    single_label_metrics,
)
from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import detect_labels, evidence_from_aggregates

EPS = float(np.finfo(np.float64).eps)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _rank_hits(raw: np.ndarray, y: np.ndarray, k: int) -> int:
    """Rows whose true class ranks among the k highest (scikit-learn's tie order)."""
    true = raw[np.arange(len(y)), y][:, None]
    index = np.arange(raw.shape[1])[None, :]
    rank = ((raw > true) | ((raw == true) & (index > y[:, None]))).sum(axis=1)
    return int((rank < k).sum())


def _multiclass_counts(y: np.ndarray, raw: np.ndarray, probs: np.ndarray) -> SingleLabelCounts:
    k = raw.shape[1]
    pred = raw.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    full = np.clip(probs, 1e-15, 1.0)
    full = full / full.sum(axis=1, keepdims=True)
    onehot = np.eye(k)[y]
    log_sum = float(-np.log(np.clip(full[np.arange(len(y)), y], EPS, 1 - EPS)).sum())
    brier_sum = float(((full - onehot) ** 2).sum())
    return SingleLabelCounts(
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        binary=False,
        probabilities=ProbabilitySums(sums_to_one=True, log_loss_sum=log_sum, brier_sum=brier_sum),
        roc_auc=roc_auc_of(y, probs, k, binary=False),
        top_k_hits={kk: _rank_hits(raw, y, kk) for kk in (2, 3, 5) if kk < k},
    )


def _assert_same(ours: Any, theirs: Any) -> None:
    assert ours.confusion_matrix == theirs.confusion_matrix
    assert ours.predicted_counts == theirs.predicted_counts
    assert ours.per_class == theirs.per_class
    assert ours.notes == theirs.notes
    assert dict(ours.definitions) == dict(theirs.definitions)
    assert list(ours.values) == list(theirs.values)
    # The same sufficient statistics, summed in another order: equal to the last bits of a double.
    for name, value in theirs.values.items():
        assert ours.values[name] == pytest.approx(value, rel=1e-12), name


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_metrics_from_counts_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 8))
    n = int(rng.integers(20, 400))
    y = rng.integers(0, k - 1 if seed % 2 else k, size=n)  # odd seeds leave the last class absent
    raw = rng.normal(size=(n, k)) * 2
    if seed == 3:
        raw[:, 0] = -50.0  # class 0 never predicted
    probs = _softmax(raw)
    head = HeadSpec.from_values(units=k, activation="softmax", loss="sparse_categorical_crossentropy")
    scored = score(head, y, probs)
    counts = _multiclass_counts(y, probs, probs)
    _assert_same(single_label_metrics(counts, task="multiclass"), scored.metrics)


@pytest.mark.parametrize("seed", range(4))
def test_binary_metrics_from_counts_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = rng.integers(0, 2, size=n)
    p1 = 1 / (1 + np.exp(-rng.normal(size=n) * 3))
    head = HeadSpec.from_values(units=1, activation="sigmoid", loss="binary_crossentropy")
    scored = score(head, y, p1.reshape(-1, 1))
    pred = (p1 > 0.5).astype(int)
    confusion = np.zeros((2, 2), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    full = np.clip(np.column_stack([1 - p1, p1]), 1e-15, 1.0)
    full = full / full.sum(axis=1, keepdims=True)
    counts = SingleLabelCounts(
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        binary=True,
        probabilities=ProbabilitySums(
            sums_to_one=True,
            log_loss_sum=float(-np.log(np.clip(full[np.arange(n), y], EPS, 1 - EPS)).sum()),
            brier_sum=float(((p1 - y) ** 2).sum()),
        ),
        roc_auc=roc_auc_of(y, p1, 2, binary=True),
    )
    _assert_same(single_label_metrics(counts, task="binary"), scored.metrics)


@pytest.mark.parametrize(
    ("activation", "units"), [("softmax", 6), ("linear", 6), ("sigmoid", 1), ("linear", 1)]
)
def test_accuracy_definitions_from_counts_equal_the_array_path(activation: str, units: int) -> None:
    rng = np.random.default_rng(units)
    n = 300
    raw = rng.normal(size=(n, units))
    if activation == "softmax":
        raw = _softmax(raw)
    elif activation == "sigmoid":
        raw = 1 / (1 + np.exp(-raw))
    loss = "binary_crossentropy" if units == 1 else "sparse_categorical_crossentropy"
    head = HeadSpec.from_values(units=units, activation=activation, loss=loss)
    y = rng.integers(0, max(units, 2), size=n)
    scored = score(head, y, raw)
    expected = accuracy_definitions(y, scored.labels, scored.outputs, head)
    logits = scored.outputs.are_logits
    if units == 1:
        threshold = 0.0 if logits else 0.5
        pred = (raw[:, 0] > threshold).astype(int)
        hits = AccuracyCounts(
            n=n,
            correct=int((pred == y).sum()),
            class_rows=(int((y == 0).sum()), int((y == 1).sum())),
            recall_hits=(int(((pred == 0) & (y == 0)).sum()), int(((pred == 1) & (y == 1)).sum())),
            elementwise_05=int(((raw[:, 0] > 0.5) == y).sum()),
            label_zero=int((y == 0).sum()),
        )
        task = "binary"
    else:
        onehot = np.eye(units)[y]
        pred = raw.argmax(axis=1)
        hits = AccuracyCounts(
            n=n,
            correct=int((pred == y).sum()),
            class_rows=tuple(int((y == c).sum()) for c in range(units)),
            recall_hits=tuple(int(((pred == c) & (y == c)).sum()) for c in range(units)),
            elementwise_05=int(((raw > 0.5).astype(float) == onehot).sum()),
            elementwise_0=int(((raw > 0.0).astype(float) == onehot).sum()),
            top_k={kk: _rank_hits(raw, y, kk) for kk in (2, 3, 5) if kk < units},
        )
        task = "multiclass"
    found = accuracy_definitions_from_counts(
        hits, task=task, units=units, are_logits=logits, dense_labels=False
    )
    assert found == expected


@pytest.mark.parametrize(
    ("labels", "units"),
    [
        (np.array([0, 3, 3, 7, 1]), 10),
        (np.array([0, 3, 3, 12, 1]), 10),
        (np.array([0, 3, 3, 12, 1]), None),
        (np.array([-1, 1, 1, -1]), 1),
        (np.array([-2, 0, 5]), None),
        (np.array([0.5, 1.0, 2.0]), 3),
        (np.array([0, 1, 1, 0, 2]), 1),
        (np.array([0, 1, 1, 0]), 1),
        (np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]]), 3),
        (np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]]), 3),
        (np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]]), 3),
        (np.array([[0.2, 0.9, 0.0], [0.5, 0.25, 0.25]]), 3),
        (np.array([[0.2, -0.1, 0.9], [0.5, 0.25, 0.25]]), 3),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), 2),
    ],
)
def test_evidence_from_aggregates_equals_the_detector(labels: np.ndarray, units: int | None) -> None:
    expected = detect_labels(labels, units=units)
    finite = labels[np.isfinite(labels).all(axis=-1)] if labels.ndim == 2 else labels
    uniq = np.unique(finite)
    extra: dict[str, Any] = {}
    if labels.ndim == 2:
        sums = finite.sum(axis=1)
        extra = {
            "class_counts": tuple(int(v) for v in finite.astype(np.int64).sum(axis=0)),
            "soft_counts": tuple(
                int(v) for v in np.bincount(finite.argmax(axis=1), minlength=labels.shape[1])
            ),
            "rows_not_one": int((~np.isclose(sums, 1.0)).sum()),
            "worst_row_offset": float(np.abs(sums - 1.0).max()),
            "multi_hot": {
                "rows_with_no_label": int((sums == 0).sum()),
                "rows_with_several_labels": int((sums > 1).sum()),
                "max_labels_per_row": int(sums.max()),
            },
        }
    elif uniq.min() >= 0 and np.all(uniq % 1 == 0):
        extra = {"class_counts": tuple(int(v) for v in np.bincount(labels.astype(np.int64)))}
    found = evidence_from_aggregates(
        shape=labels.shape,
        dtype=str(labels.dtype),
        units=units,
        smallest=tuple(float(v) for v in uniq[:12]),
        n_distinct=int(uniq.size),
        maximum=float(uniq.max()),
        all_integers=bool(np.all(uniq % 1 == 0)),
        nan_rows=int((~np.isfinite(labels)).any(axis=-1).sum()) if labels.ndim == 2 else 0,
        **extra,
    )
    assert found == expected
    assert found.details == expected.details


@pytest.mark.parametrize(("seed", "activation"), [(0, "sigmoid"), (1, "sigmoid"), (2, "linear")])
def test_multilabel_metrics_and_definitions_from_counts_equal_the_array_path(
    seed: int, activation: str
) -> None:
    from lossaudit.core.counts import (
        MultiLabelCounts,
        MultiLabelHits,
        multilabel_definitions,
        multilabel_metrics,
        multilabel_roc_auc,
    )

    rng = np.random.default_rng(seed)
    n, k = 200, 5
    y = (rng.random((n, k)) < 0.3).astype(np.int64)
    y[:3] = 0  # rows with no label
    y[:, 4] = 0 if seed == 1 else y[:, 4]  # a label never present: ROC-AUC over fewer labels
    raw = rng.normal(size=(n, k))
    outputs = raw if activation == "linear" else 1 / (1 + np.exp(-raw))
    head = HeadSpec.from_values(
        units=k, activation=activation, loss="binary_crossentropy", from_logits=activation == "linear"
    )
    scored = score(head, y, outputs)
    probs = scored.outputs.probabilities
    assert probs is not None and scored.metrics.task == "multilabel"
    pred = (probs > 0.5).astype(np.int64)
    tp = ((pred == 1) & (y == 1)).sum(axis=0)
    fp = ((pred == 1) & (y == 0)).sum(axis=0)
    fn = ((pred == 0) & (y == 1)).sum(axis=0)
    hit, n_pred, n_true = (pred & y).sum(axis=1), pred.sum(axis=1), y.sum(axis=1)
    with np.errstate(all="ignore"):
        precision = np.where(n_pred > 0, hit / n_pred, 0.0)
        recall = np.where(n_true > 0, hit / n_true, 0.0)
        f1 = np.where(n_pred + n_true > 0, 2 * hit / (n_pred + n_true), 0.0)
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    counts = MultiLabelCounts(
        n=n,
        tp=tuple(int(v) for v in tp),
        fp=tuple(int(v) for v in fp),
        fn=tuple(int(v) for v in fn),
        exact_rows=int((pred == y).all(axis=1).sum()),
        sample_precision_sum=float(precision.sum()),
        sample_recall_sum=float(recall.sum()),
        sample_f1_sum=float(f1.sum()),
        log_loss_sum=float(-(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)).sum()),
        brier_sum=float(((probs - y) ** 2).sum()),
        roc_auc=multilabel_roc_auc(y, probs),
    )
    ours = multilabel_metrics(counts)
    theirs = scored.metrics
    assert ours.confusion_matrix == theirs.confusion_matrix
    assert ours.per_class == theirs.per_class
    assert (ours.notes, dict(ours.definitions)) == (theirs.notes, dict(theirs.definitions))
    assert list(ours.values) == list(theirs.values)
    for name, value in theirs.values.items():
        assert ours.values[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    threshold = 0.0 if activation == "linear" else 0.5
    above = (outputs > threshold).astype(np.int64)
    top = outputs.argmax(axis=1)
    hits = MultiLabelHits(
        n=n,
        k=k,
        entries=int((above == y).sum()),
        rows_all=int((above == y).all(axis=1).sum()),
        argmax=int((top == y.argmax(axis=1)).sum()),
        top1=int((y[np.arange(n), top] == 1).sum()),
        entries_05=int(((outputs > 0.5).astype(np.int64) == y).sum()),
    )
    expected = accuracy_definitions(y, scored.labels, scored.outputs, head)
    assert multilabel_definitions(hits, are_logits=activation == "linear") == expected
