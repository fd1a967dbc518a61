"""Merged statistics of predictions seen one block at a time: the local engine's reduction when the
predictions are not kept (``lossaudit audit --roc-auc bounds``).

The forward pass hands each block of raw outputs to a :class:`BlockReducer`, which folds it, with
its rows' labels, into the counts :mod:`lossaudit.core.counts` turns into metrics (the counts the
Spark engine merges over partitions in :mod:`lossaudit.spark.stats`), and drops it. What stays in
memory is a confusion matrix, a few sums and the ROC-AUC's score histograms (2 x K x bins counts),
whatever the number of rows.

How outputs are read as probabilities depends on all of them (their range and row sums), known
only after the last block (:func:`lossaudit.core.outputs.reading_of`). So each block is reduced
under the one reading the head allows: softmax or sigmoid of the outputs for a linear (logit) head,
the outputs themselves otherwise; the sums that need probabilities are dropped at the end when the
outputs turn out not to be probabilities. K sigmoid units on single-label data are reduced both as
they are and renormalised per row, because which of the two the array path uses (the rows already
summing to one or not) is also known only at the end.

Per-row terms use the array path's own functions (:mod:`lossaudit.core.metrics`): the counting
metrics equal it exactly, the sums to float rounding. ROC-AUC is bounded from the histograms
(:func:`lossaudit.core.counts.roc_auc_bounds`) and reported as ``roc_auc`` only where the bounds
meet; the exact value would need every score at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lossaudit.core.counts import (
    AccuracyCounts,
    MultiLabelCounts,
    MultiLabelHits,
    ProbabilitySums,
    RocAuc,
    SingleLabelCounts,
    accuracy_definitions_from_counts,
    bins_for,
    logit_bins,
    multilabel_definitions,
    multilabel_metrics,
    roc_auc_bounds,
    single_label_metrics,
)
from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import LabelEvidence, to_class_indices
from lossaudit.core.metrics import TOP_K, _sigmoid, _softmax, top_k_hits, true_class_log_loss_sum
from lossaudit.core.outputs import OutputSummary, Reading, reading_of, sums_to_one
from lossaudit.core.resolution import task_kind
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

    from lossaudit.core.compare import Definition
    from lossaudit.core.facts import OutputFacts
    from lossaudit.core.metrics import RecomputedMetrics


@dataclass(frozen=True)
class MergedOutputs:
    """What the blocks add up to: the outputs' summary and, when they can be scored, the metrics and
    every definition of 'accuracy'; else why not (as :func:`lossaudit.core.audit.unscorable_reason`)."""

    labels: LabelEvidence
    summary: OutputSummary
    reading: Reading | None
    metrics: RecomputedMetrics | None
    accuracy_defs: tuple[Definition, ...] | None
    unscored: str | None

    @property
    def outputs(self) -> OutputFacts:
        return self.summary.facts()


class _Histograms:
    """Per class (label), how many positive and how many negative rows put their score in each
    logit bin (:func:`lossaudit.core.counts.logit_bins`)."""

    def __init__(self, classes: int, bins: int) -> None:
        import numpy as np

        self.classes, self.bins = classes, bins
        self.positives = np.zeros(classes * bins, dtype=np.int64)
        self.negatives = np.zeros(classes * bins, dtype=np.int64)

    def add(self, scores: np.ndarray, positive: np.ndarray) -> None:
        """``scores`` (rows, classes) probabilities; ``positive`` the same shape, True where the row
        is of that class (has that label)."""
        import numpy as np

        offsets = np.arange(self.classes, dtype=np.int64) * self.bins
        cells = logit_bins(scores, self.bins) + offsets
        size = self.classes * self.bins
        self.positives += np.bincount(cells[positive], minlength=size)
        self.negatives += np.bincount(cells[~positive], minlength=size)

    def bounds(self, what: str) -> RocAuc:
        def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for c in range(self.classes):
                cut = slice(c * self.bins, (c + 1) * self.bins)
                yield self.positives[cut], self.negatives[cut]

        return roc_auc_bounds(pairs(), n_classes=self.classes, what=what)


class _Probabilities:
    """Sums of the per-row probability terms under one reading: log loss, Brier score, histograms."""

    def __init__(self, classes: int, bins: int) -> None:
        self.log_loss = 0.0
        self.brier = 0.0
        self.histograms = _Histograms(classes, bins)


class BlockReducer:
    """Folds blocks of raw outputs, in row order, into merged statistics (module docstring).

    Parameters
    ----------
    head : the head the outputs come from (its units and last activation).
    labels : the label evidence of ``y`` against ``head``.
    y : every row's label, as the audit holds them; block ``i`` of ``n`` rows reads
        ``y[start:start + n]``.
    bins : logit bins per class for the ROC-AUC histograms (default
        :func:`lossaudit.core.counts.bins_for` the head's units).
    """

    def __init__(
        self, head: HeadSpec, labels: LabelEvidence, y: np.ndarray, *, bins: int | None = None
    ) -> None:
        import numpy as np

        self.head, self.labels, self.y = head, labels, y
        self.k = head.units
        self.bins = bins if bins is not None else bins_for(self.k)
        self.n = 0
        self.non_finite = 0
        self.low, self.high = np.inf, -np.inf
        self.sum_low, self.sum_high = np.inf, -np.inf
        self.scorable = labels.is_valid
        self.task = task_kind(head, labels) if self.scorable else None
        self.linear = head.activation == "linear"
        k = max(self.k, 2)
        self.confusion = np.zeros(k * k, dtype=np.int64)
        self.top_k = {kk: 0 for kk in TOP_K if kk < self.k} if self.task == "multiclass" else {}
        self.elementwise_05 = 0
        self.elementwise_0 = 0
        self.binary_hits = np.zeros(2, dtype=np.int64)
        classes = 1 if self.task == "binary" else self.k
        self.as_is = _Probabilities(classes, self.bins)
        # K sigmoids on single-label data: also renormalised per row (module docstring).
        self.renormalised = (
            _Probabilities(classes, self.bins)
            if self.task == "multiclass" and head.activation == "sigmoid"
            else None
        )
        # One unit whose outputs may not be probabilities: the array path ranks the raw outputs;
        # a logistic keeps their order and maps them into the bins' range.
        self.raw_scores = _Histograms(1, self.bins) if self.task == "binary" and not self.linear else None
        self.multilabel: dict[str, float] = {}
        self.tp = self.fp = self.fn = np.zeros(self.k, dtype=np.int64)

    # --- folding -------------------------------------------------------------------------------

    def add(self, start: int, block: np.ndarray) -> None:
        """Fold the outputs of rows ``start`` to ``start + len(block)``.

        Raises
        ------
        BadInputError
            Outputs whose width is not the head's units.
        """
        import numpy as np

        raw = np.asarray(block, dtype=np.float64)
        rows = raw.shape[0]
        raw = raw.reshape(rows, -1)
        if raw.shape[1] != self.k:
            raise BadInputError(
                f"predictions have {raw.shape[1]} column(s) but the head has {self.k} unit(s)"
            )
        finite = np.isfinite(raw).all(axis=1)
        self.n += rows
        self.non_finite += int(rows - finite.sum())
        if finite.any():
            kept = raw[finite] if not finite.all() else raw
            self.low = min(self.low, float(kept.min()))
            self.high = max(self.high, float(kept.max()))
            if self.k > 1:
                sums = kept.sum(axis=1)
                self.sum_low = min(self.sum_low, float(sums.min()))
                self.sum_high = max(self.sum_high, float(sums.max()))
        # A row of NaN leaves the outputs unscored: no metric is computed, so none is summed.
        if not self.scorable or self.non_finite or rows == 0:
            return
        y = self.y[start : start + rows]
        if self.task == "multilabel":
            self._add_multilabel(raw, np.asarray(y))
        elif self.task == "binary":
            self._add_binary(raw, to_class_indices(y, self.labels))
        else:
            self._add_multiclass(raw, y)

    def _add_binary(self, raw: np.ndarray, t: np.ndarray) -> None:
        import numpy as np

        p0 = raw[:, 0]
        p1 = _sigmoid(p0) if self.linear else p0
        # predicted_classes: P(class 1) > 0.5, which for raw outputs is the raw value > 0.5.
        q = (p1 > 0.5).astype(np.int64)
        self.confusion += np.bincount(t * 2 + q, minlength=4)
        decided = (p0 > (0.0 if self.linear else 0.5)).astype(np.int64)
        right = decided == t
        self.binary_hits += np.bincount(t[right], minlength=2)
        self.elementwise_05 += int(((p0 > 0.5).astype(np.int64) == t).sum())
        full = np.column_stack([1.0 - p1, p1])
        self.as_is.log_loss += true_class_log_loss_sum(t, full)
        self.as_is.brier += float(((p1 - t) ** 2).sum())
        positive = (t == 1).reshape(-1, 1)
        self.as_is.histograms.add(p1.reshape(-1, 1), positive)
        if self.raw_scores is not None:
            self.raw_scores.add(_sigmoid(p0).reshape(-1, 1), positive)

    def _add_multiclass(self, raw: np.ndarray, y: np.ndarray) -> None:
        import numpy as np

        k = self.k
        t = to_class_indices(y, self.labels)
        q = raw.argmax(axis=1)
        self.confusion += np.bincount(t * k + q, minlength=k * k)
        for kk, hits in top_k_hits(t, raw, tuple(self.top_k)).items():
            self.top_k[kk] += hits
        onehot = np.zeros_like(raw)  # n x K, never a K x K identity
        onehot[np.arange(t.size), t] = 1.0
        truth = np.asarray(y, dtype=np.float64) if self.labels.is_dense else onehot
        self.elementwise_05 += int(((raw > 0.5).astype(np.float64) == truth).sum())
        if self.linear:
            self.elementwise_0 += int(((raw > 0.0).astype(np.float64) == truth).sum())
        probs = _softmax(raw) if self.linear else raw
        positive = onehot.astype(bool)
        self._add_distribution(self.as_is, probs, t, onehot, positive)
        if self.renormalised is not None:
            spread = np.clip(probs, 1e-15, None)
            spread = spread / spread.sum(axis=1, keepdims=True)
            self._add_distribution(self.renormalised, spread, t, onehot, positive)

    @staticmethod
    def _add_distribution(
        into: _Probabilities, full: np.ndarray, t: np.ndarray, onehot: np.ndarray, positive: np.ndarray
    ) -> None:
        """Log loss, Brier score and histograms of probability rows, as the array path scores them."""
        import numpy as np

        into.log_loss += true_class_log_loss_sum(t, full)
        clipped = np.clip(full, 1e-15, 1.0)
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
        into.brier += float(((clipped - onehot) ** 2).sum())
        into.histograms.add(full, positive)

    def _add_multilabel(self, raw: np.ndarray, y: np.ndarray) -> None:
        import numpy as np

        if y.ndim != 2 or y.shape[1] != self.k:
            raise BadInputError(f"labels have {y.shape[-1]} columns but predictions have {self.k}")
        truth = y.astype(np.int64)
        probs = _sigmoid(raw) if self.linear else raw
        guess = probs > 0.5
        is_one = truth == 1
        self.tp = self.tp + (guess & is_one).sum(axis=0)
        self.fp = self.fp + (guess & ~is_one).sum(axis=0)
        self.fn = self.fn + (~guess & is_one).sum(axis=0)
        hit = (guess & is_one).sum(axis=1).astype(np.float64)
        n_pred = guess.sum(axis=1).astype(np.float64)
        n_true = truth.sum(axis=1).astype(np.float64)
        both = n_pred + n_true
        above = (raw > (0.0 if self.linear else 0.5)).astype(np.int64)
        top = raw.argmax(axis=1)
        rows = np.arange(top.size)
        clipped = np.clip(probs, 1e-7, 1 - 1e-7)
        terms = {
            "exact": float((guess.astype(np.int64) == truth).all(axis=1).sum()),
            "sp": float(np.divide(hit, n_pred, out=np.zeros_like(hit), where=n_pred > 0).sum()),
            "sr": float(np.divide(hit, n_true, out=np.zeros_like(hit), where=n_true > 0).sum()),
            "sf": float(np.divide(2 * hit, both, out=np.zeros_like(hit), where=both > 0).sum()),
            "entries": float((above == truth).sum()),
            "rows_all": float((above == truth).all(axis=1).sum()),
            "e05": float(((raw > 0.5).astype(np.int64) == truth).sum()),
            "argmax": float((top == truth.argmax(axis=1)).sum()),
            "top1": float((truth[rows, top] == 1).sum()),
            "ll": float((truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped)).sum()),
            "brier": float(((probs - truth) ** 2).sum()),
        }
        for key, value in terms.items():
            self.multilabel[key] = self.multilabel.get(key, 0.0) + value
        self.as_is.histograms.add(probs, is_one)

    # --- the result ----------------------------------------------------------------------------

    def summary(self) -> OutputSummary:
        import numpy as np

        seen = bool(np.isfinite(self.low))
        return OutputSummary(
            n_rows=self.n,
            width=self.k,
            non_finite_rows=self.non_finite,
            low=self.low if seen else None,
            high=self.high if seen else None,
            row_sums=(self.sum_low, self.sum_high) if self.k > 1 and seen else None,
        )

    def result(self) -> MergedOutputs:
        """The merged statistics of every block folded so far.

        Raises
        ------
        BadInputError
            No block, or fewer rows than labels (a forward pass that stopped early).
        """
        from lossaudit.core.audit import unscorable_reason

        if self.n == 0:
            raise BadInputError("the eval data has no samples")
        if self.n != self.labels.n_samples:
            raise BadInputError(f"labels have {self.labels.n_samples} rows but predictions have {self.n}")
        summary = self.summary()
        reason = unscorable_reason(self.labels, summary.facts())
        if reason is not None or self.task is None:
            return MergedOutputs(self.labels, summary, None, None, None, reason or "labels cannot be scored")
        reading = reading_of(self.head, self.task, summary)
        if self.task == "multilabel":
            counts, hits = self._multilabel_counts(reading)
            return MergedOutputs(
                self.labels,
                summary,
                reading,
                multilabel_metrics(counts),
                multilabel_definitions(hits, are_logits=reading.are_logits),
                None,
            )
        single, accuracy = self._single_label_counts(reading, summary)
        definitions = accuracy_definitions_from_counts(
            accuracy,
            task=self.task,
            units=self.k,
            are_logits=reading.are_logits,
            dense_labels=self.labels.is_dense,
        )
        metrics = single_label_metrics(single, task=self.task)
        return MergedOutputs(self.labels, summary, reading, metrics, definitions, None)

    def _single_label_counts(
        self, reading: Reading, summary: OutputSummary
    ) -> tuple[SingleLabelCounts, AccuracyCounts]:
        k = max(self.k, 2)
        cm = self.confusion.reshape(k, k)
        confusion = tuple(tuple(int(v) for v in row) for row in cm)
        class_rows = tuple(int(v) for v in cm.sum(axis=1))
        binary = self.task == "binary"
        probabilities: ProbabilitySums | None = None
        roc: RocAuc | None = None
        if binary:
            if reading.probabilities is not None:
                probabilities = ProbabilitySums(
                    sums_to_one=True, log_loss_sum=self.as_is.log_loss, brier_sum=self.as_is.brier
                )
            scores = self.as_is.histograms if reading.probabilities is not None else self.raw_scores
            if min(class_rows) == 0:
                roc = RocAuc(None, ("ROC-AUC undefined: only one class in the labels",))
            elif scores is not None:
                roc = scores.bounds("classes")
            accuracy = AccuracyCounts(
                n=self.n,
                correct=int(self.binary_hits.sum()),
                class_rows=class_rows,
                recall_hits=(int(self.binary_hits[0]), int(self.binary_hits[1])),
                elementwise_05=self.elementwise_05,
                label_zero=class_rows[0],
            )
            counts = SingleLabelCounts(
                confusion=confusion, binary=True, probabilities=probabilities, roc_auc=roc
            )
            return counts, accuracy
        if reading.probabilities is not None:
            rows_sum_to_one = reading.probabilities == "softmax" or sums_to_one(summary)
            chosen = self.as_is
            if rows_sum_to_one:
                probabilities = ProbabilitySums(True, log_loss_sum=chosen.log_loss, brier_sum=chosen.brier)
            elif self.renormalised is not None:
                chosen = self.renormalised
                probabilities = ProbabilitySums(
                    False, renormalised=True, log_loss_sum=chosen.log_loss, brier_sum=chosen.brier
                )
            else:
                probabilities = ProbabilitySums(False)
            roc = chosen.histograms.bounds("classes")
        counts = SingleLabelCounts(
            confusion=confusion,
            binary=False,
            probabilities=probabilities,
            roc_auc=roc,
            top_k_hits=dict(self.top_k),
        )
        accuracy = AccuracyCounts(
            n=self.n,
            correct=int(cm.trace()),
            class_rows=class_rows,
            recall_hits=tuple(int(cm[c, c]) for c in range(k)),
            elementwise_05=self.elementwise_05,
            elementwise_0=self.elementwise_0,
            top_k=dict(self.top_k),
        )
        return counts, accuracy

    def _multilabel_counts(self, reading: Reading) -> tuple[MultiLabelCounts, MultiLabelHits]:
        sums = self.multilabel
        probabilities = reading.probabilities is not None
        counts = MultiLabelCounts(
            n=self.n,
            tp=tuple(int(v) for v in self.tp),
            fp=tuple(int(v) for v in self.fp),
            fn=tuple(int(v) for v in self.fn),
            exact_rows=int(sums.get("exact", 0)),
            sample_precision_sum=sums.get("sp", 0.0),
            sample_recall_sum=sums.get("sr", 0.0),
            sample_f1_sum=sums.get("sf", 0.0),
            log_loss_sum=-sums.get("ll", 0.0) if probabilities else None,
            brier_sum=sums.get("brier", 0.0) if probabilities else None,
            roc_auc=self.as_is.histograms.bounds("labels") if probabilities else None,
        )
        hits = MultiLabelHits(
            n=self.n,
            k=self.k,
            entries=int(sums.get("entries", 0)),
            rows_all=int(sums.get("rows_all", 0)),
            argmax=int(sums.get("argmax", 0)),
            top1=int(sums.get("top1", 0)),
            entries_05=int(sums.get("e05", 0)),
        )
        return counts, hits
