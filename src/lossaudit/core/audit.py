"""The audit core's Python API: judge a head (and labels), or predictions against reported numbers.

Framework-neutral: a head spec and numpy arrays in, an :class:`AuditReport` out. The Keras and
MLflow adapters, the pipeline and the CLI all end here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from lossaudit.core.catalogue import RULES
from lossaudit.core.compare import Comparison, Definition, ReportedMetric, compare
from lossaudit.core.config import RuleConfig
from lossaudit.core.facts import OutputFacts, PredictionFacts, TrainingFacts
from lossaudit.core.findings import (
    AuditFacts,
    DataCheck,
    FixEvidence,
    Severity,
    StageFailure,
    ThresholdCheck,
    run_rules,
    verdict,
    weigh_fix_evidence,
)
from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import LabelEvidence, detect_labels
from lossaudit.core.metrics import (
    ModelOutputs,
    RecomputedMetrics,
    non_finite_rows,
    prediction_matrix,
    read_outputs,
    recompute,
)
from lossaudit.core.report import AuditReport, StageResult
from lossaudit.core.resolution import resolve_metrics
from lossaudit.errors import BadInputError


def inspect_labels(y: Any, head: HeadSpec) -> LabelEvidence:
    """Detect the label encoding against the head; stop on labels no rule can judge."""
    evidence = detect_labels(y, units=head.units)
    if evidence.problem is not None and evidence.problem.unreadable:
        raise BadInputError(evidence.reason or "labels cannot be read")
    return evidence


def require_readable(evidence: LabelEvidence) -> LabelEvidence:
    """``evidence``, or the one-line stop :func:`inspect_labels` makes for unreadable labels."""
    if evidence.problem is not None and evidence.problem.unreadable:
        raise BadInputError(evidence.reason or "labels cannot be read")
    return evidence


def check(
    head: HeadSpec,
    y: Any = None,
    *,
    fail_on: Severity = Severity.ERROR,
    built_metrics: tuple[tuple[str, str], ...] | None = None,
    context: Mapping[str, Any] | None = None,
    stages: tuple[StageResult, ...] = (),
    command: str = "check",
    config: RuleConfig | None = None,
    failed_stages: tuple[StageFailure, ...] = (),
    data_checks: tuple[DataCheck, ...] = (),
    training: TrainingFacts | None = None,
    predictions: PredictionFacts | None = None,
    evidence: LabelEvidence | None = None,
) -> AuditReport:
    """Static compatibility check of a head and, optionally, its labels.

    ``failed_stages`` are audit stages that could not run after this check (finding LA701); the
    report then stands on what was found before them. ``training`` (a fit's history so far) and
    ``predictions`` (what a probe batch showed) are the Keras callback's facts during a fit.
    ``evidence`` is what the labels are, when a caller detected it without holding them (a
    distributed engine); ``y`` is then not read.
    """
    if evidence is not None:
        labels: LabelEvidence | None = require_readable(evidence)
    else:
        labels = inspect_labels(y, head) if y is not None else None
    facts = AuditFacts(
        head=head,
        labels=labels,
        built_metrics=built_metrics,
        failed_stages=failed_stages,
        data_checks=data_checks,
        training=training,
        predictions=predictions,
    )
    return _judged(facts, command=command, fail_on=fail_on, stages=stages, context=context, config=config)


def _judged(
    facts: AuditFacts,
    *,
    command: str,
    fail_on: Severity,
    stages: tuple[StageResult, ...],
    context: Mapping[str, Any] | None,
    metrics: RecomputedMetrics | None = None,
    config: RuleConfig | None = None,
) -> AuditReport:
    """Run every rule on ``facts``, apply the configuration, and make the report.

    ``config`` (when given) decides the failing severity; ``fail_on`` is used otherwise.
    """
    effective = config if config is not None else RuleConfig(fail_on=fail_on)
    findings = effective.apply(weigh_fix_evidence(run_rules(RULES, facts), facts.fix_evidence))
    return AuditReport(
        command=command,
        head=facts.head,
        labels=facts.labels,
        findings=findings,
        verdict=verdict(findings, effective.fail_on),
        fail_on=effective.fail_on,
        config=effective.to_dict(),
        metric_resolutions=resolve_metrics(facts.head, facts.labels),
        metrics=metrics,
        comparisons=facts.comparisons,
        stages=stages,
        context=dict(context or {}),
    )


@dataclass(frozen=True)
class Scored:
    """Labels and predictions read against a head, and every metric recomputed from them."""

    labels: LabelEvidence
    outputs: ModelOutputs
    metrics: RecomputedMetrics


def score(head: HeadSpec, y: Any, predictions: Any) -> Scored:
    """Read labels and predictions against the head and recompute the task's metrics.

    Raises :class:`BadInputError` for labels or predictions that cannot be scored.
    """
    labels = inspect_labels(y, head)
    outputs = read_outputs(predictions, head, labels)
    return Scored(labels, outputs, recompute(y, labels, outputs, head))


def output_facts_of(raw: Any, head: HeadSpec) -> OutputFacts:
    """What the raw outputs show before any metric (finite rows, row sums of multi-unit heads)."""
    import numpy as np

    finite = np.isfinite(raw).all(axis=1)
    row_sums = None
    if head.units > 1 and finite.any():
        sums = raw[finite].sum(axis=1)
        row_sums = (float(sums.min()), float(sums.max()))
    return OutputFacts(n_rows=int(raw.shape[0]), non_finite_rows=non_finite_rows(raw), row_sums=row_sums)


def unscorable_reason(labels: LabelEvidence, outputs: OutputFacts) -> str | None:
    """Why no metric can be computed on these labels and outputs, or None when they can."""
    if not labels.is_valid:
        return f"labels cannot be scored against this head: {labels.reason}"
    if outputs.non_finite_rows:
        return f"{outputs.non_finite_rows} of {outputs.n_rows} prediction rows contain NaN or infinite values"
    return None


def not_scored(rep: ReportedMetric, reason: str) -> Comparison:
    """A reported number that could not be compared because nothing was recomputed."""
    return Comparison(
        rep.name,
        rep.value,
        rep.source,
        "not_compared",
        f"{rep.name} {rep.value:.4f}: not compared, no metric was recomputed ({reason})",
        rep.tolerance,
        measured_on=rep.measured_on,
    )


def threshold_checks(
    thresholds: Mapping[str, float], metrics: RecomputedMetrics | None
) -> tuple[ThresholdCheck, ...]:
    """Each ``metric: floor`` of a pipeline against the recomputed value (None: not computed)."""
    values = metrics.values if metrics is not None else {}
    return tuple(ThresholdCheck(name, float(floor), values.get(name)) for name, floor in thresholds.items())


def audit_predictions(
    head: HeadSpec,
    y: Any,
    predictions: Any,
    reported: Iterable[ReportedMetric] = (),
    *,
    scored: Scored | None = None,
    fail_on: Severity = Severity.ERROR,
    built_metrics: tuple[tuple[str, str], ...] | None = None,
    data_checks: tuple[DataCheck, ...] = (),
    thresholds: Mapping[str, float] | None = None,
    context: Mapping[str, Any] | None = None,
    stages: tuple[StageResult, ...] = (),
    command: str = "compare",
    config: RuleConfig | None = None,
    failed_stages: tuple[StageFailure, ...] = (),
    fix_evidence: FixEvidence | None = None,
) -> AuditReport:
    """Recompute metrics from labels and predictions, attribute reported numbers, run every rule.

    ``scored`` is :func:`score`'s result for the same head, labels and predictions, when a caller
    (the audit pipeline's recompute stage) already has it; it is computed here otherwise.

    Labels the head cannot score (out of range, invalid) and predictions holding NaN are findings
    (LA204, LA206, LA507...), not errors: the report is complete without metrics, and every
    reported number is listed as not compared, with the reason.
    """
    rules = config if config is not None else RuleConfig(fail_on=fail_on)
    labels = scored.labels if scored is not None else inspect_labels(y, head)
    raw = scored.outputs.raw if scored is not None else prediction_matrix(predictions, head)
    if labels.n_samples != raw.shape[0]:
        raise BadInputError(f"labels have {labels.n_samples} rows but predictions have {raw.shape[0]}")
    output_facts = output_facts_of(raw, head)
    unscored = unscorable_reason(labels, output_facts)
    metrics: RecomputedMetrics | None = None
    prediction_facts = None
    if unscored is None:
        scored = scored if scored is not None else score(head, y, predictions)
        labels, outputs, metrics = scored.labels, scored.outputs, scored.metrics
        output_facts = replace(output_facts, not_probabilities=outputs.problem)
        comparisons = compare(
            tuple(reported), y, labels, outputs, head, metrics, alpha=rules.alpha, tolerance=rules.tolerance
        )
        prediction_facts = metrics.facts()
    else:
        comparisons = tuple(not_scored(rep, unscored) for rep in reported)
    facts = AuditFacts(
        head=head,
        labels=labels,
        predictions=prediction_facts,
        comparisons=comparisons,
        built_metrics=built_metrics,
        data_checks=data_checks,
        thresholds=threshold_checks(thresholds or {}, metrics),
        outputs=output_facts,
        failed_stages=failed_stages,
        unscored=unscored,
        fix_evidence=fix_evidence,
    )
    return _judged(
        facts,
        command=command,
        fail_on=fail_on,
        stages=stages,
        context=context,
        metrics=metrics,
        config=rules,
    )


def head_for_predictions(
    units: int,
    *,
    from_logits: bool,
    multi_label: bool,
    activation: str | None = None,
    loss: str | None = None,
    metrics: tuple[str, ...] = (),
    keras_family: str = "keras3",
) -> HeadSpec:
    """The head implied by a predictions file when no model is at hand.

    Logits come from a linear head; probabilities from sigmoid (1 unit, multi-label) or softmax.
    """
    if activation is None and from_logits:
        activation = "linear"
    elif activation is None:
        activation = "sigmoid" if units == 1 or multi_label else "softmax"
    return HeadSpec.from_values(
        units=units,
        activation=activation,
        loss=loss,
        from_logits=from_logits,
        metrics=metrics,
        keras_family=keras_family,
        source="predictions",
    )


def audit_merged(
    head: HeadSpec,
    labels: LabelEvidence,
    outputs: OutputFacts,
    reported: Iterable[ReportedMetric] = (),
    *,
    metrics: RecomputedMetrics | None,
    accuracy_defs: tuple[Definition, ...] | None,
    unscored: str | None,
    not_probabilities: str | None = None,
    fail_on: Severity = Severity.ERROR,
    built_metrics: tuple[tuple[str, str], ...] | None = None,
    data_checks: tuple[DataCheck, ...] = (),
    thresholds: Mapping[str, float] | None = None,
    context: Mapping[str, Any] | None = None,
    stages: tuple[StageResult, ...] = (),
    command: str = "compare",
    config: RuleConfig | None = None,
    failed_stages: tuple[StageFailure, ...] = (),
    fix_evidence: FixEvidence | None = None,
) -> AuditReport:
    """:func:`audit_predictions` for a caller that never holds the predictions in one place (a
    distributed engine): it hands over what it merged instead.

    ``labels`` is the label evidence against ``head``; ``outputs`` what the raw outputs showed;
    ``metrics`` and ``accuracy_defs`` are built from merged counts
    (:mod:`lossaudit.core.counts`), or None with ``unscored`` saying why no metric was computed.
    ``not_probabilities`` is :attr:`ModelOutputs.problem` for scored outputs.
    """
    rules = config if config is not None else RuleConfig(fail_on=fail_on)
    prediction_facts = None
    if unscored is None:
        if metrics is None or accuracy_defs is None:
            raise BadInputError("merged metrics and accuracy definitions are missing")
        outputs = replace(outputs, not_probabilities=not_probabilities)
        comparisons = compare(
            tuple(reported),
            None,
            labels,
            None,
            head,
            metrics,
            alpha=rules.alpha,
            tolerance=rules.tolerance,
            accuracy_defs=accuracy_defs,
        )
        prediction_facts = metrics.facts()
    else:
        metrics = None
        comparisons = tuple(not_scored(rep, unscored) for rep in reported)
    facts = AuditFacts(
        head=head,
        labels=labels,
        predictions=prediction_facts,
        comparisons=comparisons,
        built_metrics=built_metrics,
        data_checks=data_checks,
        thresholds=threshold_checks(thresholds or {}, metrics),
        outputs=outputs,
        failed_stages=failed_stages,
        unscored=unscored,
        fix_evidence=fix_evidence,
    )
    return _judged(
        facts,
        command=command,
        fail_on=fail_on,
        stages=stages,
        context=context,
        metrics=metrics,
        config=rules,
    )
