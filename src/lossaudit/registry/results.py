"""What a registry job found, as plain data: one :class:`VersionResult` per version (its current
verdict, where that verdict comes from, what the job did with it), one :class:`AliasMove` per model
with ``promote_alias``, and the :class:`RegistrySummary` that gives the job's verdict and exit code.
``to_dict`` is the job's JSON output and the summary run's ``summary.json``; nothing here talks to
MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lossaudit.errors import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_PASS, EXIT_TRACKING_UNAVAILABLE

VERDICTS = ("pass", "fail", "error")
"""From best to worst: the job's verdict is the worst of its versions'."""
JUDGED = ("pass", "fail")
"""The verdicts an audit gives; ``error`` means the version has never been judged."""
FRESH = "fresh"
"""The verdict was given by this job."""
STORED = "stored"
"""The verdict was given by an earlier job and read from the version's tags."""
AUDITED = "audited"
SKIPPED = "skipped"
NOT_AUDITED = "not_audited"
"""What the job did with a version: audited it, skipped it (same data and rules), or could not
audit it (no data, a corrupt artifact, a crash, MLflow down)."""


@dataclass(frozen=True)
class VersionResult:
    """One version's outcome in the job."""

    model: str
    version: str
    verdict: str
    """The version's current verdict, ``pass``, ``fail`` or ``error``: what its
    ``lossaudit.verdict`` tag says after the job (see ``verdict_source``)."""
    status: str = AUDITED
    """What this job did: ``audited``, ``skipped`` (already audited with the same data and
    rules) or ``not_audited`` (it could not be audited now: ``error`` says why)."""
    verdict_source: str = FRESH
    """``fresh`` (given by this job) or ``stored`` (given by an earlier job: a skipped version, or
    one this job could not audit, which keeps its earlier pass or fail verdict)."""
    codes: tuple[str, ...] = ()
    data: str | None = None
    data_origin: str | None = None
    data_hash: str | None = None
    """The data hash of the verdict (for a stored verdict, the stored one)."""
    audit_run: str | None = None
    audit_run_url: str | None = None
    audited_at: str | None = None
    """When the verdict was given."""
    seconds: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    error_at: str | None = None
    report_dir: str | None = None
    findings: tuple[Mapping[str, Any], ...] = ()
    peak_rss_mb: float | None = None

    @property
    def label(self) -> str:
        return f"{self.model} v{self.version}"

    @property
    def skipped(self) -> bool:
        return self.status == SKIPPED

    @property
    def gate(self) -> str:
        """The verdict this version gives the job: ``error`` when this job could not audit it
        (whatever verdict it keeps), else its current verdict."""
        if self.status == NOT_AUDITED or self.verdict not in VERDICTS:
            return "error"
        return self.verdict

    def describe(self) -> str:
        """``fail (stored, skipped)``, ``pass (fresh)``, ``pass (stored; not audited now: bad_input)``."""
        if self.status == NOT_AUDITED:
            return f"{self.verdict} ({self.verdict_source}; not audited now: {self.error_kind or 'error'})"
        if self.status == SKIPPED:
            return f"{self.verdict} ({self.verdict_source}, skipped)"
        return f"{self.verdict} ({self.verdict_source})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "verdict": self.verdict,
            "verdict_source": self.verdict_source,
            "status": self.status,
            "gate": self.gate,
            "skipped": self.skipped,
            "codes": list(self.codes),
            "data": self.data,
            "data_origin": self.data_origin,
            "data_hash": self.data_hash,
            "audit_run": self.audit_run,
            "audit_run_url": self.audit_run_url,
            "audited_at": self.audited_at,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "error_kind": self.error_kind,
            "error_at": self.error_at,
            "report_dir": self.report_dir,
            "peak_rss_mb": self.peak_rss_mb,
        }


MOVED = "moved"
REMOVED = "removed"
KEPT = "kept"


@dataclass(frozen=True)
class AliasMove:
    """What ``promote_alias`` did for one model."""

    model: str
    alias: str
    previous: str | None
    """The version the alias pointed to before the job (None: nowhere)."""
    target: str | None
    """The version the alias points to after the job (None: nowhere)."""
    action: str
    """``moved`` (set on ``target``), ``removed`` (deleted from ``previous``) or ``kept``."""
    reason: str

    @property
    def moved(self) -> bool:
        return self.action == MOVED

    @property
    def removed(self) -> bool:
        return self.action == REMOVED

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "previous": self.previous,
            "target": self.target,
            "action": self.action,
            "moved": self.moved,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RegistrySummary:
    """The job's outcome: every version's result, the alias moves and the summary run."""

    versions: tuple[VersionResult, ...]
    alias_moves: tuple[AliasMove, ...] = ()
    summary_run: str | None = None
    summary_run_url: str | None = None
    summary_error: str | None = None
    """Set when the summary run could not be finished (MLflow went away): exit 3."""
    tracking_uri: str = ""
    experiment: str = ""
    rules_version: str = ""
    workers: int = 1
    """Worker processes (engine ``local``), or versions audited at once (engine ``spark``)."""
    engine: str = "local"
    """``local`` or ``spark``."""
    master: str | None = None
    """The Spark master the versions were audited on (engine ``spark``)."""
    spark_version: str | None = None
    """Spark's version (None: Spark was not started, e.g. every version was skipped)."""
    seconds: float = 0.0

    def _count(self, **match: str) -> int:
        return sum(1 for v in self.versions if all(getattr(v, k) == x for k, x in match.items()))

    @property
    def counts(self) -> dict[str, int]:
        """``n_passed``, ``n_failed``, ``n_error``: the versions by the verdict each gives the job
        (:attr:`VersionResult.gate`); ``n_audited``, ``n_skipped``, ``n_not_audited``: what the
        job did; ``n_fresh``, ``n_stored``: where the current verdicts come from."""
        return {
            "n_versions": len(self.versions),
            "n_passed": self._count(gate="pass"),
            "n_failed": self._count(gate="fail"),
            "n_error": self._count(gate="error"),
            "n_audited": self._count(status=AUDITED),
            "n_skipped": self._count(status=SKIPPED),
            "n_not_audited": self._count(status=NOT_AUDITED),
            "n_fresh": self._count(verdict_source=FRESH),
            "n_stored": self._count(verdict_source=STORED),
        }

    @property
    def verdict(self) -> str:
        """The worst verdict the versions give the job (pass < fail < error), fresh or stored."""
        gates = {v.gate for v in self.versions}
        return max(gates, key=VERDICTS.index) if gates else "pass"

    @property
    def exit_code(self) -> int:
        if self.summary_error is not None:
            return EXIT_TRACKING_UNAVAILABLE
        return {"error": EXIT_BAD_INPUT, "fail": EXIT_FINDINGS}.get(self.verdict, EXIT_PASS)

    def to_dict(self) -> dict[str, Any]:
        findings = [
            {"model": v.model, "version": v.version, **dict(f)}
            for v in self.versions
            if v.verdict_source == FRESH
            for f in v.findings
        ]
        return {
            "verdict": self.verdict,
            "findings": findings,
            "versions": [v.to_dict() for v in self.versions],
            "summary": self.counts,
            "alias_moves": [m.to_dict() for m in self.alias_moves],
            "summary_run": self.summary_run,
            "summary_run_url": self.summary_run_url,
            "summary_error": self.summary_error,
            "tracking_uri": self.tracking_uri,
            "experiment": self.experiment,
            "rules_version": self.rules_version,
            "workers": self.workers,
            "engine": self.engine,
            "master": self.master,
            "spark_version": self.spark_version,
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)
