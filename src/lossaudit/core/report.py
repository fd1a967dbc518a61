"""The audit report: everything one audit found, frozen and JSON-serialisable.

``SCHEMA_VERSION`` changes when a key is renamed or removed; adding keys keeps it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lossaudit import __version__
from lossaudit.core.findings import Finding, Severity
from lossaudit.core.head import HeadSpec

if TYPE_CHECKING:
    from lossaudit.core.compare import Comparison
    from lossaudit.core.labels import LabelEvidence
    from lossaudit.core.metrics import RecomputedMetrics
    from lossaudit.core.resolution import MetricResolution

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class StageResult:
    """One pipeline stage: its name, how long it took, and a short summary."""

    name: str
    seconds: float
    status: str = "ok"
    """``ok``, ``skipped`` or ``failed``."""
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 4),
            "status": self.status,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class AuditReport:
    command: str
    head: HeadSpec | None
    findings: tuple[Finding, ...]
    verdict: str
    fail_on: Severity = Severity.ERROR
    labels: LabelEvidence | None = None
    metric_resolutions: tuple[MetricResolution, ...] = ()
    metrics: RecomputedMetrics | None = None
    comparisons: tuple[Comparison, ...] = ()
    stages: tuple[StageResult, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)
    """Where the audit came from: model, data, Keras version, retrain results, MLflow run, ..."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """The effective rule configuration (``RuleConfig.to_dict()``): select, ignore, severities,
    fail_on, alpha, tolerance and where they came from."""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    tool_version: str = __version__
    schema_version: str = SCHEMA_VERSION

    @property
    def codes(self) -> tuple[str, ...]:
        """Distinct finding codes, in catalogue order of first appearance."""
        return tuple(dict.fromkeys(f.code for f in self.findings))

    def finding_for(self, comparison: Comparison) -> Finding | None:
        """The finding a comparison raised (LA503 / LA504), with its effective severity; None when it
        raised none (it agrees, is consistent, was not compared, or its rule is ignored)."""
        for finding in self.findings:
            ev = finding.evidence
            if (
                finding.code in ("LA503", "LA504")
                and ev.get("metric") == comparison.metric
                and ev.get("source") == comparison.source
                and ev.get("reported") == comparison.reported
            ):
                return finding
        return None

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = _jsonable(
            {
                "schema_version": self.schema_version,
                "tool": "lossaudit",
                "tool_version": self.tool_version,
                "created_at": self.created_at,
                "command": self.command,
                "verdict": self.verdict,
                "fail_on": self.fail_on.value,
                "summary": {s.value: self.count(s) for s in Severity},
                "codes": list(self.codes),
                "head": None if self.head is None else self.head.to_dict(),
                "labels": None if self.labels is None else self.labels.to_dict(),
                "findings": [f.to_dict() for f in self.findings],
                "metric_resolutions": [r.to_dict() for r in self.metric_resolutions],
                "metrics": None if self.metrics is None else self.metrics.to_dict(),
                "comparisons": [c.to_dict() for c in self.comparisons],
                "stages": [s.to_dict() for s in self.stages],
                "config": dict(self.config),
                "context": dict(self.context),
            }
        )
        return doc

    def to_json(self, indent: int | None = 2) -> str:
        # allow_nan=False: the output is strict JSON (NaN and infinities are already null).
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, allow_nan=False)


def _jsonable(value: Any) -> Any:
    """Plain JSON types only; NaN and infinities become null (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return str(value)
