"""The report the Python API returns: the audit's report, plus ``save`` and a notebook view.

:class:`AuditReport` is :class:`lossaudit.core.report.AuditReport` (every field, ``to_dict`` and
``to_json`` as the CLI writes them to ``report.json``) with what a notebook or a script needs on
top: :meth:`~AuditReport.save` writes the same report folder as ``lossaudit audit --out``,
``_repr_html_`` shows the same page as ``report.html`` inline, ``str()`` is the CLI's text, and
:meth:`~AuditReport.raise_for_verdict` turns a failing verdict into
:class:`~lossaudit.errors.AuditFailedError` (the CLI's exit 1).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lossaudit.core.findings import Severity
from lossaudit.core.report import AuditReport as CoreAuditReport
from lossaudit.errors import AuditFailedError

NOTEBOOK_HEIGHT_PX = 720
"""Height of the inline report frame in a notebook (the page scrolls inside it)."""


@dataclass(frozen=True, repr=False)
class AuditReport(CoreAuditReport):
    """What one audit found: ``verdict`` (``"pass"``/``"fail"``), ``findings`` (each with its code,
    severity, message and fix), ``metrics`` (recomputed with scikit-learn; ``metrics.values`` maps
    names to numbers), ``comparisons`` (every reported number against the recomputed one),
    ``head``, ``labels``, ``stages``, ``context`` and ``config``.

    Beyond :class:`lossaudit.core.report.AuditReport`: :meth:`save`, :meth:`raise_for_verdict`,
    the notebook view ``_repr_html_`` (the page of ``report.html``), ``str()`` (the CLI's text),
    ``folder`` (the report folder written, if any) and ``mlflow_run`` (where it was logged).
    """

    folder: Path | None = field(default=None, compare=False)
    """The report folder the audit wrote (``out=``), else None."""
    mlflow_run: Mapping[str, Any] | None = field(default=None, compare=False)
    """Where the audit was logged (``run_id``, ``experiment``, ``url``...) with ``log=True``."""

    @classmethod
    def of(
        cls,
        report: CoreAuditReport,
        *,
        folder: Path | None = None,
        mlflow_run: Mapping[str, Any] | None = None,
    ) -> AuditReport:
        """The public report for a core report (the same values, nothing recomputed)."""
        values = {f.name: getattr(report, f.name) for f in fields(CoreAuditReport)}
        return cls(**values, folder=folder, mlflow_run=mlflow_run)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failing(self) -> tuple[Any, ...]:
        """The findings at or above ``fail_on``: what makes the verdict ``fail``."""
        return tuple(f for f in self.findings if f.severity.at_least(self.fail_on))

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write the report folder (``report.json``, ``report.html``, ``report.md``, SARIF, JUnit,
        charts) to ``folder``, as ``lossaudit audit --out`` does; returns file name -> path.

        Raises :class:`~lossaudit.errors.BadInputError` when the folder cannot be written.
        """
        from lossaudit.sinks.local import write_report_folder

        return write_report_folder(self, Path(folder))

    def raise_for_verdict(self) -> AuditReport:
        """Raise :class:`~lossaudit.errors.AuditFailedError` when the verdict is ``fail``; return
        the report otherwise (for ``report = lossaudit.audit(...).raise_for_verdict()``)."""
        if self.verdict == "fail":
            raise AuditFailedError(failure_line(self), report=self)
        return self

    def to_html(self) -> str:
        """The self-contained page of ``report.html``."""
        from lossaudit.formats.html import render_html

        return render_html(self)

    def _repr_html_(self) -> str:
        """The ``report.html`` page inline in a notebook, in a frame so its styles stay its own."""
        page = html.escape(self.to_html(), quote=True)
        return (
            f'<iframe srcdoc="{page}" title="lossaudit report" sandbox '
            f'style="width: 100%; height: {NOTEBOOK_HEIGHT_PX}px; border: 1px solid #d0d7de;"></iframe>'
        )

    def __str__(self) -> str:
        from lossaudit.formats.text import render_report

        return render_report(self)

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{self.count(s)} {s.value}" for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
        )
        codes = ", ".join(self.codes) or "no findings"
        accuracy = None if self.metrics is None else self.metrics.values.get("accuracy")
        shown = "" if accuracy is None else f", accuracy {accuracy:.4f}"
        return f"<AuditReport {self.verdict}: {codes} ({counts}){shown}>"


def failure_line(report: CoreAuditReport) -> str:
    """One line naming what fails a report: each failing finding's code, severity and message."""
    failing = [f for f in report.findings if f.severity.at_least(report.fail_on)]
    if not failing:
        return f"the audit passed (fail on {report.fail_on.value})"
    listed = "; ".join(f"{f.code} {f.severity.value}: {f.message}" for f in failing)
    lines = [line.strip() for line in failing[0].fix.splitlines() if line.strip()]
    code = [line for line in lines if not line.startswith("#")]
    return f"{listed} Fix: {(code or lines or ['see lossaudit explain ' + failing[0].code])[0]}"
