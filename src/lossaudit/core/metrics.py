"""Independent recompute of classification metrics with scikit-learn.

The class list always comes from the head (``range(units)``, or {0, 1} for a 1-unit head), never
from the values seen: an evaluation sample that misses a class stays multiclass, unlike
inferred-label evaluators (mlflow #12790).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lossaudit.core.facts import PredictionFacts
from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import LabelEvidence, to_class_indices
from lossaudit.core.resolution import task_kind
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np

TOP_K = (2, 3, 5)
PROBABILITY_TOLERANCE = 1e-3
"""How far softmax rows may sum from 1 (float32 outputs) and still count as probabilities."""


@dataclass(frozen=True)
class ModelOutputs:
    """A model's outputs on the eval set, as the head says to read them.

    ``raw`` is what the model returned (what Keras metrics see), shape (n, units).
    ``probabilities`` are P(class) per output: ``raw`` itself after softmax/sigmoid, the
    softmax/sigmoid of ``raw`` for a linear (logit) head, or None for outputs that are neither.
    """

    raw: np.ndarray
    probabilities: np.ndarray | None
    are_logits: bool
    problem: str | None = None
    """Why outputs that the head promises as probabilities are not read as such (rule LA306)."""


@dataclass(frozen=True)
class ClassMetrics:
    label: int
    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.label,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
        }


@dataclass(frozen=True)
class RecomputedMetrics:
    """Metrics recomputed from labels and predictions; ``None`` where undefined (see notes)."""

    task: str
    n_samples: int
    n_classes: int
    values: Mapping[str, float | None]
    per_class: tuple[ClassMetrics, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]
    """(K, K) for binary and multiclass (rows true, columns predicted); for multi-label, K rows of
    (tn, fp, fn, tp)."""
    predicted_counts: tuple[int, ...]
    notes: tuple[str, ...] = ()
    definitions: Mapping[str, str] = field(default_factory=dict)
    """Metric name -> how it was computed, for the report."""

    @property
    def accuracy(self) -> float | None:
        return self.values.get("accuracy")

    def facts(self) -> PredictionFacts:
        return PredictionFacts(
            task=self.task,
            n_samples=self.n_samples,
            predicted_counts=self.predicted_counts,
            accuracy=self.accuracy,
            majority_baseline=self.values.get("majority_baseline"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "n_samples": self.n_samples,
            "n_classes": self.n_classes,
            "values": dict(self.values),
            "per_class": [c.to_dict() for c in self.per_class],
            "confusion_matrix": [list(r) for r in self.confusion_matrix],
            "predicted_counts": list(self.predicted_counts),
            "notes": list(self.notes),
            "definitions": dict(self.definitions),
        }


def _sigmoid(z: np.ndarray) -> np.ndarray:
    import numpy as np

    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    import numpy as np

    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def prediction_matrix(predictions: Any, head: HeadSpec) -> np.ndarray:
    """Predictions as a float64 (n, units) matrix; non-finite values are kept (see
    :func:`non_finite_rows`). Raises :class:`BadInputError` for non-numeric or misshapen input."""
    import numpy as np

    try:
        raw = np.asarray(predictions, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise BadInputError("predictions are not a numeric array") from None
    if raw.ndim == 1:
        raw = raw.reshape(-1, 1)
    if raw.ndim != 2 or raw.shape[0] == 0:
        raise BadInputError(f"predictions must have shape (n, {head.units}), got {raw.shape}")
    if raw.shape[1] != head.units:
        raise BadInputError(
            f"predictions have {raw.shape[1]} column(s) but the head has {head.units} unit(s)"
        )
    return raw


def non_finite_rows(raw: np.ndarray) -> int:
    """Rows of a prediction matrix holding NaN or an infinity (a diverged model)."""
    import numpy as np

    return int((~np.isfinite(raw)).any(axis=1).sum())


def read_outputs(predictions: Any, head: HeadSpec, labels: LabelEvidence | None = None) -> ModelOutputs:
    """Validate predictions against the head and derive probabilities.

    Raises :class:`BadInputError` for non-numeric, NaN/inf or wrongly shaped predictions. Outputs
    that the head's activation promises as probabilities but that leave [0, 1] are kept as scores
    (``probabilities`` None) with ``problem`` saying so: no metric treats them as probabilities.
    """
    import numpy as np

    raw = prediction_matrix(predictions, head)
    bad = non_finite_rows(raw)
    if bad:
        raise BadInputError(f"predictions contain NaN or infinite values in {bad} row(s)")
    multilabel = task_kind(head, labels) == "multilabel"
    activation = head.activation
    if activation == "linear":
        probs = _sigmoid(raw) if head.units == 1 or multilabel else _softmax(raw)
        return ModelOutputs(raw, probs, are_logits=True)
    low, high = float(raw.min()), float(raw.max())
    in_range = low >= -PROBABILITY_TOLERANCE and high <= 1.0 + PROBABILITY_TOLERANCE
    if activation in ("softmax", "sigmoid"):
        if not in_range:
            return ModelOutputs(
                raw,
                None,
                are_logits=False,
                problem=(
                    f"the head's {activation} promises probabilities, but the outputs range over "
                    f"[{low:.4g}, {high:.4g}]"
                ),
            )
        return ModelOutputs(raw, raw, are_logits=False)
    # Non-probability activations (relu, tanh, ...): use the values when they happen to be valid
    # probabilities, else report no probability metrics.
    if in_range and (head.units == 1 or multilabel):
        return ModelOutputs(raw, raw, are_logits=False)
    if in_range and np.allclose(raw.sum(axis=1), 1.0, atol=PROBABILITY_TOLERANCE):
        return ModelOutputs(raw, raw, are_logits=False)
    return ModelOutputs(raw, None, are_logits=False)


def check_labels_usable(labels: LabelEvidence) -> None:
    """Metrics need valid labels; say which problem stops them in one line."""
    if not labels.is_valid:
        raise BadInputError(f"labels cannot be scored: {labels.reason}")


def predicted_classes(outputs: ModelOutputs, task: str) -> np.ndarray:
    """Class per sample (binary, multiclass) or 0/1 matrix (multi-label), as the head implies."""
    import numpy as np

    if task == "multiclass":
        classes: np.ndarray = outputs.raw.argmax(axis=1)
        return classes
    # Thresholding a probability at 0.5 is thresholding its logit at 0.
    if outputs.probabilities is not None:
        positive = outputs.probabilities > 0.5
    else:
        positive = outputs.raw > (0.0 if outputs.are_logits else 0.5)
    if task == "binary":
        return positive[:, 0].astype(np.int64)
    return positive.astype(np.int64)


def recompute(y_true: Any, labels: LabelEvidence, outputs: ModelOutputs, head: HeadSpec) -> RecomputedMetrics:
    """Recompute every metric for this task with scikit-learn.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,), (n_samples, 1) or (n_samples, n_classes)
        The labels that ``labels`` describes.
    labels : LabelEvidence
        From :func:`lossaudit.core.labels.detect_labels` with ``units=head.units``.
    outputs : ModelOutputs
        From :func:`read_outputs`.
    head : HeadSpec
    """
    import numpy as np

    check_labels_usable(labels)
    n, width = outputs.raw.shape
    if labels.n_samples != n:
        raise BadInputError(f"labels have {labels.n_samples} rows but predictions have {n}")
    if labels.is_dense and labels.width != width:
        raise BadInputError(f"labels have {labels.width} columns but predictions have {width}")
    task = task_kind(head, labels)
    with warnings.catch_warnings():
        # Undefined precision for a class never predicted is reported as 0 and noted, not warned.
        warnings.simplefilter("ignore")
        if task == "multilabel":
            return _recompute_multilabel(np.asarray(y_true), outputs, head)
        y_idx = to_class_indices(y_true, labels)
        if task == "binary":
            return _recompute_single_label(y_idx, outputs, 2, task, binary=True)
        # K sigmoids on single-label data (LA104, LA106): scored as single-label, their outputs
        # renormalised into a distribution for the probability metrics.
        renormalise = head.activation == "sigmoid"
        return _recompute_single_label(
            y_idx, outputs, head.units, task, binary=False, renormalise=renormalise
        )


def confusion_counts(y: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """(K, K) counts, rows the true class, columns the predicted one (sklearn's confusion_matrix
    with ``labels=range(K)``), by one ``bincount``."""
    import numpy as np

    y = np.asarray(y, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y.size and (min(y.min(), y_pred.min()) < 0 or max(y.max(), y_pred.max()) >= k):
        raise BadInputError(f"class indices outside range({k})")
    flat = y * k + y_pred
    counts: np.ndarray = np.bincount(flat, minlength=k * k).reshape(k, k)
    return counts


def class_rates(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F1, support) per class from a confusion matrix, as sklearn's
    ``precision_recall_fscore_support(labels=range(K), zero_division=0)``: 0 where undefined."""
    import numpy as np

    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    both = predicted + support  # 2 tp + fp + fn
    f1 = np.divide(2 * tp, both, out=np.zeros_like(tp), where=both > 0)
    return precision, recall, f1, support


def confusion_values(cm: np.ndarray, *, binary: bool) -> dict[str, float]:
    """The single-label metrics a confusion matrix decides, named as :func:`recompute` names
    them: accuracy, balanced accuracy, precision, recall and F1 (macro over all K classes,
    weighted by support, and for class 1 of a binary task), majority baseline."""
    import numpy as np

    precision, recall, f1, support = class_rates(cm)
    n = float(support.sum())
    weights = support / n
    values = {
        "accuracy": float(np.trace(cm) / n),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "precision_weighted": float(np.sum(precision * weights)),
        "recall_weighted": float(np.sum(recall * weights)),
        "f1_weighted": float(np.sum(f1 * weights)),
    }
    if binary:
        values.update(precision=float(precision[1]), recall=float(recall[1]), f1=float(f1[1]))
    values["majority_baseline"] = float(support.max() / n)
    return values


def top_k_hits(y: np.ndarray, scores: np.ndarray, ks: tuple[int, ...]) -> dict[int, int]:
    """Samples whose label is among the ``k`` highest scores, per k: sklearn's
    ``top_k_accuracy_score`` times n (the same stable sort, so ties break the same way)."""
    import numpy as np

    if not ks:
        return {}
    ranked = np.argsort(scores, axis=1, kind="mergesort")[:, ::-1][:, : max(ks)]
    found = ranked == np.asarray(y).reshape(-1, 1)
    return {k: int(found[:, :k].any(axis=1).sum()) for k in ks}


def true_class_log_loss_sum(y: np.ndarray, full: np.ndarray) -> float:
    """sum of -log p(true class) over rows of probability rows ``full`` (clipped at 1e-15 and
    renormalised first, as :func:`recompute` feeds sklearn's ``log_loss``)."""
    import numpy as np

    clipped = np.clip(full, 1e-15, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return float(-np.log(clipped[np.arange(len(y)), y]).sum())


def _recompute_single_label(
    y: np.ndarray, outputs: ModelOutputs, k: int, task: str, *, binary: bool, renormalise: bool = False
) -> RecomputedMetrics:
    """Single-label metrics. The confusion matrix decides the counting metrics (one ``bincount``,
    then sklearn's formulas: :func:`class_rates`), and log loss and top-k are read off the
    outputs directly: at a million rows each sklearn call spends a second checking its inputs.
    ``tests/test_metrics.py`` holds every number to sklearn's own functions."""
    import numpy as np
    from sklearn import metrics as skm

    classes = list(range(k))
    y_pred = predicted_classes(outputs, task)
    n = y.size
    notes: list[str] = []
    definitions: dict[str, str] = {}
    cm = confusion_counts(y, y_pred, k)
    precision, recall, f1, support = class_rates(cm)
    absent = [c for c in classes if support[c] == 0]
    if absent:
        notes.append(f"class(es) {absent} absent from the labels; K = {k} from the head")

    values: dict[str, float | None] = dict(confusion_values(cm, binary=binary))
    values["accuracy"] = float(skm.accuracy_score(y, y_pred))
    definitions["accuracy"] = (
        "P(class 1) > 0.5 vs label" if binary else "argmax of the outputs vs label (sklearn accuracy_score)"
    )
    definitions["balanced_accuracy"] = "mean recall over the classes present"
    per_class = tuple(
        ClassMetrics(c, float(precision[c]), float(recall[c]), float(f1[c]), int(support[c])) for c in classes
    )
    predicted_counts = cm.sum(axis=0)
    never_predicted = [c for c in classes if predicted_counts[c] == 0]
    if never_predicted and len(never_predicted) < k:
        notes.append(f"class(es) {never_predicted} never predicted: their precision is reported as 0")
    definitions["majority_baseline"] = "share of the most frequent class"

    probs = outputs.probabilities
    if probs is not None:
        p1 = probs[:, 0] if binary else None
        full = np.column_stack([1.0 - p1, p1]) if p1 is not None else probs
        sums_to_one = np.allclose(full.sum(axis=1), 1.0, atol=PROBABILITY_TOLERANCE)
        if not binary and not sums_to_one and renormalise:
            notes.append(
                "independent sigmoid outputs on single-label data do not sum to 1: scored as "
                "single-label, renormalised per row for log loss, Brier score and ROC-AUC"
            )
            full = np.clip(full, 1e-15, None)
            full = full / full.sum(axis=1, keepdims=True)
            probs = full
            sums_to_one = True
        if not binary and not sums_to_one:
            notes.append("outputs do not sum to 1 per row: log loss and Brier score skipped")
        else:
            values["log_loss"] = true_class_log_loss_sum(y, full) / n
            full = np.clip(full, 1e-15, 1.0)
            full = full / full.sum(axis=1, keepdims=True)
            onehot = np.zeros_like(full)  # n x K, never a K x K identity
            onehot[np.arange(y.size), y] = 1.0
            values["brier_score"] = (
                float(np.mean((p1 - y) ** 2))
                if p1 is not None
                else float(np.mean(np.sum((full - onehot) ** 2, axis=1)))
            )
            definitions["brier_score"] = (
                "mean (p - y)^2" if binary else "mean over samples of sum_k (p_k - y_k)^2"
            )
        scores = probs[:, 0] if binary else probs
        values["roc_auc"] = _roc_auc(y, scores, classes, binary, notes)
        definitions["roc_auc"] = "binary ROC-AUC" if binary else "one-vs-rest, macro over classes present"
    else:
        notes.append("outputs are not probabilities: log loss, Brier score and ROC-AUC skipped")
        if binary:
            values["roc_auc"] = _roc_auc(y, outputs.raw[:, 0], classes, binary, notes)
    if not binary:
        ks = tuple(kk for kk in TOP_K if kk < k)
        for kk, hits in top_k_hits(y, outputs.raw, ks).items():
            values[f"top_{kk}_accuracy"] = hits / n
    return RecomputedMetrics(
        task=task,
        n_samples=n,
        n_classes=k,
        values=values,
        per_class=per_class,
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in cm),
        predicted_counts=tuple(int(c) for c in predicted_counts),
        notes=tuple(notes),
        definitions=definitions,
    )


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Binary ROC-AUC of ``scores`` for the ``positive`` mask: sklearn's ``roc_auc_score``.

    The area under the ROC curve (trapezoids, so tied scores count one half) is the Mann-Whitney
    statistic: (sum of the positives' ranks among all scores, ties given their average rank,
    minus n_pos (n_pos + 1) / 2) / (n_pos n_neg). One sort per call instead of sklearn's input
    checks and threshold curve (1.5 s per class at a million rows); equal to it to float
    rounding (tests/test_metrics.py holds them to 1e-12). Needs both classes present.
    """
    import numpy as np

    positive = np.asarray(positive, dtype=bool).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = positive.size
    n_pos = int(positive.sum())
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        raise BadInputError("ROC-AUC needs both classes")
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], n]
    average_rank = (starts + ends + 1) / 2.0  # 1-based ranks starts+1 .. ends, averaged
    rank_sum = float(np.repeat(average_rank, ends - starts)[positive[order]].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _roc_auc(
    y: np.ndarray, scores: np.ndarray, classes: list[int], binary: bool, notes: list[str]
) -> float | None:
    import numpy as np

    if binary:
        if np.unique(y).size < 2:
            notes.append("ROC-AUC undefined: only one class in the labels")
            return None
        return roc_auc(y == 1, scores)
    aucs = []
    for c in classes:
        positive = y == c
        if positive.all() or not positive.any():
            continue
        aucs.append(roc_auc(positive, scores[:, c]))
    if not aucs:
        notes.append("ROC-AUC undefined: fewer than two classes in the labels")
        return None
    if len(aucs) < len(classes):
        notes.append(f"ROC-AUC averaged over the {len(aucs)} classes present, not all {len(classes)}")
    return float(np.mean(aucs))


def _recompute_multilabel(y: np.ndarray, outputs: ModelOutputs, head: HeadSpec) -> RecomputedMetrics:
    import numpy as np
    from sklearn import metrics as skm

    k = head.units
    y = y.astype(np.int64)
    y_pred = predicted_classes(outputs, "multilabel")
    notes: list[str] = []
    values: dict[str, float | None] = {
        "accuracy": float(1.0 - skm.hamming_loss(y, y_pred)),
        "subset_accuracy": float(skm.accuracy_score(y, y_pred)),
        "hamming_loss": float(skm.hamming_loss(y, y_pred)),
    }
    definitions = {
        "accuracy": "per-label accuracy, 1 - Hamming loss (Keras BinaryAccuracy)",
        "subset_accuracy": "every label of a sample right (sklearn accuracy_score)",
    }
    for avg in ("micro", "macro", "weighted", "samples"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, y_pred, average=avg, zero_division=0)
        values[f"precision_{avg}"] = float(p)
        values[f"recall_{avg}"] = float(r)
        values[f"f1_{avg}"] = float(f)
    pc, rc, fc, sc = skm.precision_recall_fscore_support(y, y_pred, average=None, zero_division=0)
    per_class = tuple(ClassMetrics(c, float(pc[c]), float(rc[c]), float(fc[c]), int(sc[c])) for c in range(k))
    probs = outputs.probabilities
    if probs is not None:
        clipped = np.clip(probs, 1e-7, 1 - 1e-7)
        values["log_loss"] = float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))
        definitions["log_loss"] = "mean binary cross-entropy over all n*K entries"
        values["brier_score"] = float(np.mean((probs - y) ** 2))
        usable = [c for c in range(k) if 0 < y[:, c].sum() < y.shape[0]]
        if usable:
            values["roc_auc"] = float(np.mean([roc_auc(y[:, c] == 1, probs[:, c]) for c in usable]))
            definitions["roc_auc"] = "macro over labels with both classes present"
            if len(usable) < k:
                notes.append(f"ROC-AUC averaged over {len(usable)} of {k} labels")
    # Baseline: predict each label's majority value.
    col_pos = y.mean(axis=0)
    values["majority_baseline"] = float(np.mean(np.maximum(col_pos, 1 - col_pos)))
    definitions["majority_baseline"] = "per-label accuracy of predicting each label's majority value"
    mcm = skm.multilabel_confusion_matrix(y, y_pred)
    return RecomputedMetrics(
        task="multilabel",
        n_samples=y.shape[0],
        n_classes=k,
        values=values,
        per_class=per_class,
        confusion_matrix=tuple(tuple(int(v) for v in m.ravel()) for m in mcm),
        predicted_counts=tuple(int(v) for v in y_pred.sum(axis=0)),
        notes=tuple(notes),
        definitions=definitions,
    )
