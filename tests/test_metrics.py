"""Independent recompute: every number cross-checked against scikit-learn called directly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import detect_labels, to_one_hot
from lossaudit.core.metrics import ModelOutputs, RecomputedMetrics, predicted_classes, read_outputs, recompute
from lossaudit.errors import BadInputError

RNG_SEED = 7


def _run(y: Any, predictions: np.ndarray, head: HeadSpec) -> tuple[RecomputedMetrics, ModelOutputs]:
    labels = detect_labels(y, units=head.units)
    outputs = read_outputs(predictions, head, labels)
    return recompute(y, labels, outputs, head), outputs


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


@pytest.fixture(scope="module")
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    """60 samples, 4 classes, every class present; noisy softmax outputs that favour the truth."""
    rng = np.random.default_rng(RNG_SEED)
    y = np.repeat(np.arange(4), 15)
    rng.shuffle(y)
    logits = rng.normal(size=(60, 4)) + 1.5 * np.eye(4)[y]
    return y, _softmax(logits)


SOFTMAX_4 = HeadSpec.from_values(units=4, activation="softmax", loss="sparse_categorical_crossentropy")


def test_multiclass_matches_sklearn(multiclass: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = multiclass
    m, _ = _run(y, probs, SOFTMAX_4)
    pred = probs.argmax(axis=1)
    labels = [0, 1, 2, 3]
    assert m.task == "multiclass" and m.n_samples == 60 and m.n_classes == 4
    v = m.values
    assert v["accuracy"] == skm.accuracy_score(y, pred)
    assert v["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        assert (v[f"precision_{avg}"], v[f"recall_{avg}"], v[f"f1_{avg}"]) == pytest.approx(
            (p, r, f), abs=1e-12
        )
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, average=None, zero_division=0)
    assert [c.precision for c in m.per_class] == pytest.approx(list(p), abs=1e-12)
    assert [c.recall for c in m.per_class] == pytest.approx(list(r), abs=1e-12)
    assert [c.f1 for c in m.per_class] == pytest.approx(list(f), abs=1e-12)
    assert [c.support for c in m.per_class] == list(s) == [15, 15, 15, 15]
    assert v["log_loss"] == pytest.approx(skm.log_loss(y, probs, labels=labels), rel=1e-9)
    assert v["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=labels), rel=1e-12
    )
    assert v["brier_score"] == pytest.approx(skm.brier_score_loss(y, probs, labels=labels), rel=1e-9)
    assert np.array_equal(np.array(m.confusion_matrix), skm.confusion_matrix(y, pred, labels=labels))
    for k in (2, 3):
        assert v[f"top_{k}_accuracy"] == skm.top_k_accuracy_score(y, probs, k=k, labels=labels)
    assert "top_5_accuracy" not in v  # k >= K is not reported
    assert v["majority_baseline"] == 0.25
    assert m.predicted_counts == tuple(np.bincount(pred, minlength=4))
    assert m.notes == ()


def test_one_hot_labels_give_the_same_numbers(multiclass: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = multiclass
    head = HeadSpec.from_values(units=4, activation="softmax", loss="categorical_crossentropy")
    from_index, _ = _run(y, probs, SOFTMAX_4)
    from_one_hot, _ = _run(to_one_hot(y, 4), probs, head)
    assert from_one_hot.values == from_index.values
    assert from_one_hot.confusion_matrix == from_index.confusion_matrix


def test_logits_are_read_through_softmax(multiclass: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = multiclass
    logits = np.log(probs) + 3.0  # softmax(logits) == probs
    head = HeadSpec.from_values(
        units=4, activation="linear", loss="sparse_categorical_crossentropy", from_logits=True
    )
    m, outputs = _run(y, logits, head)
    assert outputs.are_logits
    assert np.allclose(outputs.probabilities, probs)  # type: ignore[arg-type]
    assert m.values["accuracy"] == skm.accuracy_score(y, probs.argmax(axis=1))
    assert m.values["log_loss"] == pytest.approx(skm.log_loss(y, probs, labels=[0, 1, 2, 3]), rel=1e-9)


def test_missing_class_stays_multiclass(multiclass: tuple[np.ndarray, np.ndarray]) -> None:
    """A sample without class 3 is still a 4-class problem: K comes from the head."""
    y, probs = multiclass
    keep = y != 3
    y3, p3 = y[keep], probs[keep]
    m, _ = _run(y3, p3, SOFTMAX_4)
    pred = p3.argmax(axis=1)
    assert m.task == "multiclass"
    assert m.n_classes == 4
    assert len(m.per_class) == 4 and m.per_class[3].support == 0
    assert np.array_equal(np.array(m.confusion_matrix), skm.confusion_matrix(y3, pred, labels=[0, 1, 2, 3]))
    assert m.values["accuracy"] == skm.accuracy_score(y3, pred)
    f1_macro = skm.f1_score(y3, pred, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    assert m.values["f1_macro"] == pytest.approx(f1_macro, abs=1e-12)
    assert m.values["log_loss"] == pytest.approx(skm.log_loss(y3, p3, labels=[0, 1, 2, 3]), rel=1e-9)
    per_class_auc = [skm.roc_auc_score((y3 == c).astype(int), p3[:, c]) for c in (0, 1, 2)]
    assert m.values["roc_auc"] == pytest.approx(np.mean(per_class_auc), rel=1e-12)
    assert any("class(es) [3] absent from the labels; K = 4 from the head" in n for n in m.notes)
    assert any("ROC-AUC averaged over the 3 classes present, not all 4" in n for n in m.notes)


def test_two_values_seen_on_a_ten_class_head_stays_multiclass() -> None:
    y = np.array([0, 1, 1, 0, 1, 0])
    probs = np.full((6, 10), 0.02)
    probs[np.arange(6), [0, 1, 0, 0, 1, 1]] = 0.82
    head = HeadSpec.from_values(units=10, activation="softmax", loss="sparse_categorical_crossentropy")
    m, _ = _run(y, probs, head)
    assert m.task == "multiclass" and m.n_classes == 10
    assert np.array(m.confusion_matrix).shape == (10, 10)
    assert m.values["accuracy"] == skm.accuracy_score(y, probs.argmax(axis=1)) == pytest.approx(4 / 6)
    assert "precision" not in m.values  # no binary positive-class metrics on a 10-class head


@pytest.fixture(scope="module")
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED + 1)
    y = rng.integers(0, 2, size=80)
    p1 = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(scale=0.25, size=80), 0.01, 0.99)
    return y, p1


def test_binary_matches_sklearn(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p1 = binary
    head = HeadSpec.from_values(units=1, activation="sigmoid", loss="binary_crossentropy")
    m, _ = _run(y, p1.reshape(-1, 1), head)
    pred = (p1 > 0.5).astype(int)
    v = m.values
    assert m.task == "binary" and m.n_classes == 2
    assert v["accuracy"] == skm.accuracy_score(y, pred)
    assert v["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
    assert v["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert v["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert v["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert v["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
    assert v["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"), abs=1e-12)
    assert v["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1), rel=1e-12)
    assert v["log_loss"] == pytest.approx(skm.log_loss(y, p1), rel=1e-9)
    assert v["brier_score"] == pytest.approx(skm.brier_score_loss(y, p1), rel=1e-12)
    assert np.array_equal(np.array(m.confusion_matrix), skm.confusion_matrix(y, pred, labels=[0, 1]))
    assert v["majority_baseline"] == max(np.mean(y), 1 - np.mean(y))
    assert not any(k.startswith("top_") for k in v)


def test_binary_logits_threshold_at_zero(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p1 = binary
    logits = np.log(p1 / (1 - p1))
    head = HeadSpec.from_values(units=1, activation="linear", loss="bce", from_logits=True)
    m, outputs = _run(y, logits, head)
    assert outputs.are_logits
    assert m.values["accuracy"] == skm.accuracy_score(y, (logits > 0).astype(int))
    assert m.values["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1), rel=1e-12)
    assert m.values["log_loss"] == pytest.approx(skm.log_loss(y, p1), rel=1e-9)


def test_binary_with_one_class_has_no_roc_auc() -> None:
    head = HeadSpec.from_values(units=1, activation="sigmoid", loss="bce")
    m, _ = _run([1, 1, 1], np.array([[0.9], [0.2], [0.8]]), head)
    assert m.values["roc_auc"] is None
    assert "ROC-AUC undefined: only one class in the labels" in m.notes
    assert m.values["accuracy"] == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def multilabel() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED + 2)
    y = (rng.random((50, 5)) < 0.35).astype(int)
    probs = np.clip(0.5 + 0.35 * (2 * y - 1) + rng.normal(scale=0.3, size=(50, 5)), 0.01, 0.99)
    return y, probs


def test_multilabel_matches_sklearn(multilabel: tuple[np.ndarray, np.ndarray]) -> None:
    y, probs = multilabel
    head = HeadSpec.from_values(units=5, activation="sigmoid", loss="binary_crossentropy")
    m, _ = _run(y, probs, head)
    pred = (probs > 0.5).astype(int)
    v = m.values
    assert m.task == "multilabel" and m.n_classes == 5
    assert v["accuracy"] == pytest.approx(1 - skm.hamming_loss(y, pred), abs=1e-12)
    assert v["accuracy"] == pytest.approx(np.mean(pred == y), abs=1e-12)  # Keras BinaryAccuracy
    assert v["subset_accuracy"] == skm.accuracy_score(y, pred)
    assert v["hamming_loss"] == skm.hamming_loss(y, pred)
    for avg in ("micro", "macro", "weighted", "samples"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        assert (v[f"precision_{avg}"], v[f"recall_{avg}"], v[f"f1_{avg}"]) == pytest.approx(
            (p, r, f), abs=1e-12
        )
    assert v["roc_auc"] == pytest.approx(skm.roc_auc_score(y, probs, average="macro"), rel=1e-12)
    bce = -np.mean(y * np.log(probs) + (1 - y) * np.log(1 - probs))
    assert v["log_loss"] == pytest.approx(bce, rel=1e-9)
    assert v["brier_score"] == pytest.approx(np.mean((probs - y) ** 2), rel=1e-12)
    mcm = skm.multilabel_confusion_matrix(y, pred)
    assert m.confusion_matrix == tuple(tuple(int(x) for x in c.ravel()) for c in mcm)
    assert m.predicted_counts == tuple(pred.sum(axis=0))
    col = y.mean(axis=0)
    assert v["majority_baseline"] == pytest.approx(np.mean(np.maximum(col, 1 - col)), abs=1e-12)


def test_outputs_that_are_not_probabilities_skip_probability_metrics(
    multiclass: tuple[np.ndarray, np.ndarray],
) -> None:
    y, probs = multiclass
    scores = probs * 5.0  # relu-like scores: argmax still means something, probabilities do not
    head = HeadSpec.from_values(units=4, activation="relu", loss="sparse_categorical_crossentropy")
    m, outputs = _run(y, scores, head)
    assert outputs.probabilities is None
    assert m.values["accuracy"] == skm.accuracy_score(y, probs.argmax(axis=1))
    assert "log_loss" not in m.values and "roc_auc" not in m.values
    assert "outputs are not probabilities: log loss, Brier score and ROC-AUC skipped" in m.notes


def test_prediction_facts_for_the_rules() -> None:
    head = HeadSpec.from_values(units=3, activation="softmax", loss="sparse_categorical_crossentropy")
    y = np.array([0, 0, 0, 1, 2])
    constant = np.tile([0.8, 0.1, 0.1], (5, 1))
    m, outputs = _run(y, constant, head)
    facts = m.facts()
    assert facts.predicted_counts == (5, 0, 0)
    assert facts.n_classes_predicted == 1
    assert facts.accuracy == facts.majority_baseline == 0.6
    assert np.array_equal(predicted_classes(outputs, "multiclass"), np.zeros(5))
    assert "class(es) [1, 2] never predicted: their precision is reported as 0" in m.notes


@pytest.mark.parametrize(
    ("predictions", "units", "message"),
    [
        (np.zeros((4, 3)), 4, "predictions have 3 column(s) but the head has 4 unit(s)"),
        (np.array([[0.5, np.nan], [0.5, 0.5]]), 2, "predictions contain NaN or infinite values in 1 row(s)"),
        (np.array([["a", "b"]]), 2, "predictions are not a numeric array"),
        (np.zeros((0, 2)), 2, "predictions must have shape (n, 2), got (0, 2)"),
        (np.zeros((2, 2, 2)), 2, "predictions must have shape (n, 2), got (2, 2, 2)"),
    ],
)
def test_read_outputs_rejects_bad_predictions(predictions: np.ndarray, units: int, message: str) -> None:
    head = HeadSpec.from_values(units=units, activation="softmax")
    with pytest.raises(BadInputError) as info:
        read_outputs(predictions, head)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("y", "message"),
    [
        ([0, 1, 2], "labels have 3 rows but predictions have 4"),
        (np.eye(3)[[0, 1, 2, 0]][:, :2], "labels have 2 columns but predictions have 3"),
        ([0, 1, 2, 5], "labels cannot be scored: largest label index is 5 but the head has 3 units"),
    ],
)
def test_recompute_rejects_labels_that_do_not_fit(y: Any, message: str) -> None:
    head = HeadSpec.from_values(units=3, activation="softmax")
    labels = detect_labels(y, units=3)
    outputs = read_outputs(np.full((4, 3), 1 / 3), head, labels)
    with pytest.raises(BadInputError) as info:
        recompute(y, labels, outputs, head)
    assert str(info.value).startswith(message)


def test_to_dict_is_json_ready(multiclass: tuple[np.ndarray, np.ndarray]) -> None:
    import json

    y, probs = multiclass
    m, _ = _run(y, probs, SOFTMAX_4)
    doc = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert doc["task"] == "multiclass"
    assert doc["values"]["accuracy"] == m.values["accuracy"]
    assert doc["per_class"][0]["class"] == 0
    assert len(doc["confusion_matrix"]) == 4


@pytest.mark.parametrize("distinct", [3, 50, 10_000])
def test_rank_roc_auc_is_sklearns_with_ties(distinct: int) -> None:
    from lossaudit.core.metrics import roc_auc

    rng = np.random.default_rng(distinct)
    y = rng.integers(0, 2, 2_000)
    scores = rng.integers(0, distinct, 2_000) / distinct + 0.3 * y  # many ties when distinct is small
    assert roc_auc(y == 1, scores) == pytest.approx(skm.roc_auc_score(y, scores), rel=1e-12)
    assert roc_auc(y == 1, -scores) == pytest.approx(skm.roc_auc_score(y, -scores), rel=1e-12)
