"""Metrics from merged counts: what :mod:`lossaudit.core.metrics` computes from arrays, built from
a confusion matrix and a few sums instead.

An engine that never holds the predictions in one place (the Spark adapter over its partitions,
:mod:`lossaudit.core.blockwise` over the local batches) merges the confusion matrix of
single-label predictions and the sums behind log loss, Brier score and top-k accuracy. This
module turns those into the same :class:`~lossaudit.core.metrics.RecomputedMetrics` (values,
definitions and notes, in the same order) and the same accuracy
:class:`~lossaudit.core.compare.Definition` s that the array code gives.

Precision, recall and F1 are scikit-learn's own, fed the confusion matrix as sample weights (one
weighted pair per cell): the same code on the same sufficient statistics, so they equal the array
path exactly. Accuracy, balanced accuracy and the majority baseline are ratios of the counts.
Log loss and Brier score are means of per-row terms summed in another order: equal to the array
path within float rounding (about 1e-15 relative).

Why one module of about 620 lines: every count type sits beside the function that turns it into
the array path's metrics or definitions, and the three families (single-label, ROC-AUC from
histograms, multi-label) share the note and definition wording that must stay word for word the
array path's; split, each half would import the other's helpers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lossaudit.core.compare import Definition
from lossaudit.core.metrics import TOP_K, ClassMetrics, RecomputedMetrics
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class ProbabilitySums:
    """How the outputs were read as probabilities, and the sums of the per-row terms.

    ``log_loss_sum`` is the sum over rows of ``-log(q[true])``, ``q`` the outputs clipped to
    [1e-15, 1], renormalised per row, then clipped to [eps, 1 - eps] as scikit-learn's log loss
    clips; ``brier_sum`` the sum of ``(p - y)^2`` (binary, unclipped ``p``) or of
    ``sum_k (q_k - y_k)^2`` (multiclass). Both None when the outputs did not sum to 1 per row.
    """

    sums_to_one: bool
    renormalised: bool = False
    """K sigmoids on single-label data: outputs renormalised per row before the sums."""
    log_loss_sum: float | None = None
    brier_sum: float | None = None


@dataclass(frozen=True)
class RocAuc:
    """A ROC-AUC computed elsewhere (an evaluator, scikit-learn on collected rows, or bounds from
    score histograms)."""

    value: float | None
    notes: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None
    """Set when only bounds are known (:func:`roc_auc_bounds`): the exact ROC-AUC lies in
    [lower, upper]. ``value`` is then None unless the bounds meet."""
    bounded_by: str | None = None
    """How the bounds were found (for the note and the definitions)."""


ROC_BINS = 65536
"""Bins of the score histograms behind :func:`roc_auc_bounds`."""
ROC_LOGIT_SPAN = 32.0
"""The bins cover logit(p) in [-32, 32], evenly (0.00098 wide, 0.00024 in p near 0.5): every
float32 probability short of 1 (logit 16.6) and down to 1e-14 falls in a bin of that width;
smaller ones share the first bin."""


HISTOGRAM_COUNTS = 4_000_000
"""At most this many (class, side, bin) counts are held for the ROC-AUC bounds: a head of more than
30 classes (labels) gets fewer bins each (a power of two, at least 1,024)."""


def bins_for(classes: int) -> int:
    """ROC_BINS, halved until 2 x ``classes`` x bins fits :data:`HISTOGRAM_COUNTS` (>= 1,024)."""
    bins = ROC_BINS
    while bins > 1024 and 2 * classes * bins > HISTOGRAM_COUNTS:
        bins //= 2
    return bins


def logit_bins(p: np.ndarray, bins: int = ROC_BINS, span: float = ROC_LOGIT_SPAN) -> np.ndarray:
    """Each probability's histogram bin: logit(p) clipped to [-span, span], cut into ``bins``
    equal bins (p <= 0 in the first, p >= 1 in the last). Monotone in p, so a pair of scores in
    different bins is ordered as the scores are. :func:`lossaudit.spark.stats` computes the same
    bins in Spark SQL."""
    import numpy as np

    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(p) - np.log1p(-p)
    z = np.where(p <= 0, -span, np.where(p >= 1, span, np.clip(z, -span, span)))
    out: np.ndarray = np.minimum(np.floor((z + span) / (2 * span) * bins), bins - 1).astype(np.int64)
    return out


def roc_auc_bounds(
    histograms: Iterable[tuple[np.ndarray, np.ndarray]], *, n_classes: int, what: str
) -> RocAuc:
    """Bounds on the macro ROC-AUC from score histograms, one pair per class (one-vs-rest) or label.

    In the pair of class ``c``, ``positives[b]`` counts the rows of class (or label) ``c`` whose
    score for ``c`` fell in bin ``b``, ``negatives[b]`` the other rows. ROC-AUC is the share of
    (positive, negative) pairs ordered right, ties counting one half. A pair in different bins is
    ordered as its bins are; a pair in one bin may be either way: counting all of those as wrong
    gives the lower bound, all as right the upper. So the exact value (scikit-learn's on the same
    scores) is never outside [lower, upper], and the bounds meet when no bin holds both a positive
    and a negative. Classes (labels) without both positives and negatives are left out, as the
    array path does. The pairs are read one at a time (a caller may build each on demand);
    ``what`` names the classes in notes ("classes", "labels").
    """
    import numpy as np

    lowers: list[float] = []
    uppers: list[float] = []
    bins = 0
    for positives, negatives in histograms:
        pos = np.asarray(positives, dtype=np.float64)
        neg = np.asarray(negatives, dtype=np.float64)
        bins = len(pos)
        n_pos, n_neg = float(pos.sum()), float(neg.sum())
        if n_pos == 0 or n_neg == 0:
            continue
        below = np.cumsum(neg) - neg
        pairs = n_pos * n_neg
        right = float(np.dot(pos, below))
        tied = float(np.dot(pos, neg))
        lowers.append(right / pairs)
        uppers.append((right + tied) / pairs)
    if not lowers:
        return RocAuc(None, (f"ROC-AUC undefined: no {what} with both positives and negatives",))
    lower, upper = float(np.mean(lowers)), float(np.mean(uppers))
    notes = (
        (f"ROC-AUC averaged over the {len(lowers)} {what} present, not all {n_classes}",)
        if len(lowers) < n_classes
        else ()
    )
    how = f"score histograms of {bins:,} logit bins"
    return RocAuc(lower if lower == upper else None, notes, bounds=(lower, upper), bounded_by=how)


def roc_auc_of(y: np.ndarray, scores: np.ndarray, k: int, *, binary: bool) -> RocAuc:
    """ROC-AUC of collected rows as :func:`lossaudit.core.metrics.recompute` computes it (binary, or
    one-vs-rest macro over the classes present), with its notes."""
    from lossaudit.core.metrics import _roc_auc

    notes: list[str] = []
    value = _roc_auc(y, scores, list(range(k)), binary, notes)
    return RocAuc(value, tuple(notes))


@dataclass(frozen=True)
class SingleLabelCounts:
    """Merged statistics of single-label (binary or multiclass) predictions."""

    confusion: tuple[tuple[int, ...], ...]
    """(K, K), rows true class, columns predicted class (argmax, or thresholded for one unit)."""
    binary: bool
    probabilities: ProbabilitySums | None = None
    """None when the outputs are not probabilities."""
    roc_auc: RocAuc | None = None
    top_k_hits: Mapping[int, int] = field(default_factory=dict)
    """k -> rows whose true class is among the k highest outputs (scikit-learn's tie order)."""

    @property
    def n_classes(self) -> int:
        return len(self.confusion)

    @property
    def n_samples(self) -> int:
        return sum(sum(row) for row in self.confusion)


def _matrix(confusion: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    import numpy as np

    cm = np.asarray(confusion, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 2:
        raise BadInputError(f"a confusion matrix must be K x K with K >= 2, got shape {cm.shape}")
    if (cm < 0).any() or int(cm.sum()) == 0:
        raise BadInputError("a confusion matrix must hold non-negative counts and at least one sample")
    return cm


def weighted_pairs(
    confusion: Sequence[Sequence[int]] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true class, predicted class, count) for every non-empty cell: the confusion matrix as
    weighted samples, which scikit-learn's metrics take as ``sample_weight``."""
    import numpy as np

    cm = _matrix(confusion)
    true_idx, pred_idx = np.nonzero(cm)
    return true_idx, pred_idx, cm[true_idx, pred_idx].astype(np.float64)


def single_label_metrics(counts: SingleLabelCounts, *, task: str) -> RecomputedMetrics:
    """The metrics :func:`lossaudit.core.metrics.recompute` gives for binary or multiclass labels,
    from merged counts (values, definitions and notes in the same order)."""
    import numpy as np
    from sklearn import metrics as skm

    cm = _matrix(counts.confusion)
    k = cm.shape[0]
    binary = counts.binary
    classes = list(range(k))
    n = int(cm.sum())
    counts_true = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    y_true, y_pred, weight = weighted_pairs(cm)
    notes: list[str] = []
    values: dict[str, float | None] = {}
    definitions: dict[str, str] = {}
    absent = [c for c in classes if counts_true[c] == 0]
    if absent:
        notes.append(f"class(es) {absent} absent from the labels; K = {k} from the head")
    values["accuracy"] = float(np.trace(cm) / n)
    definitions["accuracy"] = (
        "P(class 1) > 0.5 vs label" if binary else "argmax of the outputs vs label (sklearn accuracy_score)"
    )
    values["balanced_accuracy"] = float(
        np.mean([cm[c, c] / counts_true[c] for c in classes if counts_true[c] > 0])
    )
    definitions["balanced_accuracy"] = "mean recall over the classes present"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for avg in ("macro", "weighted"):
            p, r, f, _ = skm.precision_recall_fscore_support(
                y_true, y_pred, labels=classes, average=avg, zero_division=0, sample_weight=weight
            )
            values[f"precision_{avg}"] = float(p)
            values[f"recall_{avg}"] = float(r)
            values[f"f1_{avg}"] = float(f)
        if binary:
            p, r, f, _ = skm.precision_recall_fscore_support(
                y_true,
                y_pred,
                labels=[0, 1],
                pos_label=1,
                average="binary",
                zero_division=0,
                sample_weight=weight,
            )
            values["precision"] = float(p)
            values["recall"] = float(r)
            values["f1"] = float(f)
        pc, rc, fc, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=classes, average=None, zero_division=0, sample_weight=weight
        )
    per_class = tuple(
        ClassMetrics(c, float(pc[c]), float(rc[c]), float(fc[c]), int(counts_true[c])) for c in classes
    )
    never_predicted = [c for c in classes if predicted[c] == 0]
    if never_predicted and len(never_predicted) < k:
        notes.append(f"class(es) {never_predicted} never predicted: their precision is reported as 0")
    values["majority_baseline"] = float(counts_true.max() / n)
    definitions["majority_baseline"] = "share of the most frequent class"

    probs = counts.probabilities
    roc = counts.roc_auc if counts.roc_auc is not None else RocAuc(None)
    if probs is not None:
        if not binary and not probs.sums_to_one and probs.renormalised:
            notes.append(
                "independent sigmoid outputs on single-label data do not sum to 1: scored as "
                "single-label, renormalised per row for log loss, Brier score and ROC-AUC"
            )
        if not binary and not probs.sums_to_one and not probs.renormalised:
            notes.append("outputs do not sum to 1 per row: log loss and Brier score skipped")
        else:
            if probs.log_loss_sum is None or probs.brier_sum is None:
                raise BadInputError("log loss and Brier score sums are missing for probabilities")
            values["log_loss"] = float(probs.log_loss_sum / n)
            values["brier_score"] = float(probs.brier_sum / n)
            definitions["brier_score"] = (
                "mean (p - y)^2" if binary else "mean over samples of sum_k (p_k - y_k)^2"
            )
        _put_roc(values, definitions, notes, roc, binary, define=True)
    else:
        notes.append("outputs are not probabilities: log loss, Brier score and ROC-AUC skipped")
        if binary:
            _put_roc(values, definitions, notes, roc, binary, define=False)
    if not binary:
        for kk in TOP_K:
            if kk < k:
                if kk not in counts.top_k_hits:
                    raise BadInputError(f"top-{kk} hits are missing for {k} classes")
                values[f"top_{kk}_accuracy"] = float(counts.top_k_hits[kk] / n)
    return RecomputedMetrics(
        task=task,
        n_samples=n,
        n_classes=k,
        values=values,
        per_class=per_class,
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in cm),
        predicted_counts=tuple(int(c) for c in predicted),
        notes=tuple(notes),
        definitions=definitions,
    )


def _put_roc(
    values: dict[str, float | None],
    definitions: dict[str, str],
    notes: list[str],
    roc: RocAuc,
    binary: bool,
    *,
    define: bool,
) -> None:
    """ROC-AUC where the array path puts it; bounds under their own names, with a note."""
    notes.extend(roc.notes)
    if roc.bounds is not None:
        _put_roc_bounds(values, definitions, notes, roc)
    else:
        values["roc_auc"] = roc.value
    if define:
        definitions["roc_auc"] = "binary ROC-AUC" if binary else "one-vs-rest, macro over classes present"


def _put_roc_bounds(
    values: dict[str, float | None], definitions: dict[str, str], notes: list[str], roc: RocAuc
) -> None:
    """``roc_auc`` only when the bounds meet; else ``roc_auc_lower`` and ``roc_auc_upper``, and a
    note: bounds are never reported as the exact number."""
    assert roc.bounds is not None
    lower, upper = roc.bounds
    values["roc_auc"] = roc.value
    if roc.value is not None:
        return
    values["roc_auc_lower"] = lower
    values["roc_auc_upper"] = upper
    definitions["roc_auc_lower"] = f"lower bound of the ROC-AUC from {roc.bounded_by}"
    definitions["roc_auc_upper"] = f"upper bound of the ROC-AUC from {roc.bounded_by}"
    notes.append(
        f"ROC-AUC is bounded, not exact here: between {lower:.6f} and {upper:.6f} "
        f"({roc.bounded_by}; roc_auc_lower, roc_auc_upper)"
    )


@dataclass(frozen=True)
class AccuracyCounts:
    """Hits behind every definition of 'accuracy' on single-label data (rows, or rows x K
    entries for the elementwise ones), merged over partitions.

    Multiclass: ``correct`` argmax hits, ``elementwise_05`` / ``elementwise_0`` entries where
    (output > threshold) equals the one-hot label, ``top_k`` hits. Binary: ``correct`` hits of the
    output at the head's threshold, ``elementwise_05`` hits at 0.5 (for logits), ``label_zero``
    rows labelled 0. ``recall_hits`` per class: rows of the class the definition's prediction got
    right (for balanced accuracy), with ``class_rows`` the rows per class.
    """

    n: int
    correct: int
    class_rows: tuple[int, ...]
    recall_hits: tuple[int, ...]
    elementwise_05: int = 0
    elementwise_0: int = 0
    top_k: Mapping[int, int] = field(default_factory=dict)
    label_zero: int = 0


def accuracy_definitions_from_counts(
    counts: AccuracyCounts, *, task: str, units: int, are_logits: bool, dense_labels: bool
) -> tuple[Definition, ...]:
    """What :func:`lossaudit.core.compare.accuracy_definitions` gives for binary or multiclass
    labels (the task's definition first), from merged hits."""
    import numpy as np

    n = counts.n
    present = [c for c, rows in enumerate(counts.class_rows) if rows > 0]
    balanced = float(np.mean([counts.recall_hits[c] / counts.class_rows[c] for c in present]))
    logit_note = " of the logits" if are_logits else ""
    defs: list[Definition] = []
    if task == "multiclass":
        k = units
        correct = Definition(
            "argmax",
            "argmax accuracy",
            counts.correct / n,
            "categorical_accuracy" if dense_labels else "sparse_categorical_accuracy",
        )
        defs.append(
            Definition(
                "elementwise_binary_0.5",
                f"elementwise binary accuracy at 0.5 over {k} outputs{logit_note}",
                counts.elementwise_05 / (n * k),
                "binary_accuracy",
            )
        )
        if are_logits:
            defs.append(
                Definition(
                    "elementwise_binary_0",
                    f"elementwise binary accuracy at 0 over {k} logits",
                    counts.elementwise_0 / (n * k),
                    "BinaryAccuracy(threshold=0.0)",
                )
            )
        for kk in (2, 3, 5):
            if kk < k:
                defs.append(
                    Definition(
                        f"top_{kk}", f"top-{kk} accuracy", counts.top_k[kk] / n, "top_k_categorical_accuracy"
                    )
                )
        defs.append(Definition("balanced", "balanced accuracy", balanced))
        return (correct, *defs)
    if task != "binary":
        raise BadInputError(f"accuracy definitions from counts cover binary and multiclass, not {task}")
    threshold = 0.0 if are_logits else 0.5
    correct = Definition(
        "binary_0" if are_logits else "binary_0.5",
        f"binary accuracy at {threshold:g}{logit_note}",
        counts.correct / n,
        "BinaryAccuracy(threshold=0.0)" if are_logits else "binary_accuracy",
    )
    if are_logits:
        defs.append(
            Definition(
                "binary_0.5",
                "binary accuracy at 0.5 applied to logits",
                counts.elementwise_05 / n,
                "binary_accuracy",
            )
        )
    defs.append(
        Definition(
            "argmax_one_unit",
            "argmax over one unit (always class 0)",
            counts.label_zero / n,
            "sparse_categorical_accuracy",
        )
    )
    defs.append(Definition("balanced", "balanced accuracy", balanced))
    return (correct, *defs)


@dataclass(frozen=True)
class MultiLabelCounts:
    """Merged statistics of multi-label predictions (K independent 0/1 labels per row).

    Per label: ``tp``, ``fp``, ``fn`` (true negatives are the rest of ``n``) and ``positives`` (rows
    labelled 1). Per row, summed: ``exact_rows`` (every label right) and the 'samples' precision,
    recall and F1 (0 where undefined, as scikit-learn's ``zero_division=0``). ``log_loss_sum`` and
    ``brier_sum`` sum over all n*K entries (probabilities clipped to [1e-7, 1 - 1e-7] for the log).
    """

    n: int
    tp: tuple[int, ...]
    fp: tuple[int, ...]
    fn: tuple[int, ...]
    exact_rows: int
    sample_precision_sum: float
    sample_recall_sum: float
    sample_f1_sum: float
    log_loss_sum: float | None = None
    brier_sum: float | None = None
    roc_auc: RocAuc | None = None

    @property
    def k(self) -> int:
        return len(self.tp)


def _label_pairs(counts: MultiLabelCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted rows with the per-label true positives, false positives and false negatives, each
    row marking one label (precision, recall and F1 read nothing else)."""
    import numpy as np

    k = counts.k
    rows_true: list[np.ndarray] = []
    rows_pred: list[np.ndarray] = []
    weights: list[float] = []
    for j in range(k):
        for truth, guess, weight in ((1, 1, counts.tp[j]), (0, 1, counts.fp[j]), (1, 0, counts.fn[j])):
            if weight:
                t, g = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
                t[j], g[j] = truth, guess
                rows_true.append(t)
                rows_pred.append(g)
                weights.append(float(weight))
    if not weights:  # nothing positive anywhere: one all-negative row keeps the shapes
        rows_true, rows_pred, weights = [np.zeros(k, dtype=np.int64)], [np.zeros(k, dtype=np.int64)], [1.0]
    return np.stack(rows_true), np.stack(rows_pred), np.asarray(weights)


def multilabel_metrics(counts: MultiLabelCounts) -> RecomputedMetrics:
    """The metrics :func:`lossaudit.core.metrics.recompute` gives for multi-hot labels, from merged
    counts (values, definitions and notes in the same order)."""
    import numpy as np
    from sklearn import metrics as skm

    n, k = counts.n, counts.k
    tp, fp, fn = (np.asarray(v, dtype=np.int64) for v in (counts.tp, counts.fp, counts.fn))
    hamming = float(int((fp + fn).sum()) / (n * k))
    values: dict[str, float | None] = {
        "accuracy": float(1.0 - hamming),
        "subset_accuracy": float(counts.exact_rows / n),
        "hamming_loss": hamming,
    }
    definitions = {
        "accuracy": "per-label accuracy, 1 - Hamming loss (Keras BinaryAccuracy)",
        "subset_accuracy": "every label of a sample right (sklearn accuracy_score)",
    }
    y_true, y_pred, weight = _label_pairs(counts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for avg in ("micro", "macro", "weighted", "samples"):
            if avg == "samples":
                p, r, f = (
                    s / n
                    for s in (counts.sample_precision_sum, counts.sample_recall_sum, counts.sample_f1_sum)
                )
            else:
                p, r, f, _ = skm.precision_recall_fscore_support(
                    y_true, y_pred, average=avg, zero_division=0, sample_weight=weight
                )
            values[f"precision_{avg}"] = float(p)
            values[f"recall_{avg}"] = float(r)
            values[f"f1_{avg}"] = float(f)
        pc, rc, fc, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, average=None, zero_division=0, sample_weight=weight
        )
    positives = tp + fn
    per_class = tuple(
        ClassMetrics(c, float(pc[c]), float(rc[c]), float(fc[c]), int(positives[c])) for c in range(k)
    )
    notes: list[str] = []
    if counts.log_loss_sum is not None and counts.brier_sum is not None:
        values["log_loss"] = float(counts.log_loss_sum / (n * k))
        definitions["log_loss"] = "mean binary cross-entropy over all n*K entries"
        values["brier_score"] = float(counts.brier_sum / (n * k))
        roc = counts.roc_auc if counts.roc_auc is not None else RocAuc(None)
        notes.extend(roc.notes)
        if roc.bounds is not None:
            _put_roc_bounds(values, definitions, notes, roc)
            definitions["roc_auc"] = "macro over labels with both classes present"
        elif roc.value is not None:
            values["roc_auc"] = roc.value
            definitions["roc_auc"] = "macro over labels with both classes present"
    col_pos = positives / n
    values["majority_baseline"] = float(np.mean(np.maximum(col_pos, 1 - col_pos)))
    definitions["majority_baseline"] = "per-label accuracy of predicting each label's majority value"
    tn = n - tp - fp - fn
    return RecomputedMetrics(
        task="multilabel",
        n_samples=n,
        n_classes=k,
        values=values,
        per_class=per_class,
        confusion_matrix=tuple((int(tn[c]), int(fp[c]), int(fn[c]), int(tp[c])) for c in range(k)),
        predicted_counts=tuple(int(v) for v in tp + fp),
        notes=tuple(notes),
        definitions=definitions,
    )


def multilabel_roc_auc(y: np.ndarray, probs: np.ndarray) -> RocAuc:
    """Macro ROC-AUC over the labels with both classes present in ``y`` (as the array path)."""
    import numpy as np
    from sklearn import metrics as skm

    k = y.shape[1]
    usable = [c for c in range(k) if 0 < y[:, c].sum() < y.shape[0]]
    if not usable:
        return RocAuc(None)
    value = float(np.mean([skm.roc_auc_score(y[:, c], probs[:, c]) for c in usable]))
    notes = (f"ROC-AUC averaged over {len(usable)} of {k} labels",) if len(usable) < k else ()
    return RocAuc(value, notes)


@dataclass(frozen=True)
class MultiLabelHits:
    """Hits behind every definition of 'accuracy' on multi-hot labels: ``entries`` (of n*K) where
    the output at the head's threshold equals the label, ``entries_05`` at 0.5 (for logits),
    ``rows_all`` rows with every entry right, ``argmax`` rows whose top output is the first
    positive label, ``top1`` rows whose top output is one of their labels."""

    n: int
    k: int
    entries: int
    rows_all: int
    argmax: int
    top1: int
    entries_05: int = 0


def multilabel_definitions(hits: MultiLabelHits, *, are_logits: bool) -> tuple[Definition, ...]:
    """What :func:`lossaudit.core.compare.accuracy_definitions` gives for multi-hot labels."""
    n, k = hits.n, hits.k
    threshold = 0.0 if are_logits else 0.5
    logit_note = " of the logits" if are_logits else ""
    correct = Definition(
        "hamming",
        f"per-label accuracy at {threshold:g}{logit_note} (1 - Hamming loss)",
        hits.entries / (n * k),
        "BinaryAccuracy(threshold=0.0)" if are_logits else "binary_accuracy",
    )
    defs: list[Definition] = []
    if are_logits:
        defs.append(
            Definition(
                "elementwise_binary_0.5",
                "per-label accuracy at 0.5 applied to logits",
                hits.entries_05 / (n * k),
                "binary_accuracy",
            )
        )
    defs.append(Definition("subset", "subset accuracy (all labels right)", hits.rows_all / n))
    defs.append(
        Definition(
            "argmax",
            "argmax accuracy against the first positive label",
            hits.argmax / n,
            "categorical_accuracy",
        )
    )
    defs.append(Definition("top1_in_labels", "top-scored label is one of the true labels", hits.top1 / n))
    return (correct, *defs)
