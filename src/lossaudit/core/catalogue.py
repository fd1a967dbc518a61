"""The rule catalogue: every finding lossaudit can report, with its why, its math and its fix.

Codes by family: LA1xx head and loss, LA2xx labels against the head, LA3xx logits and
activations, LA4xx what ``metrics=['accuracy']`` resolves to, LA5xx what predictions and reported
numbers show, LA6xx data expectations, LA7xx the audit's own stages, LA8xx what a fit's history
shows (the Keras callback). ``lossaudit explain CODE`` prints an entry. Codes never change meaning.

Why one module of about 1400 lines: it is the one table of every rule, each check beside its entry
(code, name, severity, why, fix), so ``lossaudit rules``, ``lossaudit explain``, docs/rules.md,
every report format and the MLflow tags come from one place, and adding a rule touches one file
(docs/architecture.md, "Add a rule").
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from lossaudit.core.findings import (
    ALL_FAMILIES,
    AuditFacts,
    DataCheck,
    Hit,
    Rule,
    Severity,
)
from lossaudit.core.head import HeadFix, KerasFamily, LossKind
from lossaudit.core.labels import MAX_INFERRED_CLASSES, LabelEncoding, LabelEvidence, LabelProblem
from lossaudit.core.names import is_custom, nearest_known, unknown_name
from lossaudit.core.resolution import (
    ACCURACY_ALIASES,
    BINARY_ACCURACY,
    CATEGORICAL_ACCURACY,
    SPARSE_CATEGORICAL_ACCURACY,
    resolve_metrics,
    task_kind,
)

KERAS_LOSSES_DOC = "https://keras.io/api/losses/probabilistic_losses/"
ACCURACY_AT_BASELINE = 1e-3
"""An epoch's accuracy within this of the majority baseline (or below it) counts as at it (LA803)."""
KERAS_METRICS_DOC = "https://keras.io/api/metrics/accuracy_metrics/"
SEED_1UNIT_CCE = "https://stats.stackexchange.com/q/260505 (1-unit categorical cross-entropy)"
SEED_BCE_ACCURACY = "https://stackoverflow.com/q/41327601 (binary_crossentropy 'accuracy' on MNIST)"


def _loss_kind(facts: AuditFacts) -> LossKind | None:
    return facts.head.loss.kind if facts.head.loss is not None else None


def _multi_hot(facts: AuditFacts) -> bool:
    return facts.labels is not None and facts.labels.encoding is LabelEncoding.MULTI_HOT


def _single_label(facts: AuditFacts) -> bool:
    """Labels known to be single-label, or unknown (then the head is taken at its word)."""
    return not _multi_hot(facts)


def _shape_text(labels: LabelEvidence) -> str:
    """``[540, 10]``; for labels known from code rather than data, ``[n, 10]``."""
    if labels.origin is not None:
        return "[" + ", ".join(["n", *(str(s) for s in labels.shape[1:])]) + "]"
    return str(list(labels.shape))


def _origin(labels: LabelEvidence | None) -> str:
    """Where labels known from code come from, for a message."""
    return labels.origin if labels is not None and labels.origin else "rows may have several positives"


# --- LA1xx: head and loss -------------------------------------------------------------------


def _cce_on_single_unit(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    kind = _loss_kind(facts)
    if head.units != 1 or kind not in (LossKind.CATEGORICAL_CE, LossKind.SPARSE_CE):
        return
    name = head.loss.name if head.loss else ""
    # Whatever the activation: Keras normalises the single output over the last axis (p / p = 1),
    # or with logits (from_logits=True, or the logits Keras 3 caches on a softmax/sigmoid output on
    # the TensorFlow backend) takes a softmax over one logit, exp(z) / exp(z) = 1.
    constant = (
        "the reported loss is -log(1) = 0 at every step and says nothing about the labels; the "
        "model drifts to predicting one class"
    )
    if kind is LossKind.SPARSE_CE:
        message = (
            f"{name} on a 1-unit {head.activation} output: the only class index it can score is "
            f"0, and label 1 points past the output (an error or garbage loss). For label 0 "
            f"Keras normalises the single output to 1, so {constant}."
        )
    else:
        message = (
            f"{name} on a 1-unit {head.activation} output: L = -y*log(p) has no (1 - y)*log(1 - p) "
            f"term, so nothing penalises p = 1 on negatives. Keras normalises the single output "
            f"over the last axis (p / p = 1, or a softmax over one logit), so {constant}."
        )
    yield Hit(
        message,
        HeadFix(activation="sigmoid", loss="binary_crossentropy", from_logits=False),
        {"units": 1, "loss": name or None},
    )


def _softmax_on_single_unit(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    if head.units == 1 and "softmax" in head.activation_chain:
        yield Hit(
            "softmax over a single unit: exp(z) / exp(z) = 1.0 for every input; the model cannot "
            "learn and predicts class 1 always.",
            HeadFix(activation="sigmoid", loss="binary_crossentropy", from_logits=False),
            {"units": 1, "activation_chain": list(head.activation_chain)},
        )


def _bce_on_softmax_multiclass(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    if (
        _loss_kind(facts) is LossKind.BINARY_CE
        and head.activation == "softmax"
        and head.units > 2
        and _single_label(facts)
    ):
        categorical = facts.labels is None or facts.labels.is_dense
        yield Hit(
            f"binary_crossentropy on a {head.units}-way softmax scores each of the {head.units} "
            "outputs as an independent yes/no although softmax ties them to sum to 1; the loss "
            "is not the likelihood of the true class.",
            HeadFix(loss="categorical_crossentropy" if categorical else "sparse_categorical_crossentropy"),
            {"units": head.units},
        )


def _sigmoid_with_categorical_loss(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    kind = _loss_kind(facts)
    if (
        head.activation == "sigmoid"
        and head.units > 1
        and kind in (LossKind.CATEGORICAL_CE, LossKind.SPARSE_CE)
        and _single_label(facts)
    ):
        evidence: dict[str, object] = {"units": head.units}
        measured = ""
        sums = facts.outputs.row_sums if facts.outputs is not None else None
        if sums is not None:
            evidence["row_sum_min"], evidence["row_sum_max"] = sums
            measured = (
                f" Measured: the served outputs' rows sum to between {sums[0]:.3f} and {sums[1]:.3f}"
                + (
                    "; argmax accuracy is unharmed (the TensorFlow backend trains a softmax of the "
                    "logits), but every probability the model serves is wrong."
                    if facts.predictions is not None
                    else "."
                )
            )
        yield Hit(
            f"{head.units} independent sigmoids trained with {head.loss.name if head.loss else ''}: "
            "the loss scores a softmax of the logits (or the outputs divided by their sum), not "
            "the sigmoid outputs, so the 'probabilities' the model returns are not the ones it "
            "was trained to produce and do not sum to 1." + measured,
            HeadFix(activation="softmax"),
            evidence,
        )


def _sigmoid_bce_on_single_label(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    labels = facts.labels
    if (
        labels is None
        or not labels.is_valid
        # Index labels against K sigmoids are a shape mismatch first (LA203).
        or labels.encoding is not LabelEncoding.ONE_HOT
        or head.units <= 2
        or head.activation != "sigmoid"
        or _loss_kind(facts) is not LossKind.BINARY_CE
    ):
        return
    categorical = labels.is_dense
    yield Hit(
        f"{head.units} independent sigmoids with binary_crossentropy on single-label data "
        f"({labels.encoding.value} labels, one class per sample): each output is trained as its "
        "own yes/no, so the outputs do not sum to 1 and are not a distribution over the classes. "
        "Argmax still picks a class; log loss, Brier score and calibration need a distribution, "
        "so lossaudit scores this as single-label with the outputs renormalised to sum to 1.",
        HeadFix(
            activation="softmax",
            loss="categorical_crossentropy" if categorical else "sparse_categorical_crossentropy",
        ),
        {"units": head.units, "encoding": labels.encoding.value},
    )


def _unknown_names(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    # A model that was saved or loaded compiled with these names: Keras accepted them, so an
    # unknown one is a custom object or a metric's own name=, never a typo. Only heads a person
    # typed (flags, a spec file) can hold a name Keras would refuse.
    if head.from_model:
        return
    named: list[tuple[str, str]] = [("activation", a) for a in dict.fromkeys(head.activation_chain)]
    if head.loss is not None:
        named.append(("loss", head.loss.name))
    named.extend(("metric", m) for m in head.metrics)
    for kind, name in named:
        problem = unknown_name(kind, name)
        if problem is not None and not is_custom(name):
            suggestion = nearest_known(kind, name)
            yield Hit(
                f"{problem}: Keras refuses an unknown {kind} name at compile time, and the rules "
                f"that depend on the {kind} were judged as if it were none of the known ones.",
                None,
                {"kind": kind, "name": name, "suggestion": suggestion},
            )


def _no_loss(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    if head.loss is None and head.from_model:
        yield Hit(
            "the model carries no loss (it was saved uncompiled, or compiled without one): the "
            "rules on the loss, from_logits, label encoding against the loss and what 'accuracy' "
            "resolves to could not be checked. Only the output layer and the predictions were.",
            None,
            {"units": head.units, "activation": head.activation},
        )


def _single_label_head_on_multi_hot(facts: AuditFacts) -> Iterator[Hit]:
    if not _multi_hot(facts):
        return
    head = facts.head
    kind = _loss_kind(facts)
    if head.activation == "softmax" or kind in (LossKind.CATEGORICAL_CE, LossKind.SPARSE_CE):
        labels = facts.labels
        several = labels.details.get("rows_with_several_labels") if labels else None
        seen = f"{several} rows with several positives" if several is not None else _origin(labels)
        yield Hit(
            f"multi-hot labels ({seen}) on a head built for one "
            f"class per sample ({head.activation}, {head.loss.name if head.loss else 'no loss'}): "
            "softmax outputs sum to 1, so two true labels can never both get p > 0.5.",
            HeadFix(
                activation="sigmoid",
                loss="binary_crossentropy",
                from_logits=False,
                metrics=("binary_accuracy",),
            ),
            {"rows_with_several_labels": several},
        )


# --- LA2xx: labels against the head ---------------------------------------------------------


def _index_labels_with_categorical_loss(facts: AuditFacts) -> Iterator[Hit]:
    labels = facts.labels
    head = facts.head
    if (
        labels is not None
        and labels.is_sparse
        and head.units > 1
        and _loss_kind(facts) is LossKind.CATEGORICAL_CE
    ):
        yield Hit(
            f"labels are class indices (shape {_shape_text(labels)}) but the loss is "
            f"{head.loss.name if head.loss else ''}, which expects one-hot rows of width "
            f"{head.units}. Keras 3 refuses the shapes; older Keras broadcast them silently.",
            HeadFix(loss="sparse_categorical_crossentropy"),
            {"label_shape": list(labels.shape), "units": head.units},
        )


def _one_hot_labels_with_sparse_loss(facts: AuditFacts) -> Iterator[Hit]:
    labels = facts.labels
    if labels is not None and labels.is_dense and _loss_kind(facts) is LossKind.SPARSE_CE:
        yield Hit(
            f"labels are {labels.encoding.value} rows (shape {_shape_text(labels)}) but "
            "sparse_categorical_crossentropy expects one class index per sample.",
            HeadFix(loss="categorical_crossentropy"),
            {"label_shape": list(labels.shape), "encoding": labels.encoding.value},
        )


def _label_width_mismatch(facts: AuditFacts) -> Iterator[Hit]:
    labels = facts.labels
    head = facts.head
    if labels is None or not labels.shape:
        return
    if labels.is_dense and labels.width != head.units:
        yield Hit(
            f"labels have {labels.width} columns but the head has {head.units} output units.",
            HeadFix(units=labels.width),
            {"label_width": labels.width, "units": head.units},
        )
    elif labels.is_sparse and head.units > 1 and _loss_kind(facts) is LossKind.BINARY_CE:
        yield Hit(
            f"one label per sample (shape {_shape_text(labels)}) against {head.units} output "
            "units with binary_crossentropy. Keras 3 refuses the shapes ('must have the same "
            "rank' / 'same shape'); where older Keras runs it, the label column is broadcast "
            "across every output, so each unit is trained to predict the same 0/1 value.",
            HeadFix(units=1, activation="sigmoid")
            if labels.n_classes == 2
            else HeadFix(loss="sparse_categorical_crossentropy", activation="softmax"),
            {"label_shape": list(labels.shape), "units": head.units},
        )


def _index_out_of_range(facts: AuditFacts) -> bool:
    """Out-of-range class indices (one label per sample); out-of-range 0/1 columns are LA206's."""
    labels = facts.labels
    return labels is not None and labels.problem is LabelProblem.OUT_OF_RANGE and labels.width == 1


def _label_index_out_of_range(facts: AuditFacts) -> Iterator[Hit]:
    labels = facts.labels
    if labels is not None and _index_out_of_range(facts):
        head = facts.head
        fix = None
        if 1 < labels.n_classes <= MAX_INFERRED_CLASSES:
            # K index labels need K outputs under a sparse loss; a 1-unit sigmoid head becomes a
            # K-way softmax (K sigmoids would just broadcast the index column, LA203).
            sparse = head.units > 1 and _loss_kind(facts) is LossKind.SPARSE_CE
            fix = HeadFix(
                units=labels.n_classes,
                activation="softmax" if not sparse and head.activation == "sigmoid" else None,
                loss=None if sparse else "sparse_categorical_crossentropy",
            )
        yield Hit(
            f"{labels.reason}. Sparse losses then read past the last output "
            "(NaN or garbage loss); accuracy counts those samples as wrong.",
            fix,
            {"largest_index": labels.n_classes - 1, "units": head.units},
        )


def _binary_labels_not_01(facts: AuditFacts) -> Iterator[Hit]:
    labels = facts.labels
    if labels is not None and labels.problem is LabelProblem.NOT_BINARY:
        values = [int(v) if float(v).is_integer() else v for v in labels.distinct_values]
        yield Hit(
            f"binary labels take the values {values}, not {{0, 1}}: binary cross-entropy "
            "-y*log(p) - (1-y)*log(1-p) needs y in {0, 1}; with y = -1 or y = 2 the loss is "
            "unbounded below and BinaryAccuracy never counts a match.",
            None,
            {"values": values},
        )


def _invalid_labels(facts: AuditFacts) -> Iterator[Hit]:
    labels = facts.labels
    # LA204 and LA205 say more about these two; everything else invalid is reported here.
    handled = labels is not None and (labels.problem is LabelProblem.NOT_BINARY or _index_out_of_range(facts))
    if labels is not None and not labels.is_valid and not handled:
        yield Hit(
            f"labels are not a valid classification target: {labels.reason}.",
            None,
            {"problem": labels.problem.value if labels.problem else None},
        )


# --- LA3xx: logits and activations ----------------------------------------------------------


def _from_logits_on_probabilities(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    if head.from_logits and head.activation in ("softmax", "sigmoid"):
        yield Hit(
            f"from_logits=True but the output already went through {head.activation}: the loss "
            f"applies {head.activation} a second time, so it sees {head.activation}("
            f"{head.activation}(z)), whose outputs are squeezed towards the middle; gradients "
            "shrink and the loss cannot reach its minimum.",
            HeadFix(from_logits=False),
            {"activation": head.activation},
        )


def _probabilities_expected_from_linear(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    if (
        head.loss is not None
        and head.loss.is_cross_entropy
        and not head.from_logits
        and head.activation == "linear"
    ):
        yield Hit(
            f"a linear output with {head.loss.name}(from_logits=False): the loss treats raw "
            "scores as probabilities, clipping them into [1e-7, 1 - 1e-7], so most gradients are "
            "zero and the model does not learn.",
            HeadFix(from_logits=True),
            {"activation": "linear", "from_logits": False},
        )


def _double_softmax(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    if head.softmax_count >= 2:
        k = head.units
        ceiling = math.e / (math.e + k - 1) if k > 1 else 1.0
        yield Hit(
            f"softmax is applied {head.softmax_count} times: the second softmax sees values in "
            f"[0, 1], so no output can exceed e/(e + K - 1) = {ceiling:.3f} for K = {k}, and the "
            f"cross-entropy cannot fall below -log({ceiling:.3f}) = "
            f"{-math.log(ceiling):.3f}.",
            HeadFix(activation="softmax"),
            {"activation_chain": list(head.activation_chain)},
        )


def _non_probability_activation(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    if head.loss is None or not head.loss.is_cross_entropy:
        return
    if head.activation in ("softmax", "sigmoid", "linear"):
        return
    if unknown_name("activation", head.activation) is not None:
        return  # a typo (LA108) or a custom activation: lossaudit cannot tell what it outputs
    target = "sigmoid" if head.units == 1 or _multi_hot(facts) else "softmax"
    if head.from_logits:
        why = (
            f"{head.activation} feeds logits to the loss (from_logits=True) but bounds them "
            f"({head.activation} cannot output the full real line), so some classes can never "
            "win or lose confidently."
        )
    else:
        why = (
            f"{head.activation} outputs are not probabilities: they need not lie in [0, 1] or "
            "sum to 1, and the loss clips and rescales them into something that is not a "
            "likelihood."
        )
    yield Hit(why, HeadFix(activation=target, from_logits=False), {"activation": head.activation})


def _regression_loss_on_classifier(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    if (
        head.loss is not None
        and head.loss.kind in (LossKind.REGRESSION, LossKind.HINGE)
        and (head.activation in ("softmax", "sigmoid") or facts.labels is not None)
    ):
        independent = head.units == 1 or _multi_hot(facts)
        # A cross-entropy needs probabilities: give a linear/relu head the matching activation too,
        # or the fix would trade this finding for LA302/LA304.
        activation = None if head.outputs_probabilities else ("sigmoid" if independent else "softmax")
        # MSE/MAE on softmax/sigmoid class outputs is what answers to real questions call the bug;
        # a hinge loss (an SVM-style margin on scores) or a regression loss on unbounded scores is
        # right in some settings (ordinal targets, margins).
        right_somewhere = head.loss.kind is LossKind.HINGE or not head.outputs_probabilities
        yield Hit(
            f"{head.loss.name} on a classification head: it trains, but its gradient "
            "vanishes as p saturates and it is not a proper likelihood, so probabilities are "
            "poorly calibrated."
            + (
                ""
                if right_somewhere
                else f" On {head.activation} outputs fed class labels this is the bug: use a cross-entropy."
            ),
            HeadFix(
                activation=activation,
                loss="binary_crossentropy" if independent else "categorical_crossentropy",
                from_logits=False,
            ),
            {"loss": head.loss.name},
            Severity.INFO if right_somewhere else None,
        )


def _outputs_not_probabilities(facts: AuditFacts) -> Iterator[Hit]:
    outputs = facts.outputs
    if outputs is not None and outputs.not_probabilities:
        yield Hit(
            f"{outputs.not_probabilities}: these are scores or logits, not probabilities. No "
            "metric is computed on them as probabilities (log loss, Brier score and ROC-AUC are "
            "skipped); thresholds at 0.5 mean nothing on them.",
            None,
            {"problem": outputs.not_probabilities},
        )


# --- LA4xx: what 'accuracy' resolves to ------------------------------------------------------


def _accuracy_resolutions(
    facts: AuditFacts, *, explicit: bool = False
) -> Iterator[tuple[str, str, float | None]]:
    """(declared, Keras class, threshold) of each 'accuracy' alias; with ``explicit``, also of the
    metrics named explicitly (``binary_accuracy`` builds the same BinaryAccuracy(threshold=0.5))."""
    for res in resolve_metrics(facts.head, facts.labels):
        if res.resolved is None:
            continue
        if res.declared in ACCURACY_ALIASES or explicit:
            yield res.declared, res.resolved, res.threshold


def _measured_effect(
    facts: AuditFacts, predicted_keys: frozenset[str]
) -> tuple[str, Severity | None, dict[str, object]]:
    """(text, severity, evidence) of what the reported accuracy shows about a metric rule.

    A reported accuracy that one of ``predicted_keys`` (the definition the rule says Keras used)
    reproduces, and that differs from the task's definition, is the rule's harm measured: the
    finding becomes an error. A reported accuracy equal to the task's definition shows no effect on
    this data; that is said, and the severity stays.
    """
    from lossaudit.core.compare import ACCURACY_NAMES, base_metric_name

    for comp in facts.comparisons:
        if base_metric_name(comp.metric) not in ACCURACY_NAMES or comp.correct is None:
            continue
        matched = {d.key for d in comp.matches}
        if comp.status == "wrong_definition" and matched & predicted_keys:
            diff = comp.difference or 0.0
            return (
                f" Measured: the reported {comp.metric} {comp.reported:.4f} ({comp.source}) is this "
                f"definition; {comp.correct.label} is {comp.correct.value:.4f} ({diff:+.4f}).",
                Severity.ERROR,
                {"measured_reported": comp.reported, "measured_correct": comp.correct.value},
            )
        if comp.status == "agrees":
            return (
                f" Measured: the reported {comp.metric} equals {comp.correct.label} on this data "
                f"({comp.correct.value:.4f}): no effect here, though the definition is still wrong.",
                None,
                {"measured_effect": 0.0},
            )
    return "", None, {}


def _legacy_binary_accuracy(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    if head.units <= 1 or task_kind(head, facts.labels) != "multiclass":
        return
    for declared, resolved, _ in _accuracy_resolutions(facts):
        if resolved == BINARY_ACCURACY:
            k = head.units
            measured, _, extra = _measured_effect(facts, frozenset({"elementwise_binary_0.5"}))
            yield Hit(
                f"'{declared}' with binary_crossentropy resolves to binary_accuracy in this Keras: "
                f"it thresholds each of the {k} outputs at 0.5 and averages over all n*{k} "
                f"entries, so even a model that always outputs zeros scores 1 - 1/{k} = "
                f"{1 - 1 / k:.3f}. The task needs argmax (categorical) accuracy." + measured,
                HeadFix(metrics=("categorical_accuracy",)),
                {"declared": declared, "resolved": resolved, "floor": round(1 - 1 / k, 6), **extra},
            )


def _argmax_accuracy_on_multi_label(facts: AuditFacts) -> Iterator[Hit]:
    if task_kind(facts.head, facts.labels) != "multilabel":
        return
    for declared, resolved, _ in _accuracy_resolutions(facts):
        if resolved in (CATEGORICAL_ACCURACY, SPARSE_CATEGORICAL_ACCURACY):
            measured, severity, extra = _measured_effect(facts, frozenset({"argmax"}))
            yield Hit(
                f"'{declared}' on multi-label targets resolves to {resolved}: it asks whether the "
                "single highest output is one of the positives, which is neither subset accuracy "
                "nor 1 - Hamming loss." + measured,
                HeadFix(metrics=("binary_accuracy",)),
                {"declared": declared, "resolved": resolved, **extra},
                severity,
            )


def _binary_accuracy_threshold_on_logits(facts: AuditFacts) -> Iterator[Hit]:
    head = facts.head
    if head.outputs_probabilities:
        return
    if head.activation != "linear":
        return
    for declared, resolved, threshold in _accuracy_resolutions(facts, explicit=True):
        if resolved == BINARY_ACCURACY and threshold is not None:
            measured, severity, extra = _measured_effect(
                facts, frozenset({"binary_0.5", "elementwise_binary_0.5"})
            )
            yield Hit(
                f"'{declared}' resolves to BinaryAccuracy(threshold={threshold}) but the outputs "
                "are logits: sigmoid(z) > 0.5 means z > 0, so the threshold should be 0.0. "
                f"Logits between 0 and {threshold} are counted as the wrong class." + measured,
                None,  # the fix is a metric object (threshold=0.0), not a head change
                {"declared": declared, "resolved": resolved, "threshold": threshold, **extra},
                severity,
            )


# --- LA5xx: predictions and reported numbers -------------------------------------------------


def _constant_predictions(facts: AuditFacts) -> Iterator[Hit]:
    preds = facts.predictions
    if preds is None or preds.n_samples < 2 or preds.task == "multilabel":
        return
    if preds.n_classes_predicted == 1:
        cls = next(i for i, c in enumerate(preds.predicted_counts) if c > 0)
        acc = "" if preds.accuracy is None else f"; accuracy {preds.accuracy:.4f}"
        yield Hit(
            f"the model predicts class {cls} for all {preds.n_samples} samples{acc}: it has "
            "learned nothing about the input.",
            None,
            {"predicted_class": cls, "n_samples": preds.n_samples, "accuracy": preds.accuracy},
        )


def _not_better_than_majority(facts: AuditFacts) -> Iterator[Hit]:
    preds = facts.predictions
    if preds is None or preds.accuracy is None or preds.majority_baseline is None:
        return
    if preds.n_classes_predicted <= 1:
        return  # LA501 already says more
    if preds.accuracy <= preds.majority_baseline + 1e-12:
        yield Hit(
            f"accuracy {preds.accuracy:.4f} is at or below the majority-class baseline "
            f"{preds.majority_baseline:.4f}: always predicting the most frequent class would do "
            "as well.",
            None,
            {"accuracy": preds.accuracy, "majority_baseline": preds.majority_baseline},
        )


def _non_finite_predictions(facts: AuditFacts) -> Iterator[Hit]:
    outputs = facts.outputs
    if outputs is not None and outputs.non_finite_rows:
        yield Hit(
            f"{outputs.non_finite_rows} of {outputs.n_rows} prediction rows contain NaN or an "
            "infinity: the model diverged (exploding loss or weights), and no metric can be "
            "computed on its outputs.",
            None,
            {"non_finite_rows": outputs.non_finite_rows, "n_rows": outputs.n_rows},
        )


def _stage_failed(facts: AuditFacts) -> Iterator[Hit]:
    for failure in facts.failed_stages:
        yield Hit(
            f"stage {failure.stage} failed: {failure.reason}. Not checked: {failure.unchecked}. "
            "Everything found before it is in this report.",
            None,
            {"stage": failure.stage, "reason": failure.reason, "unchecked": failure.unchecked},
        )


# --- LA8xx: what a fit's history shows (lossaudit.keras.AuditCallback) ----------------------


def _epochs_text(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def _non_finite_loss(facts: AuditFacts) -> Iterator[Hit]:
    training = facts.training
    if training is None:
        return
    for epoch, loss in enumerate(training.losses, start=1):
        if not math.isfinite(loss):
            yield Hit(
                f"the training loss read {loss} at the end of epoch {epoch}: the fit diverged (or "
                "the data holds NaN), and every weight update from here on is NaN too.",
                None,
                {"epoch": epoch, "loss": str(loss)},
            )
            return


def _constant_loss(facts: AuditFacts) -> Iterator[Hit]:
    training = facts.training
    if training is None:
        return
    window = max(2, training.patience)
    last = training.losses[-window:]
    if len(last) < window or not all(math.isfinite(v) for v in last):
        return
    if all(v == last[0] for v in last):
        yield Hit(
            f"the training loss read exactly {last[0]!r} in each of the last {_epochs_text(window)}: "
            "it does not measure how the model fits the labels (a 1-unit categorical cross-entropy "
            "reads 0.0 whatever the model predicts), or nothing is training.",
            None,
            {"loss": last[0], "epochs": window},
        )


def _accuracy_at_majority(facts: AuditFacts) -> Iterator[Hit]:
    training = facts.training
    if training is None or training.majority_baseline is None or training.accuracy_name is None:
        return
    window = max(1, training.patience)
    last = training.accuracies[-window:]
    if len(last) < window or not all(math.isfinite(v) for v in last):
        return
    baseline = training.majority_baseline
    if all(v <= baseline + ACCURACY_AT_BASELINE for v in last):
        yield Hit(
            f"{training.accuracy_name} stayed at or below the majority-class baseline {baseline:.4f} "
            f"for the last {_epochs_text(window)} ({', '.join(f'{v:.4f}' for v in last)}): the "
            "model does no better than always predicting the most frequent class.",
            None,
            {"metric": training.accuracy_name, "values": list(last), "majority_baseline": baseline},
        )


def _reported_metric_wrong_definition(facts: AuditFacts) -> Iterator[Hit]:
    for comp in facts.comparisons:
        if comp.status == "wrong_definition":
            yield Hit(comp.explanation, None, comp.evidence())


def _reported_metric_unexplained(facts: AuditFacts) -> Iterator[Hit]:
    for comp in facts.comparisons:
        if comp.status in ("unexplained", "inconsistent"):
            # Only where every definition a framework may use is enumerated (the accuracy family)
            # does "no definition reproduces it" prove the number wrong; elsewhere it is a doubt.
            doubt = comp.status == "unexplained" and not comp.definitions_known
            yield Hit(comp.explanation, None, comp.evidence(), Severity.WARNING if doubt else None)


def _keras_built_other_metric(facts: AuditFacts) -> Iterator[Hit]:
    if facts.built_metrics is None:
        return
    predicted = {r.declared: r.resolved for r in resolve_metrics(facts.head, facts.labels)}
    for declared, built in facts.built_metrics:
        expected = predicted.get(declared)
        if expected is not None and expected != built:
            yield Hit(
                f"for '{declared}' lossaudit predicted {expected} but Keras built {built}; the "
                "rules' model of this Keras version is wrong here, so trust the built class.",
                None,
                {"declared": declared, "predicted": expected, "built": built},
            )


def _metric_below_threshold(facts: AuditFacts) -> Iterator[Hit]:
    for t in facts.thresholds:
        if t.passed:
            continue
        if t.value is None:
            message = (
                f"threshold {t.metric} >= {t.minimum:g} set, but {t.metric} is not computed for this task"
            )
        else:
            message = f"recomputed {t.metric} {t.value:.4f} is below the threshold {t.minimum:g}"
        yield Hit(message, None, {"metric": t.metric, "minimum": t.minimum, "value": t.value})


# --- LA6xx: data expectations ----------------------------------------------------------------


def _failed_checks(facts: AuditFacts, *, critical: bool) -> Iterator[DataCheck]:
    for check in facts.data_checks:
        if not check.success and (check.severity == "error") == critical:
            yield check


def _data_expectation_failed(facts: AuditFacts) -> Iterator[Hit]:
    """Critical expectations (severity error) that failed."""
    yield from _data_expectation_hits(_failed_checks(facts, critical=True))


def _data_expectation_warning(facts: AuditFacts) -> Iterator[Hit]:
    yield from _data_expectation_hits(_failed_checks(facts, critical=False))


def _data_expectation_hits(checks: Iterator[DataCheck]) -> Iterator[Hit]:
    for check in checks:
        where = f" (column {check.column})" if check.column else ""
        detail = f": {check.detail}" if check.detail else ""
        yield Hit(
            f"expectation failed{where}: {check.name}{detail}",
            None,
            {"expectation": check.name, "column": check.column, "severity": check.severity},
        )


RULES: tuple[Rule, ...] = (
    Rule(
        code="LA101",
        name="categorical-crossentropy-on-one-unit",
        severity=Severity.ERROR,
        title="categorical cross-entropy on a 1-unit output",
        why=(
            "Categorical cross-entropy is L = -sum_k y_k log p_k. With one output unit the sum has "
            "one term, L = -y log p: the (1 - y) log(1 - p) half of binary cross-entropy is gone, "
            "so nothing penalises p = 1 on negatives, and L is minimised by p = 1 for every "
            "input.\n\n"
            "In Keras it is worse, whatever the activation: categorical_crossentropy first "
            "normalises the output over the last axis. With one unit p / p = 1 (or, with logits, "
            "a softmax over one logit, exp(z) / exp(z) = 1; Keras 3 on TensorFlow also takes the "
            "logits cached on a sigmoid output), so the loss Keras reports is L = -y log 1 = 0 "
            "exactly, at every step: the training curve says nothing. What the weights do depends "
            "on the backend. Keras 3 on TensorFlow differentiates through the cached logit, so the "
            "weights still move, with a gradient that has nothing to do with the likelihood of the "
            "labels; after a few epochs the model predicts one class for every input (the seeds' "
            "'26% accuracy, predicting only class 0'; lossaudit's demo measures loss 0.0 for 10 "
            "epochs and constant predictions on breast_cancer). Keras only emits a SyntaxWarning "
            "(keras PR #17330).\n\n"
            "sparse_categorical_crossentropy on one unit fails the same way: its only valid "
            "class index is 0, label 1 points past the output, and label 0 scores -log 1 = 0."
        ),
        fix=(
            "# one unit: a Bernoulli output\n"
            "model.add(keras.layers.Dense(1, activation='sigmoid'))\n"
            "model.compile(loss='binary_crossentropy', metrics=['binary_accuracy'])\n"
            "# or two units with one-hot labels\n"
            "model.add(keras.layers.Dense(2, activation='softmax'))\n"
            "model.compile(loss='categorical_crossentropy', metrics=['categorical_accuracy'])"
        ),
        families=ALL_FAMILIES,
        check=_cce_on_single_unit,
        references=(SEED_1UNIT_CCE, KERAS_LOSSES_DOC),
    ),
    Rule(
        code="LA102",
        name="softmax-on-one-unit",
        severity=Severity.ERROR,
        title="softmax on a 1-unit output",
        why=(
            "softmax(z)_k = exp(z_k) / sum_j exp(z_j). With one unit this is exp(z) / exp(z) = 1.0 "
            "for every input, whatever the weights: the output is constant, its gradient is zero, "
            "and accuracy equals the share of positive labels."
        ),
        fix=(
            "model.add(keras.layers.Dense(1, activation='sigmoid'))\n"
            "model.compile(loss='binary_crossentropy', metrics=['binary_accuracy'])"
        ),
        families=ALL_FAMILIES,
        check=_softmax_on_single_unit,
        references=(KERAS_LOSSES_DOC,),
    ),
    Rule(
        code="LA103",
        name="binary-crossentropy-on-softmax",
        severity=Severity.WARNING,
        title="binary cross-entropy on a softmax head over K > 2 single-label classes",
        why=(
            "binary_crossentropy averages -y_k log p_k - (1 - y_k) log(1 - p_k) over the K outputs, "
            "as if each class were an independent yes/no. A softmax ties the outputs together "
            "(sum_k p_k = 1), so this is not the likelihood of the true class: the loss is scaled "
            "by 1/K and rewards pushing the K - 1 wrong outputs to 0 as much as raising the right "
            "one. It trains, but the loss is not the one the model's probabilities imply, and in "
            "Keras <= 2.3 'accuracy' then silently became binary_accuracy (see LA401).\n\n"
            "Keras 3 on TensorFlow goes further: binary_crossentropy takes the pre-softmax "
            "values z cached on the output and computes sigmoid cross-entropy on them, so the "
            "model is trained as K independent sigmoids of z while it outputs softmax(z)."
        ),
        fix=(
            "model.compile(loss='categorical_crossentropy',  # one-hot labels\n"
            "              metrics=['categorical_accuracy'])\n"
            "# or loss='sparse_categorical_crossentropy' with integer labels"
        ),
        families=ALL_FAMILIES,
        check=_bce_on_softmax_multiclass,
        references=(SEED_BCE_ACCURACY, KERAS_LOSSES_DOC),
    ),
    Rule(
        code="LA104",
        name="sigmoid-with-categorical-loss",
        severity=Severity.ERROR,
        title="a sigmoid head with a categorical loss on single-label data",
        why=(
            "Sigmoid outputs are K independent probabilities; they do not sum to 1. Categorical "
            "cross-entropy -sum_k y_k log p_k assumes a distribution over classes. Keras 3 on "
            "TensorFlow takes the logits z cached on the sigmoid output and computes "
            "softmax(z) cross-entropy; other backends and older Keras divide the sigmoid outputs "
            "by their sum. Either way the model is trained on a distribution it never outputs: "
            "the sigmoid outputs, which users read as class probabilities, are not.\n\n"
            "Why an error: answers to the real questions with this head call it the bug. On the "
            "TensorFlow backend argmax accuracy can come out unharmed (the loss trains softmax(z), "
            "and argmax of sigmoid(z) is argmax of z); the finding then shows the measured row "
            "sums of the served outputs, and stays an error, because every probability the model "
            "serves (to a threshold, a calibration, a log loss) is wrong."
        ),
        fix="model.add(keras.layers.Dense(K, activation='softmax'))",
        families=ALL_FAMILIES,
        check=_sigmoid_with_categorical_loss,
        references=(KERAS_LOSSES_DOC,),
    ),
    Rule(
        code="LA105",
        name="single-label-head-on-multi-hot",
        severity=Severity.ERROR,
        title="a softmax head or categorical loss on multi-hot (multi-label) labels",
        why=(
            "Multi-hot labels say a sample can belong to several classes. A softmax makes the "
            "outputs compete (sum_k p_k = 1): with two true labels the best it can do is 0.5 each, "
            "so thresholding at 0.5 never recovers both, and categorical cross-entropy on a row "
            "with m positives, -sum_k y_k log p_k, is minimised at p_k = 1/m, not 1."
        ),
        fix=(
            "model.add(keras.layers.Dense(K, activation='sigmoid'))\n"
            "model.compile(loss='binary_crossentropy',\n"
            "              metrics=[keras.metrics.BinaryAccuracy(), keras.metrics.AUC(multi_label=True)])"
        ),
        families=ALL_FAMILIES,
        check=_single_label_head_on_multi_hot,
        references=(KERAS_LOSSES_DOC,),
    ),
    Rule(
        code="LA106",
        name="independent-sigmoids-on-single-label",
        severity=Severity.WARNING,
        title="K > 2 sigmoids with binary cross-entropy on single-label data",
        why=(
            "Each sample belongs to exactly one of K > 2 classes (one-hot or index labels), but "
            "the head is K independent sigmoids trained with binary_crossentropy, "
            "-sum_k [y_k log p_k + (1 - y_k) log(1 - p_k)] / K. Nothing ties the outputs together: "
            "they need not sum to 1, two classes can both score 0.9, and p_k is not P(class k). "
            "Argmax still picks a class, so accuracy is usually fine; log loss, Brier score and "
            "calibration are not. lossaudit scores such a model as single-label and renormalises "
            "the outputs to sum to 1 for the probability metrics, and says so.\n\n"
            "A warning: this head trains and can rank well; it is only wrong as soon as its outputs "
            "are read as class probabilities."
        ),
        fix=(
            "model.add(keras.layers.Dense(K, activation='softmax'))\n"
            "model.compile(loss='categorical_crossentropy',  # or sparse_ with indices\n"
            "              metrics=['categorical_accuracy'])"
        ),
        families=ALL_FAMILIES,
        check=_sigmoid_bce_on_single_label,
        references=(KERAS_LOSSES_DOC,),
        stage="labels",
    ),
    Rule(
        code="LA107",
        name="model-without-loss",
        severity=Severity.WARNING,
        title="the model carries no loss: the loss rules could not be checked",
        why=(
            "A model saved before compile (or compiled without a loss) keeps its layers but no "
            "loss, from_logits or metrics. Every rule that pairs the loss with the output layer "
            "or the labels (LA101, LA103, LA104, LA201, LA202, LA3xx, LA4xx) needs them: "
            "lossaudit cannot say the head is right, only that nothing it could see is wrong. "
            "Whoever evaluates this model compiles it anew, and that compile is what to check."
        ),
        fix=(
            "model.compile(loss=..., metrics=[...])  # before model.save(...)\n"
            "# or: lossaudit check --units K --activation ... --loss ... for the compile you use"
        ),
        families=ALL_FAMILIES,
        check=_no_loss,
        references=(KERAS_LOSSES_DOC,),
    ),
    Rule(
        code="LA108",
        name="unknown-name",
        severity=Severity.ERROR,
        title="an activation, loss or metric name Keras does not know",
        why=(
            "Keras resolves string identifiers at compile time and refuses the ones it does not "
            "know ('Could not interpret activation/loss identifier'). A head given by flags or a "
            "spec file with such a name is a typo: the rules would judge a head that cannot "
            "exist (an unknown activation reads as a non-probability one, an unknown loss as "
            "no known kind), so lossaudit names the nearest known name instead. Names read from "
            "a saved or live model are never flagged: Keras accepted them, so they are custom "
            "objects."
        ),
        fix="--activation softmax  # the nearest known name, as the finding says",
        families=ALL_FAMILIES,
        check=_unknown_names,
        references=("https://keras.io/api/layers/activations/", KERAS_LOSSES_DOC),
    ),
    Rule(
        code="LA201",
        name="index-labels-with-categorical-loss",
        severity=Severity.ERROR,
        title="index labels with categorical_crossentropy",
        why=(
            "categorical_crossentropy computes -sum_k y_k log p_k and needs y as one-hot rows of "
            "width K. Integer class indices have shape (n,) or (n, 1): Keras 3 raises 'must have "
            "the same rank'; older Keras broadcast a (n, 1) column across the K outputs, which "
            "trains on nonsense."
        ),
        fix=(
            "model.compile(loss='sparse_categorical_crossentropy', ...)\n"
            "# or: y = keras.utils.to_categorical(y, num_classes=K)"
        ),
        families=ALL_FAMILIES,
        check=_index_labels_with_categorical_loss,
        references=(KERAS_LOSSES_DOC,),
        stage="labels",
    ),
    Rule(
        code="LA202",
        name="one-hot-labels-with-sparse-loss",
        severity=Severity.ERROR,
        title="one-hot labels with sparse_categorical_crossentropy",
        why=(
            "sparse_categorical_crossentropy computes -log p_{y} with y an integer index. Given "
            "one-hot rows, Keras 3 raises a rank error; where shapes happen to broadcast, each "
            "0/1 entry is read as a class index (0 or 1), so the loss only ever looks at the "
            "first two outputs."
        ),
        fix=("model.compile(loss='categorical_crossentropy', ...)\n# or: y = y.argmax(axis=1)"),
        families=ALL_FAMILIES,
        check=_one_hot_labels_with_sparse_loss,
        references=(KERAS_LOSSES_DOC,),
        stage="labels",
    ),
    Rule(
        code="LA203",
        name="label-width-mismatch",
        severity=Severity.ERROR,
        title="label width does not match the output units",
        why=(
            "The loss pairs label column k with output unit k. When the widths differ, Keras "
            "either refuses the shapes or broadcasts one over the other: a (n, 1) label column "
            "against K sigmoid outputs trains every unit on the same 0/1 target."
        ),
        fix=("model.add(keras.layers.Dense(y.shape[1], activation=...))  # one unit per label column"),
        families=ALL_FAMILIES,
        check=_label_width_mismatch,
        references=(KERAS_LOSSES_DOC,),
        stage="labels",
    ),
    Rule(
        code="LA204",
        name="label-index-out-of-range",
        severity=Severity.ERROR,
        title="largest label index does not fit the output units",
        why=(
            "With K output units the valid class indices are 0..K-1 (a 1-unit head takes 0/1). "
            "An index >= K has no output to be scored against: sparse cross-entropy gathers "
            "outside the output (NaN or garbage on CPU, an error on some backends) and Keras "
            "never warns."
        ),
        fix=(
            "K = int(y.max()) + 1\n"
            "model.add(keras.layers.Dense(K, activation='softmax'))\n"
            "# or re-encode labels: y = np.searchsorted(np.unique(y), y)"
        ),
        families=ALL_FAMILIES,
        check=_label_index_out_of_range,
        references=(KERAS_LOSSES_DOC,),
        stage="labels",
    ),
    Rule(
        code="LA205",
        name="binary-labels-not-zero-one",
        severity=Severity.ERROR,
        title="binary labels not in {0, 1}",
        why=(
            "Binary cross-entropy -y log p - (1 - y) log(1 - p) is a likelihood only for y in "
            "{0, 1}. With y = -1 (SVM-style labels) or y in {1, 2} the loss is unbounded below "
            "and is minimised by pushing p to an edge for every sample; BinaryAccuracy compares "
            "y with a 0/1 prediction and never counts -1 or 2 as right."
        ),
        fix="y = (y == positive_value).astype('float32')  # e.g. positive_value = 1 for {-1, 1}",
        families=ALL_FAMILIES,
        check=_binary_labels_not_01,
        references=(KERAS_LOSSES_DOC,),
        stage="labels",
    ),
    Rule(
        code="LA206",
        name="invalid-labels",
        severity=Severity.ERROR,
        title="labels are not a valid classification target",
        why=(
            "Labels must be class indices 0..K-1, 0/1 values, one-hot or multi-hot 0/1 rows, or "
            "soft rows that sum to 1. Negative values, fractional indices or fractional rows "
            "that are not distributions make every cross-entropy and accuracy meaningless."
        ),
        fix=(
            "classes, y = np.unique(y_raw, return_inverse=True)  # indices 0..K-1\n"
            "# or one-hot: keras.utils.to_categorical(y, num_classes=len(classes))"
        ),
        families=ALL_FAMILIES,
        check=_invalid_labels,
        references=(
            "https://scikit-learn.org/stable/modules/generated/sklearn.utils.multiclass.type_of_target.html",
        ),
        stage="labels",
    ),
    Rule(
        code="LA301",
        name="from-logits-on-probabilities",
        severity=Severity.WARNING,
        title="from_logits=True after a softmax or sigmoid",
        why=(
            "from_logits=True tells the loss that outputs are logits z and to apply softmax or "
            "sigmoid itself. After a softmax/sigmoid layer the loss computes softmax(p) with p "
            "already in [0, 1]: its outputs are squeezed towards 1/K, gradients shrink by roughly "
            "the derivative of the second squashing, and the loss cannot approach 0.\n\n"
            "Only on the TensorFlow backend does Keras notice: it warns and uses the logits it "
            "cached on the softmax/sigmoid output, so training happens to be right there. On JAX "
            "or PyTorch, or when the squashing is not a Keras activation, the loss squashes "
            "twice, silently."
        ),
        fix=(
            "keras.losses.CategoricalCrossentropy(from_logits=False)  # keep the softmax\n"
            "# or drop the activation: Dense(K) + from_logits=True"
        ),
        families=ALL_FAMILIES,
        check=_from_logits_on_probabilities,
        references=(KERAS_LOSSES_DOC,),
    ),
    Rule(
        code="LA302",
        name="probabilities-expected-from-linear",
        severity=Severity.ERROR,
        title="from_logits=False on a linear head",
        why=(
            "With from_logits=False the loss takes outputs as probabilities and clips them to "
            "[eps, 1 - eps] (eps = 1e-7) before log. A linear head outputs unbounded logits: every "
            "logit beyond the clip range gets zero gradient, and a negative logit is read as "
            "probability eps. Training stalls (Keras 3: 0.074 accuracy on 10 digits) with no "
            "warning."
        ),
        fix=(
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True)\n"
            "# or add the activation: Dense(K, activation='softmax')"
        ),
        families=ALL_FAMILIES,
        check=_probabilities_expected_from_linear,
        references=(KERAS_LOSSES_DOC,),
    ),
    Rule(
        code="LA303",
        name="double-softmax",
        severity=Severity.ERROR,
        title="softmax applied twice",
        why=(
            "A Dense(activation='softmax') followed by a Softmax/Activation('softmax') layer "
            "applies softmax to probabilities in [0, 1]. The second softmax can output at most "
            "e / (e + K - 1) for any class (0.232 for K = 10), so the cross-entropy has a floor "
            "of -log(e / (e + K - 1)) and gradients are damped: the model learns slowly and its "
            "probabilities are meaningless."
        ),
        fix="keras.layers.Dense(K)  # linear\nkeras.layers.Softmax()  # exactly one softmax",
        families=ALL_FAMILIES,
        check=_double_softmax,
        references=(KERAS_LOSSES_DOC,),
    ),
    Rule(
        code="LA304",
        name="non-probability-activation",
        severity=Severity.ERROR,
        title="relu or another non-probability activation feeding a cross-entropy",
        why=(
            "Cross-entropy needs probabilities (softmax, sigmoid) or, with from_logits=True, "
            "unbounded logits (linear). relu, tanh, softplus and friends give neither: relu "
            "outputs in [0, inf) are clipped to [eps, 1 - eps] and any negative pre-activation is "
            "stuck at p = eps with zero gradient; as logits, relu can never express 'less likely "
            "than the others'."
        ),
        fix="keras.layers.Dense(K, activation='softmax')  # or 'sigmoid' for 1 unit / multi-label",
        families=ALL_FAMILIES,
        check=_non_probability_activation,
        references=(KERAS_LOSSES_DOC,),
    ),
    Rule(
        code="LA305",
        name="regression-loss-on-classifier",
        severity=Severity.ERROR,
        title="MSE/MAE (or hinge) on a classification head",
        why=(
            "Mean squared error (p - y)^2 on a sigmoid/softmax output has gradient "
            "2(p - y) p(1 - p), which vanishes when p saturates at the wrong end; MAE is flat "
            "almost everywhere. Both train, slowly, and do not yield calibrated probabilities.\n\n"
            "Severity: an error on a softmax or sigmoid head fed class labels (what answers to "
            "real questions call the bug); info for a hinge loss or a regression loss on unbounded "
            "scores, which are right in some settings (margins, ordinal targets)."
        ),
        fix="model.compile(loss='binary_crossentropy' or 'categorical_crossentropy', ...)",
        families=ALL_FAMILIES,
        check=_regression_loss_on_classifier,
        references=(KERAS_LOSSES_DOC,),
    ),
    Rule(
        code="LA306",
        name="outputs-not-probabilities",
        severity=Severity.ERROR,
        title="outputs outside [0, 1] where probabilities are expected",
        why=(
            "A softmax or sigmoid head outputs probabilities in [0, 1]. Outputs outside that range "
            "are scores or logits (the predictions were saved before the activation, or the head "
            "is not what its config says, or a predictions file holds logits without "
            "--from-logits). Reading them as probabilities makes log loss, Brier score, "
            "thresholds at 0.5 and calibration meaningless, so lossaudit computes none of those on "
            "them."
        ),
        fix=(
            "lossaudit compare ... --from-logits  # the predictions are logits\n"
            "# or export model.predict(x) after the softmax/sigmoid"
        ),
        families=ALL_FAMILIES,
        check=_outputs_not_probabilities,
        stage="metrics",
    ),
    Rule(
        code="LA401",
        name="legacy-binary-accuracy-on-multiclass",
        severity=Severity.ERROR,
        title="'accuracy' resolves to elementwise binary accuracy over K > 1 classes",
        why=(
            "Keras <= 2.3, tf.keras <= 2.1 and TF1 graph mode pick the accuracy function from the "
            "loss: with binary_crossentropy, metrics=['accuracy'] becomes binary_accuracy, i.e. "
            "mean over all n*K entries of [round(p_ik) == y_ik]. With one-hot labels K - 1 of every "
            "K entries are 0, so a model that outputs all zeros scores 1 - 1/K (0.9 for K = 10). "
            "The reported 0.998 of the seed was this number; argmax accuracy was 0.990."
        ),
        fix=(
            "model.compile(loss='categorical_crossentropy',\n"
            "              metrics=['categorical_accuracy'])  # name the metric explicitly"
        ),
        families=(KerasFamily.LEGACY,),
        check=_legacy_binary_accuracy,
        references=(SEED_BCE_ACCURACY, KERAS_METRICS_DOC),
        stage="compatibility",
    ),
    Rule(
        code="LA402",
        name="argmax-accuracy-on-multi-label",
        severity=Severity.WARNING,
        title="'accuracy' resolves to argmax accuracy on multi-label targets",
        why=(
            "Keras 3 and tf.keras >= 2.2 choose the accuracy from shapes: labels and outputs of "
            "equal width K > 1 get CategoricalAccuracy, argmax(y) == argmax(p). Legacy Keras "
            "chooses from the loss and does the same for any loss but binary_crossentropy. For "
            "multi-hot targets argmax(y) is just the first positive label, so the number is "
            "neither subset accuracy (all labels right) nor 1 - Hamming loss (per-label accuracy)."
        ),
        fix=(
            "model.compile(loss='binary_crossentropy',\n"
            "              metrics=[keras.metrics.BinaryAccuracy(threshold=0.5)])"
        ),
        families=ALL_FAMILIES,
        check=_argmax_accuracy_on_multi_label,
        references=(KERAS_METRICS_DOC,),
    ),
    Rule(
        code="LA403",
        name="binary-accuracy-threshold-on-logits",
        severity=Severity.WARNING,
        title="BinaryAccuracy thresholds logits at 0.5",
        why=(
            "BinaryAccuracy (metrics=['binary_accuracy'], or 'accuracy' on one output unit) counts "
            "p > threshold as positive with threshold = 0.5 by default. On a "
            "linear head trained with from_logits=True the outputs are logits z, and "
            "sigmoid(z) > 0.5 means z > 0: every sample with 0 < z <= 0.5 is counted as negative, "
            "so the reported accuracy is off by the share of such samples."
        ),
        fix="metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)]  # logits",
        families=ALL_FAMILIES,
        check=_binary_accuracy_threshold_on_logits,
        references=(KERAS_METRICS_DOC,),
    ),
    Rule(
        code="LA501",
        name="constant-predictions",
        severity=Severity.ERROR,
        title="the model predicts one class for every sample",
        why=(
            "Every prediction (argmax, or thresholded output) is the same class, so accuracy "
            "equals that class's share of the data and nothing about the input is used. This is "
            "what a 1-unit softmax or a 1-unit categorical cross-entropy produce."
        ),
        fix="# fix the head/loss findings above, then retrain: lossaudit audit MODEL --retrain",
        families=ALL_FAMILIES,
        check=_constant_predictions,
        stage="metrics",
    ),
    Rule(
        code="LA502",
        name="not-better-than-majority",
        severity=Severity.WARNING,
        title="accuracy at or below the majority-class baseline",
        why=(
            "Always predicting the most frequent class scores max_k n_k / n. A model at or below "
            "that has learned nothing useful, whatever its loss curve looked like."
        ),
        fix="# check the findings above; compare against balanced_accuracy and the baseline",
        families=ALL_FAMILIES,
        check=_not_better_than_majority,
        stage="metrics",
    ),
    Rule(
        code="LA503",
        name="reported-metric-wrong-definition",
        severity=Severity.ERROR,
        title="a reported metric is another definition than the task needs",
        why=(
            "The reported number is reproduced exactly by a definition other than the one the "
            "task needs (for example elementwise binary accuracy over K outputs instead of argmax "
            "accuracy), and the two differ by more than the tolerance. The number that was "
            "trusted is not the model's accuracy."
        ),
        fix=(
            "# name the metric explicitly\n"
            "metrics=['categorical_accuracy']  # single-label, one-hot\n"
            "metrics=['sparse_categorical_accuracy']  # single-label, indices\n"
            "metrics=[keras.metrics.BinaryAccuracy()]  # binary / multi-label"
        ),
        families=ALL_FAMILIES,
        check=_reported_metric_wrong_definition,
        stage="comparison",
    ),
    Rule(
        code="LA504",
        name="reported-metric-unexplained",
        severity=Severity.ERROR,
        title="a reported metric differs from the recomputed one beyond precision or sampling error",
        why=(
            "Measured on this eval set (a live evaluate, or a number the user states, which is "
            "taken to be on this eval set unless said otherwise), a reported number must equal "
            "one definition of the metric to within half a unit of its last written digit. When "
            "no definition lossaudit knows (argmax, sparse, elementwise binary at 0.5 or 0, subset, "
            "Hamming, top-k, balanced) reproduces it, the number is not the model's: it is "
            "inflated (or deflated) by the difference, and the finding is an error.\n\n"
            "Measured on other data (a training run's validation split), a number differs from "
            "this eval set's by sampling error. With p the task's accuracy here on n samples and "
            "m the other data's size, the difference has standard deviation "
            "sqrt(pi(1 - pi)(1/n + 1/m)); when m is unknown the Wilson score interval of p on n "
            "is used. A number outside the 1 - alpha interval (alpha = 0.001 by default, "
            "configurable) is an error that names the interval and the direction; inside it, "
            "the number passes as consistent with sampling error.\n\n"
            "For metrics whose framework definitions lossaudit cannot all reproduce (precision, "
            "recall, AUC, F1 as Keras computes them), an unexplained number on this eval set is "
            "a warning: lossaudit cannot tell that it is wrong. Numbers measured on the training "
            "data are listed and never judged (the generalisation gap is expected)."
        ),
        fix=(
            "# re-run evaluate on the same data and model; check the data hash and model version\n"
            "# a number from another split: lossaudit compare ... --reported-on other"
        ),
        families=ALL_FAMILIES,
        check=_reported_metric_unexplained,
        stage="comparison",
    ),
    Rule(
        code="LA505",
        name="keras-built-other-metric",
        severity=Severity.WARNING,
        title="Keras built another metric class than the rules predicted",
        why=(
            "lossaudit predicts the metric class Keras builds for 'accuracy' from the Keras "
            "family's resolution rule. After one evaluate batch the live model says which class "
            "it really built; when they differ, the installed Keras resolves metrics differently "
            "from the rule lossaudit holds, and the rules about accuracy may be wrong for it."
        ),
        fix="# report the Keras version; name metrics explicitly to remove the ambiguity",
        families=ALL_FAMILIES,
        check=_keras_built_other_metric,
        stage="introspection",
    ),
    Rule(
        code="LA506",
        name="metric-below-threshold",
        severity=Severity.ERROR,
        title="a recomputed metric is below the pipeline's threshold",
        why=(
            "The pipeline file sets a floor on a recomputed metric (thresholds: {accuracy: 0.9}). "
            "The floor applies to lossaudit's recomputation with the definition the task needs, "
            "never to the number the training run reported, so an inflated metric cannot pass "
            "the gate."
        ),
        fix="# retrain or fix the findings above; lower the threshold only with a reason",
        families=ALL_FAMILIES,
        check=_metric_below_threshold,
        stage="comparison",
    ),
    Rule(
        code="LA507",
        name="non-finite-predictions",
        severity=Severity.ERROR,
        title="the model predicts NaN or infinite values",
        why=(
            "Outputs that hold NaN or an infinity come from a model whose training diverged "
            "(a learning rate too high, a log of 0 in a custom loss, labels out of range under a "
            "sparse loss) or whose weights are NaN. No metric is defined on them; Keras's own "
            "accuracy counts NaN rows as wrong and its loss reads nan."
        ),
        fix=(
            "# lower the learning rate, clip gradients, check labels against the units:\n"
            "keras.optimizers.Adam(learning_rate=1e-4, clipnorm=1.0)\n"
            "keras.callbacks.TerminateOnNaN()"
        ),
        families=ALL_FAMILIES,
        check=_non_finite_predictions,
        stage="metrics",
    ),
)

RULES = (
    *RULES,
    Rule(
        code="LA601",
        name="data-expectation-failed",
        severity=Severity.ERROR,
        title="a data expectation generated from the head failed",
        why=(
            "Before any metric runs, the labels (and features) are validated against expectations "
            "generated from the head spec: index labels integral and in range(K); one-hot columns "
            "in {0, 1} with rows summing to 1; multi-hot and binary columns in {0, 1}; no null, "
            "NaN or infinite feature; the expected columns present. A failed expectation means "
            "the numbers computed on this data describe something other than the task."
        ),
        fix="# fix the data pipeline that produced the failing column; re-export the eval set",
        families=ALL_FAMILIES,
        check=_data_expectation_failed,
        references=("https://docs.greatexpectations.io/docs/reference/learn/terms/expectation/",),
        stage="labels",
    ),
    Rule(
        code="LA602",
        name="data-expectation-warning",
        severity=Severity.WARNING,
        title="a non-critical data expectation failed",
        why=(
            "Some expectations are advisory (severity warning or info in the suite): the data "
            "still fits the head, but something about it is unexpected, such as columns beyond "
            "the expected set. The metrics are computed; read them knowing this."
        ),
        fix="# check the data export; drop or declare the unexpected columns",
        families=ALL_FAMILIES,
        check=_data_expectation_warning,
        references=("https://docs.greatexpectations.io/docs/reference/learn/terms/expectation/",),
        stage="labels",
    ),
)

RULES = (
    *RULES,
    Rule(
        code="LA701",
        name="audit-stage-failed",
        severity=Severity.WARNING,
        title="an audit stage could not complete: part of the model was not checked",
        why=(
            "A stage of the audit (loading the model, predicting, scoring the labels) failed on "
            "this model or data. The report holds every finding made before it, and the verdict "
            "stands on them; what the failed stage would have checked is named in the finding. "
            "A warning by default, because lossaudit cannot tell that the model is wrong, only "
            'that it could not check all of it: set severity = {LA701 = "error"} in '
            "[tool.lossaudit] to fail a gate on any incomplete audit."
        ),
        fix="# read the stage's reason; a model Keras 3 cannot load may load with tf_keras installed",
        families=ALL_FAMILIES,
        check=_stage_failed,
        stage="introspection",
    ),
)

RULES = (
    *RULES,
    Rule(
        code="LA801",
        name="non-finite-loss",
        severity=Severity.ERROR,
        title="the training loss is NaN or infinite",
        why=(
            "Once the loss is NaN its gradient is NaN, and so is every weight after the next "
            "update: the fit keeps running and logging, but the model is gone. Causes: a learning "
            "rate too high, a log of 0 in a custom loss, NaN in the features, labels out of range "
            "under a sparse loss."
        ),
        fix=(
            "# lower the learning rate, clip gradients, check the data for NaN:\n"
            "keras.optimizers.Adam(learning_rate=1e-4, clipnorm=1.0)"
        ),
        families=ALL_FAMILIES,
        check=_non_finite_loss,
        stage="training",
    ),
    Rule(
        code="LA802",
        name="constant-loss",
        severity=Severity.ERROR,
        title="the training loss does not change from epoch to epoch",
        why=(
            "A loss that reads exactly the same value epoch after epoch does not measure the fit: "
            "its value does not depend on the predictions (categorical cross-entropy over one "
            "unit normalises p / p = 1 and reads 0.0 whatever the model predicts, while its "
            "gradient still moves the weights), or nothing trains (every layer frozen, a learning "
            "rate of 0). Whatever the metrics show, this loss did not guide them."
        ),
        fix="# fix the head/loss findings (LA101: Dense(1, 'sigmoid') + binary_crossentropy)",
        families=ALL_FAMILIES,
        check=_constant_loss,
        stage="training",
    ),
    Rule(
        code="LA803",
        name="training-accuracy-at-majority",
        severity=Severity.WARNING,
        title="training accuracy stays at the majority-class baseline",
        why=(
            "For several epochs the accuracy Keras logged stayed at (or below) max_k n_k / n of the "
            "training labels: what always predicting the most frequent class scores. The model "
            "predicts one class, or learns nothing the labels reward."
        ),
        fix="# check the head/loss findings; compare against balanced_accuracy and the baseline",
        families=ALL_FAMILIES,
        check=_accuracy_at_majority,
        stage="training",
    ),
)

RULES_BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}
RULES_BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}


def find_rule(code_or_name: str) -> Rule | None:
    key = code_or_name.strip()
    return RULES_BY_CODE.get(key.upper()) or RULES_BY_NAME.get(key.lower())
