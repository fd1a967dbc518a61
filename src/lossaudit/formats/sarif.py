"""SARIF 2.1.0 log of a report, in the subset GitHub code scanning accepts.

What GitHub needs beyond the OASIS schema (its "SARIF support for code scanning" page): every
result has ``ruleId``, ``message.text`` and a ``physicalLocation`` whose ``artifactLocation.uri``
is a file path (relative to the repository root, or a ``file://`` URI inside the checkout), and
``partialFingerprints`` so that re-running the audit does not open duplicate alerts. A finding on
a training script (``lossaudit check train.py``) points at its call: file, line and column as a
``region``, with the fix as a SARIF ``fix`` replacing those lines. An audit of a model has no
source line, so its results point at line 1 of the audited model, spec or labels file; when no
file is known the caller's ``artifact_uri`` (or a fixed pseudo-path) stands in. Files that could
not be parsed are ``toolExecutionNotifications``.

Report text is JSON-escaped by :mod:`json`; beyond that, result messages are plain ``text`` (never
``markdown``, which GitHub renders) made by :func:`message_text`, and every artifact URI is a
valid URI reference: paths percent-encoded (the bytes of a name that is not UTF-8 included),
other schemes only from :data:`URI_SCHEMES` (never ``javascript:``), anything else a pseudo-path.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lossaudit.core.catalogue import RULES
from lossaudit.core.findings import Finding, Rule, Severity, SourceLocation
from lossaudit.core.report import AuditReport
from lossaudit.formats.sanitize import printable

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://pypi.org/project/lossaudit/"
FINGERPRINT_KEY = "lossauditFinding/v1"
DEFAULT_ARTIFACT_URI = "lossaudit"
"""Stand-in location when neither the report nor the caller names a file."""
SRCROOT = "%SRCROOT%"

LEVELS: Mapping[Severity, str] = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
ARTIFACT_CONTEXT_KEYS = (
    "model_path",
    "model_file",
    "model",
    "spec",
    "spec_file",
    "head_spec",
    "pipeline_file",
    "labels_file",
    "data",
    "data_file",
    "predictions_file",
)
"""Report context keys that may name the audited artifact, most specific first."""
_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")  # 2+ letters: "C:\..." is a path
URI_SCHEMES = frozenset({"http", "https", "models", "runs", "mlflow-artifacts", "s3", "gs", "dbfs", "hdfs"})
"""Non-file schemes a caller's ``artifact_uri`` may keep; any other becomes a pseudo-path."""
_PATH_SAFE = "/-._~"
_URI_SAFE = "/:-._~"
_EMBEDDED_LINK = re.compile(r"\]\(")
_LINK_CHARS = re.compile(r"([\\\[\]])")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _unicode(value: Any) -> Any:
    """``value`` with every string a valid Unicode string: a lone surrogate (a name that was not
    UTF-8, in the evidence) becomes its escape ``\\udcxx``, which JSON readers all accept."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", value)
    if isinstance(value, dict):
        return {_unicode(k): _unicode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unicode(v) for v in value]
    return value


def message_text(text: str) -> str:
    """A result message as SARIF plain text that no viewer turns into a link or markup.

    Control and bidirectional characters become visible escapes (see
    :func:`~lossaudit.formats.sanitize.printable`; line breaks are kept). A plain-text SARIF
    message may embed links, ``[text](target)`` (SARIF 2.1.0, 3.11.6); when the text holds that
    pattern (a metric named ``[x](javascript:...)``), its ``\\``, ``[`` and ``]`` are
    backslash-escaped, as the standard escapes them, so it reads as text.
    """
    text = printable(text, newlines=True)
    if _EMBEDDED_LINK.search(text):
        text = _LINK_CHARS.sub(r"\\\1", text)
    return text


def pascal_case(name: str) -> str:
    """``categorical-crossentropy-on-one-unit`` -> ``CategoricalCrossentropyOnOneUnit``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_\s]+", name) if part)


def _candidate_text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, Mapping):
        for key in ("path", "file", "uri"):
            inner = value.get(key)
            if isinstance(inner, str) and inner.strip():
                return inner.strip()
    return None


def _is_file_reference(text: str) -> bool:
    match = _URI_SCHEME.match(text)
    return match is None or match.group(1).lower() == "file"


def file_uri(text: str, repo_root: Path) -> tuple[str, bool]:
    """(URI, is relative) of a file path or ``file:`` URI: relative to ``repo_root`` when inside it.

    A relative path is taken relative to the current directory, as the CLI received it.
    """
    if text.lower().startswith("file:"):
        from urllib.parse import unquote, urlparse

        text = unquote(urlparse(text).path)
    path = Path(text).expanduser()
    absolute = path if path.is_absolute() else Path.cwd() / path
    absolute = Path(os.path.normpath(absolute))
    try:
        relative = absolute.relative_to(Path(os.path.normpath(repo_root.absolute())))
    except ValueError:
        given = Path(os.path.normpath(path))
        if path.is_absolute() or given.parts[:1] == ("..",):
            return absolute.as_uri(), False
        # A relative path from another working directory: as typed, it is most likely relative
        # to the repository root (CI runs from there).
        relative = given
    return quote(relative.as_posix(), safe=_PATH_SAFE, errors="surrogateescape"), True


def _pseudo_path(uri: str) -> str:
    """``models:/churn/3`` -> ``models/churn/3``: a stable, file-like name for a non-file URI."""
    cleaned = re.sub(r"[^A-Za-z0-9._/\-]+", "_", uri.replace(":/", "/").replace(":", "/"))
    return re.sub(r"/{2,}", "/", cleaned).strip("/") or DEFAULT_ARTIFACT_URI


def artifact_location(
    report: AuditReport, artifact_uri: str | None = None, repo_root: str | Path | None = None
) -> dict[str, str]:
    """The ``artifactLocation`` every result points at.

    Order: a file named in the report context (see :data:`ARTIFACT_CONTEXT_KEYS`), then
    ``artifact_uri``, then a model URI of the context (``models:/name/1``) made into a path,
    then :data:`DEFAULT_ARTIFACT_URI`. ``repo_root`` defaults to ``$GITHUB_WORKSPACE`` or the
    current directory.
    """
    root = Path(repo_root or os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
    other_uris: list[str] = []
    for key in ARTIFACT_CONTEXT_KEYS:
        text = _candidate_text(report.context.get(key))
        if text is None:
            continue
        if _is_file_reference(text):
            uri, relative = file_uri(text, root)
            return {"uri": uri, "uriBaseId": SRCROOT} if relative else {"uri": uri}
        other_uris.append(text)
    if artifact_uri:
        if _is_file_reference(artifact_uri):
            uri, relative = file_uri(artifact_uri, root)
            return {"uri": uri, "uriBaseId": SRCROOT} if relative else {"uri": uri}
        match = _URI_SCHEME.match(artifact_uri)
        if match is not None and match.group(1).lower() in URI_SCHEMES:
            return {"uri": quote(artifact_uri, safe=_URI_SAFE, errors="surrogateescape")}
        other_uris.insert(0, artifact_uri)
    if other_uris:
        return {"uri": _pseudo_path(other_uris[0]), "uriBaseId": SRCROOT}
    return {"uri": DEFAULT_ARTIFACT_URI, "uriBaseId": SRCROOT}


def _help_uri(rule: Rule) -> str | None:
    for ref in rule.references:
        first = ref.split()[0] if ref.split() else ""
        if first.startswith(("https://", "http://")):
            return first
    return None


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    """A ``reportingDescriptor`` for one catalogue rule."""
    descriptor: dict[str, Any] = {
        "id": rule.code,
        "name": pascal_case(rule.name),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.why},
        "help": {
            "text": rule.fix,
            "markdown": f"**{rule.title}**\n\n{rule.why}\n\n**Fix**\n\n```python\n{rule.fix}\n```",
        },
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {
            "severity": rule.severity.value,
            "families": [f.value for f in rule.families],
            "stage": rule.stage,
            "kebabName": rule.name,
            "references": list(rule.references),
            "tags": ["lossaudit", "keras", rule.stage],
        },
    }
    help_uri = _help_uri(rule)
    if help_uri is not None:
        descriptor["helpUri"] = help_uri
    return descriptor


def _finding_descriptor(finding: Finding) -> dict[str, Any]:
    """A descriptor for a finding whose code is not in the catalogue (a plug-in's, say)."""
    return {
        "id": finding.code,
        "name": pascal_case(finding.name),
        "shortDescription": {"text": finding.title},
        "help": {"text": finding.fix},
        "defaultConfiguration": {"level": LEVELS[finding.severity]},
        "properties": {"severity": finding.severity.value, "tags": ["lossaudit"]},
    }


def fingerprint(finding: Finding) -> str:
    """Stable across runs of the same audit: the code and the message, hashed. A finding in a
    source file adds its file and the text of its line (not the line number: a finding stays the
    same alert when lines above it move)."""
    text = f"{finding.code}\n{finding.message}"
    if finding.location is not None:
        text += f"\n{finding.location.path}\n{finding.evidence.get('source_line', '')}"
    # surrogatepass: a message quoting a name that is not UTF-8 hashes too (valid text unchanged).
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _artifact(path: str, root: Path) -> dict[str, str]:
    uri, relative = file_uri(path, root)
    return {"uri": uri, "uriBaseId": SRCROOT} if relative else {"uri": uri}


def source_region(location: SourceLocation) -> dict[str, int]:
    """A SARIF ``region`` (1-based lines and columns, the end column exclusive)."""
    region = {"startLine": location.line, "startColumn": location.column}
    if location.end_line >= location.line:
        region["endLine"] = location.end_line
        if location.end_line > location.line or location.end_column > location.column:
            region["endColumn"] = location.end_column
    return region


def _fixes(finding: Finding, root: Path) -> list[dict[str, Any]]:
    """The finding's source edits as SARIF fixes (files only: a notebook's lines are JSON)."""
    changes = []
    for edit in finding.suggestions:
        if edit.location.cell is not None:
            return []
        changes.append(
            {
                "artifactLocation": _artifact(edit.location.path, root),
                "replacements": [
                    {
                        "deletedRegion": {"startLine": edit.first_line, "endLine": edit.last_line},
                        "insertedContent": {"text": edit.replacement},
                    }
                ],
            }
        )
    if not changes:
        return []
    return [{"description": {"text": message_text(finding.fix)}, "artifactChanges": changes}]


def _notifications(report: AuditReport, root: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    not_parsed = report.context.get("not_parsed") or []
    for notice in not_parsed if isinstance(not_parsed, list) else []:
        if not isinstance(notice, dict) or not isinstance(notice.get("path"), str):
            continue
        physical: dict[str, Any] = {"artifactLocation": _artifact(notice["path"], root)}
        if isinstance(notice.get("line"), int) and notice["line"] >= 1:
            region: dict[str, int] = {"startLine": notice["line"]}
            if isinstance(notice.get("column"), int) and notice["column"] >= 1:
                region["startColumn"] = notice["column"]
            physical["region"] = region
        out.append(
            _unicode(
                {
                    "level": "warning",
                    "message": {"text": message_text(str(notice.get("message", "")))},
                    "locations": [{"physicalLocation": physical}],
                }
            )
        )
    return out


def render_sarif(
    report: AuditReport,
    artifact_uri: str | None = None,
    *,
    repo_root: str | Path | None = None,
    category: str | None = None,
) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log (a dict; ``json.dumps`` it to write ``findings.sarif``).

    Parameters
    ----------
    report : AuditReport
    artifact_uri : str, optional
        The file results point at when the report context names none (e.g. the pipeline file).
    repo_root : str or Path, optional
        Paths inside it are written relative to it; default ``$GITHUB_WORKSPACE`` or the cwd.
    category : str, optional
        Written as ``automationDetails.id`` (``lossaudit/<category>/``): GitHub keeps one set of
        alerts per category, so audits of several models in one workflow need distinct ones.
    """
    rules = [rule_descriptor(rule) for rule in RULES]
    index = {rule.code: i for i, rule in enumerate(RULES)}
    for finding in report.findings:
        if finding.code not in index:
            index[finding.code] = len(rules)
            rules.append(_unicode(_finding_descriptor(finding)))
    location = artifact_location(report, artifact_uri, repo_root)
    root = Path(repo_root or os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
    finding_dicts = report.to_dict()["findings"]  # evidence already made JSON-safe
    results = []
    for finding, as_dict in zip(report.findings, finding_dicts, strict=True):
        properties: dict[str, Any] = {"severity": finding.severity.value, "evidence": as_dict["evidence"]}
        if "head_fix" in as_dict:
            properties["headFix"] = as_dict["head_fix"]
        message = finding.message
        physical: dict[str, Any] = {"artifactLocation": dict(location), "region": {"startLine": 1}}
        if finding.location is not None:
            physical = {
                "artifactLocation": _artifact(finding.location.path, root),
                "region": source_region(finding.location),
            }
            if finding.location.cell is not None:
                properties["cell"] = finding.location.cell
                properties["cellLine"] = finding.location.cell_line
            if finding.suggestions:
                message += "\n\nfix:\n" + "\n".join(edit.replacement for edit in finding.suggestions)
        result: dict[str, Any] = {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "kind": "fail",
            "level": LEVELS[finding.severity],
            "message": {"text": message_text(message)},
            "locations": [{"physicalLocation": physical}],
            "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding)},
            "properties": properties,
        }
        fixes = _fixes(finding, root) if finding.location is not None else []
        if fixes:
            result["fixes"] = fixes
        results.append(_unicode(result))
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "lossaudit",
                "version": report.tool_version,
                "semanticVersion": report.tool_version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "invocations": [
            {
                "executionSuccessful": True,
                "properties": {"command": report.command, "verdict": report.verdict},
                **({"toolExecutionNotifications": notes} if (notes := _notifications(report, root)) else {}),
            }
        ],
        "results": results,
        "columnKind": "utf16CodeUnits",
        "properties": {
            "verdict": report.verdict,
            "failOn": report.fail_on.value,
            "createdAt": report.created_at,
            "reportSchemaVersion": report.schema_version,
        },
    }
    if category:
        run["automationDetails"] = {"id": f"lossaudit/{printable(category).strip('/')}/"}
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}
