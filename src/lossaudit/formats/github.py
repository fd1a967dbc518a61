"""GitHub Actions workflow commands: one annotation per finding, on the file and line it flags.

``::error file=train.py,line=16,col=1,endLine=16,endColumn=84,title=LA103 ...::message`` makes
GitHub show the finding on that line of the pull request's diff (error, warning or notice by
severity). A finding on a model or a head, which has no source line, is an annotation without a
file. Files that could not be parsed are warnings on their line.

Escaping follows the runner's rules for workflow commands (``%``, CR and LF in the message;
also ``:`` and ``,`` in properties), after :func:`~lossaudit.formats.sanitize.printable` has made
every control character visible: no text from a file name or a message can end the command or
start another one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lossaudit.core.findings import Finding, Severity
from lossaudit.core.report import AuditReport
from lossaudit.formats.sanitize import printable

LEVELS: Mapping[Severity, str] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "notice",
}


def escape_data(text: str) -> str:
    """A command's message: ``%``, CR and LF escaped (line breaks survive as ``%0A``)."""
    text = printable(text, newlines=True)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command's property value: also ``:`` and ``,``, which end a property."""
    return escape_data(printable(text)).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, properties: dict[str, Any], message: str) -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{level} {props}::{escape_data(message)}" if props else f"::{level}::{escape_data(message)}"


def annotation(finding: Finding) -> str:
    """One finding as a workflow command."""
    properties: dict[str, Any] = {}
    location = finding.location
    if location is not None:
        properties.update(
            file=location.path,
            line=location.line,
            col=location.column,
            endLine=location.end_line,
            endColumn=location.end_column,
        )
    properties["title"] = f"{finding.code} {finding.name}"
    message = f"{finding.title}: {finding.message}"
    if finding.suggestions:
        message += "\n\nfix:\n" + "\n".join(edit.replacement for edit in finding.suggestions)
    else:
        message += f"\n\nfix:\n{finding.fix}"
    return _command(LEVELS[finding.severity], properties, message)


def render_github(report: AuditReport) -> str:
    """Every finding and every file that could not be parsed as a workflow command, and a
    last plain line with the verdict."""
    lines = [annotation(f) for f in report.findings]
    not_parsed = report.context.get("not_parsed") or []
    for notice in not_parsed if isinstance(not_parsed, list) else []:
        if not isinstance(notice, dict):
            continue
        properties: dict[str, Any] = {"file": notice.get("path", "")}
        if notice.get("line") is not None:
            properties["line"] = notice["line"]
        if notice.get("column") is not None:
            properties["col"] = notice["column"]
        properties["title"] = "lossaudit could not check this file"
        lines.append(_command("warning", properties, str(notice.get("message", ""))))
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in reversed(Severity))
    lines.append(
        f"lossaudit: verdict {printable(report.verdict)} ({counts}; failing at {report.fail_on.value})"
    )
    return "\n".join(lines)
