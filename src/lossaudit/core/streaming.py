"""Mergeable statistics of a single-label classifier's outputs, for eval sets read in chunks.

:func:`lossaudit.core.metrics.recompute` needs every label and output in memory. The statistics
here are sums: the confusion matrix (and from it the per-class counts, accuracy, balanced accuracy,
precision, recall and F1), the sums behind log loss and the Brier score, and top-k hits. Each chunk
of (labels, outputs) updates them; two of them over disjoint chunks merge by adding; the numbers
they give equal ``recompute``'s on the whole set (``tests/test_streaming_stats.py``), with the
same definitions (the same functions of :mod:`lossaudit.core.metrics` compute them: argmax or
P(class 1) > 0.5 predictions, zero for an undefined precision or recall, probabilities clipped at
1e-15 and renormalised per row for log loss). ROC-AUC is not a sum of per-chunk parts: it stays
with ``recompute`` (which needs the predictions). Multi-label heads, and K sigmoids renormalised
on single-label data, are scored by ``recompute`` only.

numpy only: no scikit-learn, no framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lossaudit.core.metrics import (
    PROBABILITY_TOLERANCE,
    TOP_K,
    ModelOutputs,
    confusion_counts,
    confusion_values,
    predicted_classes,
    top_k_hits,
    true_class_log_loss_sum,
)
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np

_CLIP = 1e-15


def _zeros(shape: int | tuple[int, ...]) -> np.ndarray:
    import numpy as np

    return np.zeros(shape, dtype=np.int64)


@dataclass
class StreamingStats:
    """Sums over the chunks seen so far; ``n_classes`` from the head (2 for a 1-unit head)."""

    n_classes: int
    binary: bool
    confusion: np.ndarray = field(init=False)
    """(K, K) counts, rows true class, columns predicted class."""
    log_loss_sum: float = 0.0
    brier_sum: float = 0.0
    probability_rows: int = 0
    """Rows whose probabilities entered the log-loss and Brier sums."""
    off_distribution_rows: int = 0
    """Rows of a multiclass head whose probabilities do not sum to 1 (then no log loss or Brier)."""
    no_probability_rows: int = 0
    """Rows given without probabilities (outputs that are not probabilities)."""
    top_k_hits: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n_classes < 2:
            raise BadInputError(f"streaming statistics need at least 2 classes, got {self.n_classes}")
        self.confusion = _zeros((self.n_classes, self.n_classes))
        self.top_k_hits = {k: 0 for k in self.top_ks}

    @property
    def top_ks(self) -> tuple[int, ...]:
        return () if self.binary else tuple(k for k in TOP_K if k < self.n_classes)

    @property
    def n_samples(self) -> int:
        return int(self.confusion.sum())

    def update(
        self, y: Any, raw: Any, probabilities: Any | None = None, *, are_logits: bool = False
    ) -> StreamingStats:
        """Add one chunk: class indices ``y`` (m,), the raw outputs (m, units) and, when the
        outputs are or imply probabilities, those (m, units) (as :class:`ModelOutputs` holds them)."""
        import numpy as np

        y = np.asarray(y, dtype=np.int64).reshape(-1)
        raw = np.asarray(raw, dtype=np.float64)
        raw = raw.reshape(len(raw), -1)
        probs = None if probabilities is None else np.asarray(probabilities, dtype=np.float64)
        if len(y) != len(raw) or (probs is not None and probs.shape != raw.shape):
            raise BadInputError(f"a chunk of {len(y)} labels and outputs of shape {raw.shape}")
        task = "binary" if self.binary else "multiclass"
        predicted = predicted_classes(ModelOutputs(raw, probs, are_logits=are_logits), task)
        self.confusion += confusion_counts(y, predicted, self.n_classes)
        for k, hits in top_k_hits(y, raw, self.top_ks).items():
            self.top_k_hits[k] += hits
        if probs is None:
            self.no_probability_rows += len(y)
            return self
        rows = np.arange(len(y))
        if self.binary:
            p1 = probs[:, 0]
            full = np.column_stack([1.0 - p1, p1])
            self.brier_sum += float(np.sum((p1 - y) ** 2))
        else:
            off = ~np.isclose(probs.sum(axis=1), 1.0, atol=PROBABILITY_TOLERANCE)  # as np.allclose
            self.off_distribution_rows += int(off.sum())
            full = probs
        self.log_loss_sum += true_class_log_loss_sum(y, full)
        if not self.binary:
            full = np.clip(full, _CLIP, 1.0)
            full = full / full.sum(axis=1, keepdims=True)
            onehot = np.zeros_like(full)
            onehot[rows, y] = 1.0
            self.brier_sum += float(np.sum((full - onehot) ** 2))
        self.probability_rows += len(y)
        return self

    def merge(self, other: StreamingStats) -> StreamingStats:
        """The statistics of both sets of chunks (``self`` updated in place and returned)."""
        if (other.n_classes, other.binary) != (self.n_classes, self.binary):
            raise BadInputError("cannot merge statistics of different heads")
        self.confusion += other.confusion
        self.log_loss_sum += other.log_loss_sum
        self.brier_sum += other.brier_sum
        self.probability_rows += other.probability_rows
        self.off_distribution_rows += other.off_distribution_rows
        self.no_probability_rows += other.no_probability_rows
        for k in self.top_ks:
            self.top_k_hits[k] += other.top_k_hits[k]
        return self

    # -- the numbers -------------------------------------------------------------------------------

    @property
    def support(self) -> np.ndarray:
        """True samples per class."""
        out: np.ndarray = self.confusion.sum(axis=1)
        return out

    @property
    def predicted_counts(self) -> np.ndarray:
        """Predicted samples per class."""
        out: np.ndarray = self.confusion.sum(axis=0)
        return out

    def values(self) -> dict[str, float | None]:
        """The metrics ``recompute`` reports under the same names (except ``roc_auc``)."""
        n = self.n_samples
        if n == 0:
            raise BadInputError("no samples seen")
        values: dict[str, float | None] = dict(confusion_values(self.confusion, binary=self.binary))
        if self.no_probability_rows == 0 and self.off_distribution_rows == 0:
            values["log_loss"] = self.log_loss_sum / n
            values["brier_score"] = self.brier_sum / n
        for k in self.top_ks:
            values[f"top_{k}_accuracy"] = self.top_k_hits[k] / n
        return values
