"""Rules, the facts they judge, and the findings they produce.

Deliberately free of numpy and of every framework: ``lossaudit rules`` and ``explain`` import this
module (and the catalogue) and nothing heavier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from lossaudit.core.facts import OutputFacts, PredictionFacts, TrainingFacts
from lossaudit.core.head import HeadFix, HeadSpec, KerasFamily

if TYPE_CHECKING:
    from lossaudit.core.compare import Comparison
    from lossaudit.core.labels import LabelEvidence


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


ALL_FAMILIES: tuple[KerasFamily, ...] = tuple(KerasFamily)


@dataclass(frozen=True)
class StageFailure:
    """A pipeline stage that could not complete; what it would have checked is named."""

    stage: str
    reason: str
    unchecked: str
    """What the audit could therefore not check (e.g. "predictions and reported numbers")."""


@dataclass(frozen=True)
class FixEvidence:
    """What retraining with the findings' merged fix measured (``lossaudit audit --retrain``)."""

    proven: bool
    summary: str
    seeds: int = 1
    gain_beyond_spread: float | None = None
    """Worst fixed run minus best original run over the seeds (None with one seed)."""

    @property
    def beyond_spread(self) -> bool:
        return self.proven and (self.seeds < 2 or (self.gain_beyond_spread or 0.0) > 0.0)


@dataclass(frozen=True)
class DataCheck:
    """One data expectation (from the Great Expectations adapter or a plain check) and its outcome."""

    name: str
    """What was expected, e.g. ``label values in range(10)``."""
    success: bool
    column: str | None = None
    severity: str = "error"
    """``error`` (critical expectation), ``warning`` or ``info``."""
    detail: str = ""
    """Counts and examples of what failed."""


@dataclass(frozen=True)
class ThresholdCheck:
    """A floor a pipeline sets on a recomputed metric (``thresholds: {accuracy: 0.9}``)."""

    metric: str
    minimum: float
    value: float | None
    """The recomputed value; None when the metric is not computed for this task."""

    @property
    def passed(self) -> bool:
        return self.value is not None and self.value >= self.minimum


@dataclass(frozen=True)
class AuditFacts:
    """Everything the rules may look at. Only ``head`` is required: rules skip what is missing."""

    head: HeadSpec
    labels: LabelEvidence | None = None
    predictions: PredictionFacts | None = None
    comparisons: tuple[Comparison, ...] = ()
    built_metrics: tuple[tuple[str, str], ...] | None = None
    """(declared name, Keras class it built) pairs read from a live model after one evaluate."""
    data_checks: tuple[DataCheck, ...] = ()
    thresholds: tuple[ThresholdCheck, ...] = ()
    outputs: OutputFacts | None = None
    failed_stages: tuple[StageFailure, ...] = ()
    unscored: str | None = None
    """Why no metric was recomputed although predictions were at hand (invalid labels, NaN)."""
    fix_evidence: FixEvidence | None = None
    training: TrainingFacts | None = None
    """A fit's history so far (the Keras callback); None outside training."""


@dataclass(frozen=True)
class Hit:
    """One firing of a rule: the specific message, the head change that fixes it, evidence."""

    message: str
    head_fix: HeadFix | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    severity: Severity | None = None
    """Set when the evidence measured here raises (or, for a setting where the rule is right
    in some uses, lowers) the rule's default severity; the message says why."""


Check = Callable[[AuditFacts], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    """A catalogue entry. Codes never change meaning once published."""

    code: str
    name: str
    severity: Severity
    title: str
    why: str
    """What goes wrong and why, with the math."""
    fix: str
    """The fix, as code."""
    families: tuple[KerasFamily, ...]
    check: Check = field(repr=False, compare=False)
    references: tuple[str, ...] = ()
    stage: str = "compatibility"
    """Which pipeline stage can fire it: labels, compatibility, metrics, comparison, introspection."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "title": self.title,
            "why": self.why,
            "fix": self.fix,
            "families": [f.value for f in self.families],
            "references": list(self.references),
            "stage": self.stage,
        }


@dataclass(frozen=True)
class SourceLocation:
    """Where in a source file a finding is: 1-based lines and columns, the end exclusive.

    Columns count characters of the line (not bytes). For a notebook, ``path`` is the ``.ipynb``
    file and ``line`` the line of that file holding the code; ``cell`` and ``cell_line`` say where
    it is among the code cells (1-based) as a person reads the notebook.
    """

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    cell: int | None = None
    cell_line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
        }
        if self.cell is not None:
            out["cell"] = self.cell
            out["cell_line"] = self.cell_line
        return out


@dataclass(frozen=True)
class SourceEdit:
    """A fix as code: the source lines ``first_line..last_line`` of ``location``'s file (its code
    lines, for a notebook: the cell's) as the fix writes them."""

    location: SourceLocation
    first_line: int
    last_line: int
    replacement: str
    """The new text of those whole lines (several lines joined by newlines)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location.to_dict(),
            "first_line": self.first_line,
            "last_line": self.last_line,
            "replacement": self.replacement,
        }


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    severity: Severity
    title: str
    message: str
    fix: str
    head_fix: HeadFix | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    location: SourceLocation | None = None
    """The call in a source file that causes the finding (a checked training script); None for
    findings on a model, a head or data."""
    suggestions: tuple[SourceEdit, ...] = ()
    """The fix as edits of the source, the one at ``location`` first."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "title": self.title,
            "message": self.message,
            "fix": self.fix,
            "evidence": dict(self.evidence),
        }
        if self.head_fix is not None and not self.head_fix.is_empty():
            out["head_fix"] = {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in self.head_fix.__dict__.items()
                if v is not None and v != ()
            }
        # Only findings on source code carry these: other reports' JSON is unchanged.
        if self.location is not None:
            out["location"] = self.location.to_dict()
        if self.suggestions:
            out["suggestions"] = [s.to_dict() for s in self.suggestions]
        return out


def run_rules(rules: Iterable[Rule], facts: AuditFacts) -> tuple[Finding, ...]:
    """Every firing of every rule that applies to the head's Keras family, in catalogue order."""
    findings: list[Finding] = []
    for rule in rules:
        if facts.head.keras_family not in rule.families:
            continue
        for hit in rule.check(facts):
            findings.append(
                Finding(
                    code=rule.code,
                    name=rule.name,
                    severity=hit.severity if hit.severity is not None else rule.severity,
                    title=rule.title,
                    message=hit.message,
                    fix=rule.fix,
                    head_fix=hit.head_fix,
                    evidence=hit.evidence,
                )
            )
    return tuple(findings)


def weigh_fix_evidence(findings: Iterable[Finding], evidence: FixEvidence | None) -> tuple[Finding, ...]:
    """Put the retrain's measurement beside every finding whose head fix it applied.

    A proven gain beyond the spread of the seeds is measured harm: a warning that proposed the fix
    becomes an error. A fix that changed nothing measurable is said, and no severity is lowered.
    """
    from dataclasses import replace

    out: list[Finding] = []
    for finding in findings:
        if evidence is None or finding.head_fix is None or finding.head_fix.is_empty():
            out.append(finding)
            continue
        measured: dict[str, Any] = {"retrain_proven": evidence.proven, "retrain_summary": evidence.summary}
        if evidence.gain_beyond_spread is not None:
            measured["retrain_gain_beyond_spread"] = evidence.gain_beyond_spread
        severity: Severity = finding.severity
        if evidence.beyond_spread:
            note = f" Measured by retraining with the fix: {evidence.summary}."
            if severity is Severity.WARNING:
                severity = Severity.ERROR
        else:
            note = f" Retrained with the fix: {evidence.summary} (no measured gain; severity kept)."
        out.append(
            replace(
                finding,
                severity=severity,
                message=finding.message + note,
                evidence={**finding.evidence, **measured},
            )
        )
    return tuple(out)


def verdict(findings: Iterable[Finding], fail_on: Severity = Severity.ERROR) -> str:
    """``"fail"`` when any finding is at or above ``fail_on``, else ``"pass"``."""
    return "fail" if any(f.severity.at_least(fail_on) for f in findings) else "pass"
