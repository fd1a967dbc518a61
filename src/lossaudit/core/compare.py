"""Compare reported metrics with recomputed ones and name the cause of each difference.

For a reported number, every definition a framework could have used for that name is computed on
the same labels and outputs (argmax, elementwise binary at 0.5 or at 0, subset, Hamming, top-k,
balanced, ...). The comparison says which definitions reproduce the number within tolerance and
how far it is from the definition the task needs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
_PREFIXES = ("val_", "validation_", "eval_", "test_", "train_", "training_")
_GENERIC = {"precision": "precision", "recall": "recall", "f1": "f1", "auc": "roc_auc"}
_NOT_COMPARED = frozenset({"loss"})


@dataclass(frozen=True)
class ReportedMetric:
    """A number someone reported: a live evaluate, an MLflow run, or the user."""

    name: str
    value: float
    source: str = "user"
    tolerance: float = MIN_TOLERANCE

    @classmethod
    def parse(cls, text: str, source: str = "user") -> ReportedMetric:
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
        return cls(name, value, source, tolerance_for_text(value_text))

    @classmethod
    def from_value(cls, name: str, value: float, source: str) -> ReportedMetric:
        return cls(name, float(value), source, MIN_TOLERANCE)


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
class Comparison:
    metric: str
    reported: float
    source: str
    status: str
    """``agrees``, ``wrong_definition``, ``unexplained`` or ``not_compared``."""
    explanation: str
    tolerance: float
    correct: Definition | None = None
    matches: tuple[Definition, ...] = ()
    """Definitions within tolerance, closest first."""
    nearest: Definition | None = None

    @property
    def difference(self) -> float | None:
        return None if self.correct is None else self.reported - self.correct.value

    def evidence(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "reported": self.reported,
            "source": self.source,
            "correct": None if self.correct is None else self.correct.key,
            "correct_value": None if self.correct is None else self.correct.value,
            "matched": [d.key for d in self.matches],
            "difference": self.difference,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "reported": self.reported,
            "source": self.source,
            "status": self.status,
            "explanation": self.explanation,
            "tolerance": self.tolerance,
            "correct": None if self.correct is None else self.correct.to_dict(),
            "matches": [d.to_dict() for d in self.matches],
            "nearest": None if self.nearest is None else self.nearest.to_dict(),
            "difference": self.difference,
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
        order = np.argsort(-raw, axis=1)
        for kk in (2, 3, 5):
            if kk < k:
                hit = (order[:, :kk] == y_idx[:, None]).any(axis=1)
                defs.append(
                    Definition(
                        f"top_{kk}", f"top-{kk} accuracy", float(hit.mean()), "top_k_categorical_accuracy"
                    )
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
    outputs: ModelOutputs,
    head: HeadSpec,
    recomputed: RecomputedMetrics,
) -> tuple[Comparison, ...]:
    """Attribute every reported metric. See the module docstring."""
    accuracy_defs: tuple[Definition, ...] | None = None
    results: list[Comparison] = []
    for rep in reported:
        base = base_metric_name(rep.name)
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
                )
            )
            continue
        if base in ACCURACY_NAMES:
            if accuracy_defs is None:
                accuracy_defs = accuracy_definitions(y_true, labels, outputs, head)
            results.append(_attribute(rep, accuracy_defs[0], accuracy_defs[1:]))
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
                )
            )
            continue
        results.append(_attribute(rep, None, tuple(generic)))
    return tuple(results)


def _attribute(rep: ReportedMetric, correct: Definition | None, others: tuple[Definition, ...]) -> Comparison:
    candidates = ((correct,) if correct is not None else ()) + others
    ranked = sorted(candidates, key=lambda d: abs(d.value - rep.value))
    matches = tuple(d for d in ranked if abs(d.value - rep.value) <= rep.tolerance)
    nearest = ranked[0] if ranked else None
    shown = f"reported {rep.name} {rep.value:.4f}"
    if correct is not None and abs(correct.value - rep.value) <= rep.tolerance:
        return Comparison(
            rep.name,
            rep.value,
            rep.source,
            "agrees",
            f"{shown} agrees with {correct.label} ({correct.value:.4f})",
            rep.tolerance,
            correct,
            matches,
            nearest,
        )
    if correct is None and matches:
        return Comparison(
            rep.name,
            rep.value,
            rep.source,
            "agrees",
            f"{shown} agrees with {matches[0].label} ({matches[0].value:.4f})",
            rep.tolerance,
            None,
            matches,
            nearest,
        )
    if matches and correct is not None:
        best = matches[0]
        diff = rep.value - correct.value
        return Comparison(
            rep.name,
            rep.value,
            rep.source,
            "wrong_definition",
            f"{shown} matches {best.label} ({best.value:.4f}); {correct.label} is "
            f"{correct.value:.4f}; difference {diff:+.4f}",
            rep.tolerance,
            correct,
            matches,
            nearest,
        )
    right = (
        f"; {correct.label} is {correct.value:.4f} (difference {rep.value - correct.value:+.4f})"
        if correct is not None
        else ""
    )
    near = f"; nearest: {nearest.label} ({nearest.value:.4f})" if nearest is not None else ""
    return Comparison(
        rep.name,
        rep.value,
        rep.source,
        "unexplained",
        f"{shown} matches no known definition within {rep.tolerance:g}{right}{near}",
        rep.tolerance,
        correct,
        (),
        nearest,
    )


def reported_from_mapping(values: Mapping[str, float], source: str) -> tuple[ReportedMetric, ...]:
    """Reported metrics from a dict (a Keras ``evaluate(return_dict=True)`` or an MLflow run)."""
    return tuple(ReportedMetric.from_value(k, v, source) for k, v in values.items())
