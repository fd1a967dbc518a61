"""What a model's raw outputs show over every row, and how they are read, for engines that see the
outputs in parts (Spark partitions, local blocks) and never as one array.

:func:`lossaudit.core.metrics.read_outputs` decides from the whole array whether outputs are
logits, probabilities or neither. The same decision needs only the outputs' range and row sums:
:class:`OutputSummary` holds them (mergeable: a minimum, a maximum and counts) and
:func:`reading_of` decides from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lossaudit.core.facts import OutputFacts
from lossaudit.core.head import HeadSpec
from lossaudit.core.metrics import PROBABILITY_TOLERANCE


@dataclass(frozen=True)
class OutputSummary:
    """What the raw outputs showed, over every row."""

    n_rows: int
    width: int
    non_finite_rows: int
    low: float | None
    high: float | None
    """Range of the finite rows' outputs (None when no row is finite)."""
    row_sums: tuple[float, float] | None
    """(min, max) of the row sums over finite rows, for heads of more than one unit."""

    def facts(self) -> OutputFacts:
        return OutputFacts(n_rows=self.n_rows, non_finite_rows=self.non_finite_rows, row_sums=self.row_sums)


@dataclass(frozen=True)
class Reading:
    """How the outputs are read (:func:`lossaudit.core.metrics.read_outputs`' decision)."""

    are_logits: bool
    probabilities: str | None
    """``softmax`` or ``sigmoid`` of the raw outputs, ``raw`` (they are probabilities), or None."""
    problem: str | None = None
    """Why outputs the head promises as probabilities are not read as such (rule LA306)."""


def reading_of(head: HeadSpec, task: str, summary: OutputSummary) -> Reading:
    """The decision of :func:`lossaudit.core.metrics.read_outputs`, from the outputs' range."""
    multilabel = task == "multilabel"
    activation = head.activation
    if activation == "linear":
        return Reading(True, "sigmoid" if head.units == 1 or multilabel else "softmax")
    low = summary.low if summary.low is not None else 0.0
    high = summary.high if summary.high is not None else 0.0
    in_range = low >= -PROBABILITY_TOLERANCE and high <= 1.0 + PROBABILITY_TOLERANCE
    if activation in ("softmax", "sigmoid"):
        if not in_range:
            return Reading(
                False,
                None,
                f"the head's {activation} promises probabilities, but the outputs range over "
                f"[{low:.4g}, {high:.4g}]",
            )
        return Reading(False, "raw")
    if in_range and (head.units == 1 or multilabel):
        return Reading(False, "raw")
    if in_range and sums_to_one(summary):
        return Reading(False, "raw")
    return Reading(False, None)


def sums_to_one(summary: OutputSummary) -> bool:
    """``np.allclose(row_sums, 1.0, atol=PROBABILITY_TOLERANCE)`` over every row."""
    if summary.row_sums is None:
        return False
    tol = PROBABILITY_TOLERANCE + 1e-5  # allclose's default rtol, times |1.0|
    low, high = summary.row_sums
    return low >= 1.0 - tol and high <= 1.0 + tol
