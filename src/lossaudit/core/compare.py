"""Compare reported metrics with recomputed ones and name the cause of each difference.

For a reported number, every definition a framework could have used for that name is computed on
the same labels and outputs (argmax, elementwise binary at 0.5 or at 0, subset, Hamming, top-k,
balanced, ...). The comparison says which definitions reproduce the number within tolerance and
how far it is from the definition the task needs.

Why one module of about 700 lines: the definitions a number could have been computed with
(:func:`accuracy_definitions`), the sampling interval and the attribution that names a difference's
cause are one judgement, each part read only by the next.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import LabelEvidence, to_class_indices, to_one_hot
from lossaudit.core.resolution import task_kind
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np

    from lossaudit.core.metrics import ModelOutputs, RecomputedMetrics

MIN_TOLERANCE = 1e-4
"""Floor of the match tolerance: Keras accumulates metrics in float32 over batches."""

ACCURACY_NAMES = frozenset(
    {
        "accuracy",
        "acc",
        "binary_accuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        "compile_metrics",
    }
)
KERAS_ACCURACY_RESOLUTIONS = frozenset({"elementwise_binary_0.5", "binary_0.5", "argmax", "argmax_one_unit"})
"""Definitions that some Keras family's metrics=['accuracy'] computes (besides the right one)."""
_PREFIXES = ("val_", "validation_", "eval_", "test_", "train_", "training_")
_GENERIC = {"precision": "precision", "recall": "recall", "f1": "f1", "auc": "roc_auc"}
_NOT_COMPARED = frozenset({"loss"})


THIS_DATA = "this"
"""The reported number was measured on this eval set (a live evaluate, or a number the user states)."""
OTHER_DATA = "other"
"""The reported number was measured on other data (a training run's validation split)."""
TRAINING_DATA = "training"
"""The reported number was measured on the training data: above held-out numbers by the
generalisation gap, so it is listed but never judged against this eval set."""
MEASURED_ON = (THIS_DATA, OTHER_DATA, TRAINING_DATA)
_HELD_OUT_PREFIXES = ("val_", "validation_", "eval_", "test_")


def measured_on_for_run_metric(name: str) -> str:
    """Where a metric a training run logged was measured: ``val_accuracy`` on held-out data (other
    than this eval set), a bare ``accuracy`` or ``train_accuracy`` on the training data (what Keras
    and autologging write)."""
    key = name.strip().lower()
    return OTHER_DATA if key.startswith(_HELD_OUT_PREFIXES) else TRAINING_DATA


@dataclass(frozen=True)
class ReportedMetric:
    """A number someone reported: a live evaluate, an MLflow run, or the user.

    ``measured_on`` says whether it was computed on this eval set or on other data; ``n`` is the
    size of the data it was computed on, where known (only used for other data).
    """

    name: str
    value: float
    source: str = "user"
    tolerance: float = MIN_TOLERANCE
    measured_on: str = THIS_DATA
    n: int | None = None

    def __post_init__(self) -> None:
        if self.measured_on not in MEASURED_ON:
            raise BadInputError(f"reported {self.name}: measured on {self.measured_on!r}; use this or other")
        if self.n is not None and (isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1):
            raise BadInputError(f"reported {self.name}: n must be a positive integer, got {self.n!r}")

    @classmethod
    def parse(
        cls, text: str, source: str = "user", *, measured_on: str = THIS_DATA, n: int | None = None
    ) -> ReportedMetric:
        """``"accuracy=0.9979"`` -> a metric whose tolerance is half a unit of its last digit."""
        name, sep, value_text = text.partition("=")
        name, value_text = name.strip(), value_text.strip()
        if not sep or not name or not value_text:
            raise BadInputError(f"--reported takes NAME=VALUE, got {text!r}")
        try:
            value = float(value_text)
        except ValueError:
            raise BadInputError(f"--reported {name}: {value_text!r} is not a number") from None
        if not math.isfinite(value):
            raise BadInputError(f"--reported {name}: {value_text!r} is not a finite number")
        return cls(name, value, source, tolerance_for_text(value_text), measured_on, n)

    @classmethod
    def from_value(
        cls, name: str, value: float, source: str, *, measured_on: str = THIS_DATA, n: int | None = None
    ) -> ReportedMetric:
        return cls(name, float(value), source, MIN_TOLERANCE, measured_on, n)


def tolerance_for_text(value_text: str) -> float:
    """Half a unit in the last decimal written, never below :data:`MIN_TOLERANCE`."""
    match = re.fullmatch(r"[+-]?\d*\.(\d+)", value_text.strip())
    if not match:  # an integer or exponent form: take the value as exact
        return MIN_TOLERANCE
    decimals = len(match.group(1))
    return max(0.5 * 10.0**-decimals, MIN_TOLERANCE)


@dataclass(frozen=True)
class Definition:
    """One way to compute a metric, its value on these labels and outputs."""

    key: str
    label: str
    value: float
    keras: str | None = None
    """The Keras metric that computes exactly this, where one does."""

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "value": self.value, "keras": self.keras}


@dataclass(frozen=True)
class SamplingInterval:
    """Where a number measured on other data may fall by sampling error alone.

    Around the value the task's definition takes on this eval set (``n`` samples): a two-sample
    normal interval when the other data's size ``n_other`` is known, else the Wilson score interval
    of the eval set alone. ``level`` is 1 - alpha.
    """

    centre: float
    low: float
    high: float
    level: float
    low_95: float
    high_95: float
    n: int
    n_other: int | None

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        text = f"{_pct(self.level)} interval {self.low:.4f}-{self.high:.4f}"
        if abs(self.level - 0.95) > 1e-9:
            text += f"; 95%: {self.low_95:.4f}-{self.high_95:.4f}"
        sizes = f"n = {self.n} here" + (
            f", {self.n_other} there" if self.n_other is not None else ", other size unknown"
        )
        return f"{text} ({sizes})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "centre": self.centre,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "low_95": self.low_95,
            "high_95": self.high_95,
            "n": self.n,
            "n_other": self.n_other,
        }


def _pct(level: float) -> str:
    return f"{100 * level:.10g}%"


def sampling_interval(value: float, n: int, n_other: int | None, alpha: float) -> SamplingInterval:
    """The interval a proportion measured on other data falls in with probability 1 - alpha when
    its true value equals the one measured here (``value`` on ``n`` samples)."""
    from statistics import NormalDist

    def bounds(level_alpha: float) -> tuple[float, float]:
        z = NormalDist().inv_cdf(1.0 - level_alpha / 2.0)
        if n_other is not None:
            # Two independent samples of one proportion: Var(p_here - p_there) = pi(1 - pi)(1/n + 1/m).
            # pi is estimated with one pseudo-count each side so that p = 0 or 1 keeps a width.
            pi = (value * n + 1.0) / (n + 2.0)
            half = z * math.sqrt(pi * (1.0 - pi) * (1.0 / n + 1.0 / n_other))
            return max(0.0, value - half), min(1.0, value + half)
        # Wilson score interval of the proportion measured here.
        denom = 1.0 + z * z / n
        centre = (value + z * z / (2 * n)) / denom
        half = z * math.sqrt(value * (1.0 - value) / n + z * z / (4 * n * n)) / denom
        return max(0.0, centre - half), min(1.0, centre + half)

    low, high = bounds(alpha)
    low95, high95 = bounds(0.05)
    return SamplingInterval(value, low, high, 1.0 - alpha, low95, high95, n, n_other)


@dataclass(frozen=True)
class Comparison:
    metric: str
    reported: float
    source: str
    status: str
    """``agrees``, ``wrong_definition``, ``unexplained`` (this data: no definition reproduces it),
    ``consistent`` / ``inconsistent`` (other data: inside / outside the sampling interval) or
    ``not_compared``."""
    explanation: str
    tolerance: float
    correct: Definition | None = None
    matches: tuple[Definition, ...] = ()
    """Definitions within tolerance (this data) or whose sampling interval holds the number (other
    data), closest first."""
    nearest: Definition | None = None
    measured_on: str = THIS_DATA
    interval: SamplingInterval | None = None
    """Other data only: the sampling interval around the task's definition."""
    definitions_known: bool = True
    """False when lossaudit cannot enumerate every definition a framework may use for this name
    (precision, recall, AUC, ...): an unexplained number is then not proof of a wrong one."""

    @property
    def difference(self) -> float | None:
        return None if self.correct is None else self.reported - self.correct.value

    @property
    def direction(self) -> str | None:
        """``inflated`` or ``deflated`` against the task's definition (None when equal or unknown)."""
        diff = self.difference
        if diff is None or diff == 0:
            return None
        return "inflated" if diff > 0 else "deflated"

    def evidence(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "reported": self.reported,
            "source": self.source,
            "measured_on": self.measured_on,
            "correct": None if self.correct is None else self.correct.key,
            "correct_value": None if self.correct is None else self.correct.value,
            "matched": [d.key for d in self.matches],
            "difference": self.difference,
            "direction": self.direction,
            "interval": None if self.interval is None else self.interval.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "reported": self.reported,
            "source": self.source,
            "measured_on": self.measured_on,
            "status": self.status,
            "explanation": self.explanation,
            "tolerance": self.tolerance,
            "correct": None if self.correct is None else self.correct.to_dict(),
            "matches": [d.to_dict() for d in self.matches],
            "nearest": None if self.nearest is None else self.nearest.to_dict(),
            "difference": self.difference,
            "direction": self.direction,
            "interval": None if self.interval is None else self.interval.to_dict(),
            "definitions_known": self.definitions_known,
        }


def base_metric_name(name: str) -> str:
    """``val_accuracy`` -> ``accuracy``; ``test_acc`` -> ``acc``."""
    key = name.strip().lower()
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _label_matrix(y_true: Any, labels: LabelEvidence, k: int) -> np.ndarray:
    import numpy as np

    arr = np.asarray(y_true, dtype=np.float64)
    if labels.is_dense:
        return arr
    if k == 1:
        return arr.reshape(-1, 1)
    return to_one_hot(to_class_indices(arr, labels), k).astype(np.float64)


def accuracy_definitions(
    y_true: Any, labels: LabelEvidence, outputs: ModelOutputs, head: HeadSpec
) -> tuple[Definition, ...]:
    """(the definition the task needs, then every other one) for an 'accuracy' on this head."""
    import numpy as np

    from lossaudit.core.metrics import top_k_hits

    raw = outputs.raw
    k = head.units
    task = task_kind(head, labels)
    y_mat = _label_matrix(y_true, labels, k)
    defs: list[Definition] = []

    def elementwise(threshold: float, on: np.ndarray) -> float:
        return float(np.mean((on > threshold).astype(np.float64) == y_mat))

    logit_note = " of the logits" if outputs.are_logits else ""
    if task == "multiclass":
        y_idx = to_class_indices(y_true, labels)
        pred = raw.argmax(axis=1)
        correct = Definition(
            "argmax",
            "argmax accuracy",
            float(np.mean(pred == y_idx)),
            "categorical_accuracy" if labels.is_dense else "sparse_categorical_accuracy",
        )
        defs.append(
            Definition(
                "elementwise_binary_0.5",
                f"elementwise binary accuracy at 0.5 over {k} outputs{logit_note}",
                elementwise(0.5, raw),
                "binary_accuracy",
            )
        )
        if outputs.are_logits:
            defs.append(
                Definition(
                    "elementwise_binary_0",
                    f"elementwise binary accuracy at 0 over {k} logits",
                    elementwise(0.0, raw),
                    "BinaryAccuracy(threshold=0.0)",
                )
            )
        # scikit-learn's tie order, as the recomputed top-k accuracy and merged counts break ties
        hits = top_k_hits(y_idx, raw, tuple(kk for kk in (2, 3, 5) if kk < k))
        for kk, hit in hits.items():
            defs.append(
                Definition(f"top_{kk}", f"top-{kk} accuracy", hit / len(y_idx), "top_k_categorical_accuracy")
            )
        present = [c for c in range(k) if (y_idx == c).any()]
        defs.append(
            Definition(
                "balanced",
                "balanced accuracy",
                float(np.mean([np.mean(pred[y_idx == c] == c) for c in present])),
            )
        )
        return (correct, *defs)
    if task == "binary":
        y = y_mat[:, 0]
        threshold = 0.0 if outputs.are_logits else 0.5
        pred = (raw[:, 0] > threshold).astype(np.float64)
        correct = Definition(
            "binary_0" if outputs.are_logits else "binary_0.5",
            f"binary accuracy at {threshold:g}{logit_note}",
            float(np.mean(pred == y)),
            "BinaryAccuracy(threshold=0.0)" if outputs.are_logits else "binary_accuracy",
        )
        if outputs.are_logits:
            defs.append(
                Definition(
                    "binary_0.5",
                    "binary accuracy at 0.5 applied to logits",
                    elementwise(0.5, raw),
                    "binary_accuracy",
                )
            )
        defs.append(
            Definition(
                "argmax_one_unit",
                "argmax over one unit (always class 0)",
                float(np.mean(y == 0)),
                "sparse_categorical_accuracy",
            )
        )
        present = [c for c in (0, 1) if (y == c).any()]
        defs.append(
            Definition(
                "balanced",
                "balanced accuracy",
                float(np.mean([np.mean(pred[y == c] == c) for c in present])),
            )
        )
        return (correct, *defs)
    # multi-label
    threshold = 0.0 if outputs.are_logits else 0.5
    pred_mat = (raw > threshold).astype(np.float64)
    correct = Definition(
        "hamming",
        f"per-label accuracy at {threshold:g}{logit_note} (1 - Hamming loss)",
        float(np.mean(pred_mat == y_mat)),
        "BinaryAccuracy(threshold=0.0)" if outputs.are_logits else "binary_accuracy",
    )
    if outputs.are_logits:
        defs.append(
            Definition(
                "elementwise_binary_0.5",
                "per-label accuracy at 0.5 applied to logits",
                elementwise(0.5, raw),
                "binary_accuracy",
            )
        )
    defs.append(
        Definition(
            "subset", "subset accuracy (all labels right)", float(np.mean((pred_mat == y_mat).all(axis=1)))
        )
    )
    top = raw.argmax(axis=1)
    defs.append(
        Definition(
            "argmax",
            "argmax accuracy against the first positive label",
            float(np.mean(top == y_mat.argmax(axis=1))),
            "categorical_accuracy",
        )
    )
    defs.append(
        Definition(
            "top1_in_labels",
            "top-scored label is one of the true labels",
            float(np.mean(y_mat[np.arange(len(top)), top] == 1)),
        )
    )
    return (correct, *defs)


def _generic_definitions(base: str, recomputed: RecomputedMetrics) -> list[Definition]:
    stem = _GENERIC.get(base, base)
    out: list[Definition] = []
    for name, value in recomputed.values.items():
        if value is None:
            continue
        if name == stem or name.startswith(stem + "_"):
            out.append(Definition(name, name.replace("_", " "), float(value)))
    return out


def compare(
    reported: Iterable[ReportedMetric],
    y_true: Any,
    labels: LabelEvidence,
    outputs: ModelOutputs | None,
    head: HeadSpec,
    recomputed: RecomputedMetrics,
    *,
    alpha: float = 0.001,
    tolerance: float | None = None,
    accuracy_defs: tuple[Definition, ...] | None = None,
) -> tuple[Comparison, ...]:
    """Attribute every reported metric. See the module docstring.

    ``alpha`` is the level at which a number measured on other data is judged outside sampling
    error; ``tolerance`` (when set) replaces each number's own match tolerance on this data.
    ``accuracy_defs`` are :func:`accuracy_definitions` computed elsewhere (from merged counts,
    :mod:`lossaudit.core.counts`); ``y_true`` and ``outputs`` are then not read.
    """
    results: list[Comparison] = []
    for rep in reported:
        if tolerance is not None:
            rep = replace(rep, tolerance=max(tolerance, MIN_TOLERANCE))
        base = base_metric_name(rep.name)
        if rep.measured_on == TRAINING_DATA:
            results.append(
                Comparison(
                    rep.name,
                    rep.value,
                    rep.source,
                    "not_compared",
                    f"{rep.name} {rep.value:.4f} was measured on the training data, where it exceeds "
                    "held-out numbers by the generalisation gap: listed, not judged",
                    rep.tolerance,
                    measured_on=rep.measured_on,
                )
            )
            continue
        if base in _NOT_COMPARED or (base.endswith("_loss") and base != "log_loss"):
            results.append(
                Comparison(
                    rep.name,
                    rep.value,
                    rep.source,
                    "not_compared",
                    f"{rep.name} {rep.value:.4f}: training losses include regularisation "
                    "terms and are not recomputed",
                    rep.tolerance,
                    measured_on=rep.measured_on,
                )
            )
            continue
        if base in ACCURACY_NAMES:
            if accuracy_defs is None:
                if outputs is None:
                    raise BadInputError("accuracy definitions need the outputs or merged counts")
                accuracy_defs = accuracy_definitions(y_true, labels, outputs, head)
            correct, others = accuracy_defs[0], accuracy_defs[1:]
            if rep.measured_on == OTHER_DATA:
                plausible = _resolvable(head, labels, others)
                results.append(_judge_sampling(rep, correct, plausible, recomputed.n_samples, alpha))
            else:
                results.append(_attribute(rep, correct, others, definitions_known=True))
            continue
        generic = _generic_definitions(base, recomputed)
        if not generic:
            results.append(
                Comparison(
                    rep.name,
                    rep.value,
                    rep.source,
                    "not_compared",
                    f"{rep.name}: lossaudit does not recompute this metric",
                    rep.tolerance,
                    measured_on=rep.measured_on,
                )
            )
            continue
        if rep.measured_on == OTHER_DATA:
            results.append(
                Comparison(
                    rep.name,
                    rep.value,
                    rep.source,
                    "not_compared",
                    f"{rep.name} {rep.value:.4f} was measured on other data; lossaudit has no "
                    f"sampling model for {base}, so it is not judged (here: "
                    + ", ".join(f"{d.key} {d.value:.4f}" for d in generic[:3])
                    + ")",
                    rep.tolerance,
                    measured_on=rep.measured_on,
                )
            )
            continue
        results.append(_attribute(rep, None, tuple(generic), definitions_known=False))
    return tuple(results)


_CLASS_TO_KERAS_NAME = {
    "BinaryAccuracy": "binary_accuracy",
    "CategoricalAccuracy": "categorical_accuracy",
    "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
}


def _resolvable(
    head: HeadSpec, labels: LabelEvidence, others: tuple[Definition, ...]
) -> tuple[Definition, ...]:
    """The other definitions this head's Keras family could have computed for 'accuracy'.

    On other data the sampling intervals are wide, so a number near a top-k or balanced accuracy
    is a coincidence, not an explanation: only what metrics=['accuracy'] resolves to here counts.
    """
    from lossaudit.core.resolution import resolve_metrics

    resolved = {
        _CLASS_TO_KERAS_NAME.get(r.resolved or "")
        for r in resolve_metrics(head.with_changes(metrics=("accuracy",)), labels)
    }
    return tuple(d for d in others if d.key in KERAS_ACCURACY_RESOLUTIONS and d.keras in resolved)


def _direction_text(rep: ReportedMetric, correct: Definition) -> str:
    diff = rep.value - correct.value
    word = "inflated" if diff > 0 else "deflated"
    return f"{word} by {diff:+.4f} against {correct.label} ({correct.value:.4f})"


def _judge_sampling(
    rep: ReportedMetric,
    correct: Definition,
    others: tuple[Definition, ...],
    n: int,
    alpha: float,
) -> Comparison:
    """A number measured on other data, judged against sampling error around each definition."""
    interval = sampling_interval(correct.value, n, rep.n, alpha)
    shown = f"reported {rep.name} {rep.value:.4f} ({rep.source}, measured on other data)"
    if interval.contains(rep.value):
        return Comparison(
            rep.name,
            rep.value,
            rep.source,
            "consistent",
            f"{shown} is consistent with sampling error around {correct.label} "
            f"{correct.value:.4f}: {interval.describe()}",
            rep.tolerance,
            correct,
            (correct,),
            correct,
            measured_on=OTHER_DATA,
            interval=interval,
        )
    # Intervals on other data are wide: only the definitions a Keras 'accuracy' really resolves
    # to may explain a number there (a top-k or balanced accuracy nearby is a coincidence).
    held = tuple(
        d
        for d in sorted(others, key=lambda d: abs(d.value - rep.value))
        if d.key in KERAS_ACCURACY_RESOLUTIONS
        and sampling_interval(d.value, n, rep.n, alpha).contains(rep.value)
    )
    if held:
        best = held[0]
        return Comparison(
            rep.name,
            rep.value,
            rep.source,
            "wrong_definition",
            f"{shown} is outside the {interval.describe()} around {correct.label} "
            f"{correct.value:.4f} but within sampling error of {best.label} ({best.value:.4f}); "
            f"{_direction_text(rep, correct)}",
            rep.tolerance,
            correct,
            held,
            best,
            measured_on=OTHER_DATA,
            interval=interval,
        )
    return Comparison(
        rep.name,
        rep.value,
        rep.source,
        "inconsistent",
        f"{shown} is outside the {interval.describe()} around {correct.label} "
        f"{correct.value:.4f}: {_direction_text(rep, correct)}, beyond what sampling error explains",
        rep.tolerance,
        correct,
        (),
        min((correct, *others), key=lambda d: abs(d.value - rep.value)),
        measured_on=OTHER_DATA,
        interval=interval,
    )


def _attribute(
    rep: ReportedMetric,
    correct: Definition | None,
    others: tuple[Definition, ...],
    *,
    definitions_known: bool,
) -> Comparison:
    candidates = ((correct,) if correct is not None else ()) + others
    ranked = sorted(candidates, key=lambda d: abs(d.value - rep.value))
    matches = tuple(d for d in ranked if abs(d.value - rep.value) <= rep.tolerance)
    nearest = ranked[0] if ranked else None
    shown = f"reported {rep.name} {rep.value:.4f}"

    def made(status: str, explanation: str) -> Comparison:
        return Comparison(
            rep.name,
            rep.value,
            rep.source,
            status,
            explanation,
            rep.tolerance,
            correct,
            matches,
            nearest,
            measured_on=rep.measured_on,
            definitions_known=definitions_known,
        )

    if correct is not None and abs(correct.value - rep.value) <= rep.tolerance:
        return made("agrees", f"{shown} agrees with {correct.label} ({correct.value:.4f})")
    if correct is None and matches:
        return made("agrees", f"{shown} agrees with {matches[0].label} ({matches[0].value:.4f})")
    if matches and correct is not None:
        best = matches[0]
        diff = rep.value - correct.value
        return made(
            "wrong_definition",
            f"{shown} matches {best.label} ({best.value:.4f}); {correct.label} is "
            f"{correct.value:.4f}; difference {diff:+.4f}",
        )
    if correct is not None:
        return made(
            "unexplained",
            f"{shown} on this eval set is {_direction_text(rep, correct)}, beyond its precision "
            f"({rep.tolerance:g}), and no other definition reproduces it"
            + (
                f" (nearest: {nearest.label}, {nearest.value:.4f})"
                if nearest is not None and nearest is not correct
                else ""
            ),
        )
    near = f"; nearest: {nearest.label} ({nearest.value:.4f})" if nearest is not None else ""
    return made(
        "unexplained",
        f"{shown} matches no definition lossaudit computes within {rep.tolerance:g}{near}; "
        "frameworks compute this metric in ways lossaudit does not all reproduce, so it cannot "
        "tell whether the number is wrong",
    )


def reported_from_mapping(
    values: Mapping[str, float], source: str, *, measured_on: str = THIS_DATA, n: int | None = None
) -> tuple[ReportedMetric, ...]:
    """Reported metrics from a dict (a Keras ``evaluate(return_dict=True)`` or an MLflow run)."""
    return tuple(
        ReportedMetric.from_value(k, v, source, measured_on=measured_on, n=n) for k, v in values.items()
    )
