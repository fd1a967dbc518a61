"""Streamed statistics (core.streaming) equal the in-memory recompute (core.metrics) on the whole
set, whatever the chunk boundaries, and merge by adding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import detect_labels
from lossaudit.core.metrics import read_outputs, recompute
from lossaudit.core.streaming import StreamingStats
from lossaudit.errors import BadInputError

N = 503


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _cases() -> list[tuple[str, HeadSpec, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    y10 = rng.integers(0, 10, N)
    y10[y10 == 7] = 3  # class 7 absent: its precision and recall are 0, as in sklearn's averages
    logits10 = rng.normal(size=(N, 10)) + 2.0 * np.eye(10)[y10]
    y2 = rng.integers(0, 2, N)
    logit1 = rng.normal(size=(N, 1)) + (2 * y2 - 1)[:, None]
    probs1 = 1 / (1 + np.exp(-logit1))
    return [
        ("softmax-10", HeadSpec.from_values(units=10, activation="softmax"), y10, _softmax(logits10)),
        (
            "logits-10",
            HeadSpec.from_values(
                units=10, activation="linear", loss="sparse_categorical_crossentropy", from_logits=True
            ),
            y10,
            logits10,
        ),
        ("sigmoid-1", HeadSpec.from_values(units=1, activation="sigmoid"), y2, probs1),
        (
            "logit-1",
            HeadSpec.from_values(units=1, activation="linear", loss="binary_crossentropy", from_logits=True),
            y2,
            logit1,
        ),
        (
            "relu-3 (no probabilities)",
            HeadSpec.from_values(units=3, activation="relu"),
            y10 % 3,
            logits10[:, :3] + 3,
        ),
    ]


def _boundaries(rng: np.random.Generator) -> list[int]:
    """Chunk edges: single rows, a long run, and random cuts."""
    cuts = {0, 1, 2, 3, 200, N - 1, N, *rng.integers(0, N, 6).tolist()}
    return sorted(cuts)


def _streamed(head: HeadSpec, y: np.ndarray, outputs: np.ndarray, edges: list[int]) -> StreamingStats:
    labels = detect_labels(y, head.units)
    whole = read_outputs(outputs, head, labels)
    stats = StreamingStats(2 if head.units == 1 else head.units, binary=head.units == 1)
    for start, stop in itertools.pairwise(edges):
        probs = None if whole.probabilities is None else whole.probabilities[start:stop]
        stats.update(y[start:stop], whole.raw[start:stop], probs, are_logits=whole.are_logits)
    return stats


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_streamed_statistics_equal_the_in_memory_recompute(
    case: tuple[str, HeadSpec, np.ndarray, np.ndarray],
) -> None:
    _, head, y, outputs = case
    labels = detect_labels(y, head.units)
    expected = recompute(y, labels, read_outputs(outputs, head, labels), head)
    stats = _streamed(head, y, outputs, _boundaries(np.random.default_rng(1)))
    assert stats.n_samples == N
    assert tuple(map(tuple, stats.confusion.tolist())) == expected.confusion_matrix
    assert tuple(stats.predicted_counts.tolist()) == expected.predicted_counts
    assert tuple(stats.support.tolist()) == tuple(c.support for c in expected.per_class)
    got = stats.values()
    wanted = {k: v for k, v in expected.values.items() if k != "roc_auc"}
    assert set(got) == set(wanted)
    for name, value in wanted.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_statistics_of_two_halves_merge_into_those_of_the_whole() -> None:
    _, head, y, outputs = _cases()[0]
    whole = _streamed(head, y, outputs, [0, N])
    first = _streamed(head, y[:250], outputs[:250], [0, 100, 250])
    second = _streamed(head, y[250:], outputs[250:], [0, N - 250])
    merged = first.merge(second)
    assert np.array_equal(merged.confusion, whole.confusion)
    assert merged.top_k_hits == whole.top_k_hits
    assert merged.values() == pytest.approx(whole.values(), rel=1e-12)


def test_refusals() -> None:
    stats = StreamingStats(3, binary=False)
    with pytest.raises(BadInputError, match="no samples seen"):
        stats.values()
    with pytest.raises(BadInputError, match=r"outside range\(3\)"):
        stats.update([0, 3], np.zeros((2, 3)))
    with pytest.raises(BadInputError, match="cannot merge"):
        stats.merge(StreamingStats(2, binary=True))
    with pytest.raises(BadInputError, match="at least 2 classes"):
        StreamingStats(1, binary=True)
