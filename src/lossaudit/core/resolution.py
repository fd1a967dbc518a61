"""What a declared Keras metric name becomes, per Keras family, and what the task needed.

The rules, per the Keras sources (the first match wins):

* Keras 3 (``keras/src/trainers/compile_utils.py``, ``get_metric``) and tf.keras >= 2.2 in eager
  mode (``tf_keras/engine/compile_utils.py``): ``y_pred.shape[-1] == 1`` -> BinaryAccuracy; else
  ``rank(y_true) < rank(y_pred)`` or ``y_true.shape[-1] == 1`` -> SparseCategoricalAccuracy; else
  CategoricalAccuracy. Decided from the first batch's tensors: shapes only, never the loss.
* Keras <= 2.3, tf.keras <= 2.1 and tf-keras in TF1 graph mode (``training_utils_v1.py``,
  ``get_metric_function``): output units == 1 or loss is binary_crossentropy -> binary_accuracy;
  sparse categorical loss -> sparse_categorical_accuracy; else categorical_accuracy.

Either way the metric keeps the user's name ("accuracy"), so logs never say which one ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lossaudit.core.head import HeadSpec, KerasFamily, LossKind
from lossaudit.core.labels import LabelEncoding

if TYPE_CHECKING:
    from lossaudit.core.labels import LabelEvidence

BINARY_ACCURACY = "BinaryAccuracy"
CATEGORICAL_ACCURACY = "CategoricalAccuracy"
SPARSE_CATEGORICAL_ACCURACY = "SparseCategoricalAccuracy"

ACCURACY_ALIASES = frozenset({"accuracy", "acc"})

# Explicit metric names -> the Keras class they build, whatever the shapes.
_EXPLICIT_CLASSES = {
    "binary_accuracy": BINARY_ACCURACY,
    "categorical_accuracy": CATEGORICAL_ACCURACY,
    "sparse_categorical_accuracy": SPARSE_CATEGORICAL_ACCURACY,
    "top_k_categorical_accuracy": "TopKCategoricalAccuracy",
    "sparse_top_k_categorical_accuracy": "SparseTopKCategoricalAccuracy",
    "auc": "AUC",
    "precision": "Precision",
    "recall": "Recall",
}


@dataclass(frozen=True)
class MetricResolution:
    """One declared metric: the class Keras builds for it and the accuracy the task needs."""

    declared: str
    resolved: str | None
    """Keras metric class name (``BinaryAccuracy``, ...), or None when lossaudit cannot tell."""
    family: KerasFamily
    because: str
    labels_assumed: bool
    """True when the label shape was not seen and was inferred from the loss."""
    threshold: float | None = None
    """The threshold BinaryAccuracy applies (Keras default 0.5)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "declared": self.declared,
            "resolved": self.resolved,
            "family": self.family.value,
            "because": self.because,
            "labels_assumed": self.labels_assumed,
            "threshold": self.threshold,
        }


def label_rank_and_width(head: HeadSpec, labels: LabelEvidence | None) -> tuple[int, int, bool]:
    """(rank, last dim, assumed) of the label tensor Keras will see.

    Without label evidence, the loss tells what the user feeds: sparse losses take (n,), the
    others (n, units).
    """
    if labels is not None and labels.shape:
        width = labels.shape[1] if len(labels.shape) == 2 else 1
        return len(labels.shape), width, False
    if head.loss is not None and head.loss.kind is LossKind.SPARSE_CE:
        return 1, 1, True
    return 2, head.units, True


def resolve_metric(name: str, head: HeadSpec, labels: LabelEvidence | None = None) -> MetricResolution:
    """The Keras metric class that ``metrics=[name]`` builds for this head and these labels."""
    rank, width, assumed = label_rank_and_width(head, labels)
    family = head.keras_family
    if name in _EXPLICIT_CLASSES:
        resolved = _EXPLICIT_CLASSES[name]
        return MetricResolution(
            name,
            resolved,
            family,
            "named explicitly",
            assumed,
            0.5 if resolved == BINARY_ACCURACY else None,
        )
    if name not in ACCURACY_ALIASES:
        return MetricResolution(name, None, family, "not an accuracy alias", assumed)
    if family is KerasFamily.LEGACY:
        # get_metric_function tests for the BinaryCrossentropy / SparseCategoricalCrossentropy
        # classes (or their functions) exactly: focal variants are other classes and fall through.
        loss_name = head.loss.name if head.loss else None
        if head.units == 1:
            return MetricResolution(name, BINARY_ACCURACY, family, "output has 1 unit", assumed, 0.5)
        if loss_name == "binary_crossentropy":
            return MetricResolution(
                name, BINARY_ACCURACY, family, "loss is binary_crossentropy", assumed, 0.5
            )
        if loss_name == "sparse_categorical_crossentropy":
            return MetricResolution(
                name, SPARSE_CATEGORICAL_ACCURACY, family, "loss is sparse categorical", assumed
            )
        return MetricResolution(name, CATEGORICAL_ACCURACY, family, "default for other losses", assumed)
    if head.units == 1:
        return MetricResolution(name, BINARY_ACCURACY, family, "y_pred.shape[-1] == 1", assumed, 0.5)
    if rank < 2:
        return MetricResolution(
            name, SPARSE_CATEGORICAL_ACCURACY, family, "rank(y_true) < rank(y_pred)", assumed
        )
    if width == 1:
        return MetricResolution(name, SPARSE_CATEGORICAL_ACCURACY, family, "y_true.shape[-1] == 1", assumed)
    return MetricResolution(
        name, CATEGORICAL_ACCURACY, family, "y_true and y_pred have the same width", assumed
    )


def resolve_metrics(head: HeadSpec, labels: LabelEvidence | None = None) -> tuple[MetricResolution, ...]:
    return tuple(resolve_metric(m, head, labels) for m in head.metrics)


def task_kind(head: HeadSpec, labels: LabelEvidence | None = None) -> str:
    """``binary``, ``multiclass`` or ``multilabel``: what the labels (else the head) say the task is."""
    if labels is not None and labels.encoding is LabelEncoding.MULTI_HOT:
        return "multilabel"
    if head.units == 1:
        return "binary"
    # Without labels, K independent sigmoids under binary cross-entropy mean multi-label: sigmoid
    # outputs, or logits that the loss passes through a sigmoid (from_logits=True).
    independent_outputs = head.activation == "sigmoid" or (head.activation == "linear" and head.from_logits)
    if (
        labels is None
        and independent_outputs
        and head.loss is not None
        and head.loss.kind is LossKind.BINARY_CE
    ):
        return "multilabel"
    return "multiclass"


def needed_accuracy(head: HeadSpec, labels: LabelEvidence | None = None) -> tuple[str, str]:
    """(Keras class, why) of the accuracy this task needs."""
    task = task_kind(head, labels)
    if task == "binary":
        return BINARY_ACCURACY, "one output unit: P(class 1) thresholded"
    if task == "multilabel":
        return BINARY_ACCURACY, "multi-label: each output thresholded on its own (1 - Hamming loss)"
    rank, width, _ = label_rank_and_width(head, labels)
    if rank < 2 or width == 1:
        return SPARSE_CATEGORICAL_ACCURACY, "single-label classes given as indices: argmax"
    return CATEGORICAL_ACCURACY, "single-label classes given one column each: argmax"
