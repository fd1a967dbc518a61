"""The sink interface of the audit pipeline: where a finished report goes after the local folder.

The local folder (:mod:`lossaudit.sinks.local`) is always written first; a :class:`ReportSink`
(:class:`lossaudit.sinks.mlflow.MlflowSink`) then sends the report and its files somewhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lossaudit.core.report import AuditReport


class ReportSink(Protocol):
    """Somewhere the finished report is sent after the local folder is written (the log stage)."""

    @property
    def name(self) -> str: ...

    def send(self, report: AuditReport, files: Mapping[str, Path]) -> Mapping[str, Any]:
        """Send the report (``files`` are the local report files, empty when none were written);
        return plain-JSON facts about where it went (run id, URL). Raise
        :class:`~lossaudit.errors.TrackingUnavailableError` when the destination is down."""
        ...
