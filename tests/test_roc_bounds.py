"""ROC-AUC bounds from score histograms: the exact value (scikit-learn's) never leaves them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from lossaudit.core.counts import ROC_BINS, RocAuc, logit_bins, roc_auc_bounds


def histograms(y: np.ndarray, scores: np.ndarray, bins: int = ROC_BINS) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest histograms of single-label class indices ``y`` and (n, K) scores."""
    k = scores.shape[1]
    positives = np.zeros((k, bins), dtype=np.int64)
    negatives = np.zeros((k, bins), dtype=np.int64)
    for c in range(k):
        b = logit_bins(scores[:, c], bins)
        np.add.at(positives[c], b[y == c], 1)
        np.add.at(negatives[c], b[y != c], 1)
    return positives, negatives


def bounds_of(y: np.ndarray, scores: np.ndarray, bins: int = ROC_BINS) -> RocAuc:
    positives, negatives = histograms(y, scores, bins)
    return roc_auc_bounds(zip(positives, negatives, strict=True), n_classes=scores.shape[1], what="classes")


def exact_ovr(y: np.ndarray, scores: np.ndarray) -> float:
    present = [c for c in range(scores.shape[1]) if 0 < (y == c).sum() < len(y)]
    return float(np.mean([roc_auc_score(y == c, scores[:, c]) for c in present]))


def test_bins_are_monotone_and_cover_zero_one_and_beyond() -> None:
    p = np.array([-1.0, 0.0, 1e-300, 1e-20, 1e-6, 0.25, 0.5, 0.75, 1 - 1e-7, 1.0, 2.0])
    b = logit_bins(p)
    assert b[0] == b[1] == 0 and b[-1] == b[-2] == ROC_BINS - 1
    assert np.all(np.diff(b) >= 0)
    assert b[5] < b[6] < b[7]  # 0.001 logit wide: a quarter apart is far apart


def test_softmax_scores_of_a_real_classifier_are_bounded_tightly() -> None:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    scores = LogisticRegression(max_iter=200).fit(x[:900], y[:900]).predict_proba(x[900:])
    truth = y[900:]
    roc = bounds_of(truth, scores)
    assert roc.bounds is not None
    lower, upper = roc.bounds
    exact = exact_ovr(truth, scores)
    assert lower <= exact <= upper
    assert upper - lower < 1e-3
    assert roc.notes == ()


def test_bounds_meet_when_no_bin_holds_both_and_then_the_value_is_exact() -> None:
    y = np.array([0, 0, 1, 1])
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    roc = bounds_of(y, scores)
    assert roc.bounds == (1.0, 1.0) and roc.value == 1.0


def test_ties_count_half_in_the_exact_value_and_widen_the_bounds() -> None:
    y = np.array([0, 1, 0, 1])
    scores = np.array([[0.5, 0.5]] * 4)
    roc = bounds_of(y, scores)
    assert roc.bounds == (0.0, 1.0) and roc.value is None
    assert exact_ovr(y, scores) == 0.5


def test_a_class_missing_from_the_labels_is_left_out_with_a_note() -> None:
    y = np.array([0, 1, 0, 1])
    scores = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    roc = bounds_of(y, scores)
    assert roc.notes == ("ROC-AUC averaged over the 2 classes present, not all 3",)
    assert roc.value == pytest.approx(exact_ovr(y, scores))


def test_no_class_with_both_sides_is_undefined() -> None:
    roc = bounds_of(np.zeros(3, dtype=int), np.full((3, 1), 0.4))
    assert roc.value is None and roc.bounds is None
    assert roc.notes == ("ROC-AUC undefined: no classes with both positives and negatives",)


@given(
    st.integers(2, 4).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(st.integers(0, k - 1), min_size=2, max_size=60),
            st.integers(0, 2**32 - 1),
            st.sampled_from([4, 64, ROC_BINS]),
        )
    )
)
def test_the_exact_value_is_always_within_the_bounds(case: tuple[int, list[int], int, int]) -> None:
    k, labels, seed, bins = case
    y = np.array(labels)
    rng = np.random.default_rng(seed)
    # Coarse scores (a few distinct values) make ties across classes, the hard case.
    scores = rng.integers(0, 5, size=(len(y), k)) / 4.0
    present = [c for c in range(k) if 0 < (y == c).sum() < len(y)]
    roc = bounds_of(y, scores, bins)
    if not present:
        assert roc.bounds is None
        return
    assert roc.bounds is not None
    lower, upper = roc.bounds
    exact = exact_ovr(y, scores)
    assert lower - 1e-12 <= exact <= upper + 1e-12


def test_wide_heads_get_fewer_bins_so_the_driver_gets_a_bounded_number_of_counts() -> None:
    from lossaudit.core.counts import HISTOGRAM_COUNTS, ROC_BINS, bins_for

    assert bins_for(10) == bins_for(30) == ROC_BINS
    assert bins_for(31) == ROC_BINS // 2
    assert bins_for(1000) == 1024
    for k in (2, 10, 30, 31, 100, 1000, 100_000):
        bins = bins_for(k)
        assert bins >= 1024 and (2 * k * bins <= HISTOGRAM_COUNTS or bins == 1024), k
