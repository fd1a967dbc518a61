"""What the model's outputs showed, reduced to what the rules judge.

:mod:`lossaudit.core.metrics` computes these facts and :mod:`lossaudit.core.findings`' rules read
them; keeping them apart from both is what lets the two import each other's side only one way.
Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PredictionFacts:
    """What the predictions showed, reduced to what rules need (see ``metrics.prediction_facts``)."""

    task: str
    n_samples: int
    predicted_counts: tuple[int, ...]
    """Samples predicted per class (argmax, or thresholded for 1-unit and multi-label heads)."""
    accuracy: float | None
    majority_baseline: float | None

    @property
    def n_classes_predicted(self) -> int:
        return sum(1 for c in self.predicted_counts if c > 0)


@dataclass(frozen=True)
class OutputFacts:
    """What the raw outputs showed before any metric: rows that diverged, a range that is not a
    probability's. Present even when no metric could be computed."""

    n_rows: int
    non_finite_rows: int = 0
    """Rows holding NaN or an infinity."""
    not_probabilities: str | None = None
    """Why outputs the head promises as probabilities are not (e.g. a range beyond [0, 1])."""
    row_sums: tuple[float, float] | None = None
    """(min, max) over rows of the sum of the outputs, for heads of more than one unit."""


@dataclass(frozen=True)
class TrainingFacts:
    """What a fit's history showed so far, epoch by epoch (the Keras callback collects it)."""

    losses: tuple[float, ...]
    """The training loss Keras logged at the end of each epoch (NaN and infinities kept)."""
    accuracy_name: str | None = None
    """The accuracy key of the logs (``accuracy``, ``binary_accuracy``, ...), None when none."""
    accuracies: tuple[float, ...] = ()
    majority_baseline: float | None = None
    """max_k n_k / n of the training labels; None for multi-label or unknown labels."""
    patience: int = 3
    """Epochs a flat loss or an accuracy at the baseline must last before it is a finding."""

    @property
    def epochs(self) -> int:
        return len(self.losses)
