"""The audit core's Python API: judge a head (and labels), or predictions against reported numbers.

Framework-neutral: a head spec and numpy arrays in, an :class:`AuditReport` out. The Keras and
MLflow adapters, the pipeline and the CLI all end here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lossaudit.core.catalogue import RULES
from lossaudit.core.compare import ReportedMetric, compare
from lossaudit.core.config import RuleConfig
from lossaudit.core.findings import (
    AuditFacts,
    DataCheck,
    Severity,
    ThresholdCheck,
    run_rules,
    verdict,
)
from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import LabelEvidence, detect_labels
from lossaudit.core.metrics import ModelOutputs, RecomputedMetrics, read_outputs, recompute
from lossaudit.core.report import AuditReport, StageResult
from lossaudit.core.resolution import resolve_metrics
from lossaudit.errors import BadInputError


def inspect_labels(y: Any, head: HeadSpec) -> LabelEvidence:
    """Detect the label encoding against the head; stop on labels no rule can judge."""
    evidence = detect_labels(y, units=head.units)
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
) -> AuditReport:
    """Static compatibility check of a head and, optionally, its labels."""
    labels = inspect_labels(y, head) if y is not None else None
    facts = AuditFacts(head=head, labels=labels, built_metrics=built_metrics)
    return _judged(
        facts, command=command, fail_on=fail_on, stages=stages, context=context, config=config
    )


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
    findings = effective.apply(run_rules(RULES, facts))
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


def threshold_checks(
    thresholds: Mapping[str, float], metrics: RecomputedMetrics
) -> tuple[ThresholdCheck, ...]:
    """Each ``metric: floor`` of a pipeline against the recomputed value (None: not computed)."""
    return tuple(
        ThresholdCheck(name, float(floor), metrics.values.get(name)) for name, floor in thresholds.items()
    )


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
) -> AuditReport:
    """Recompute metrics from labels and predictions, attribute reported numbers, run every rule.

    ``scored`` is :func:`score`'s result for the same head, labels and predictions, when a caller
    (the audit pipeline's recompute stage) already has it; it is computed here otherwise.
    """
    scored = scored if scored is not None else score(head, y, predictions)
    labels, outputs, metrics = scored.labels, scored.outputs, scored.metrics
    rules = config if config is not None else RuleConfig(fail_on=fail_on)
    comparisons = compare(
        tuple(reported), y, labels, outputs, head, metrics, alpha=rules.alpha, tolerance=rules.tolerance
    )
    facts = AuditFacts(
        head=head,
        labels=labels,
        predictions=metrics.facts(),
        comparisons=comparisons,
        built_metrics=built_metrics,
        data_checks=data_checks,
        thresholds=threshold_checks(thresholds or {}, metrics),
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
