"""GitHub-flavoured Markdown report, fit for ``$GITHUB_STEP_SUMMARY`` and pull-request comments.

Order: verdict, findings, head and labels, recomputed metrics, reported vs recomputed, confusion
matrix, pipeline stages, retrain, fixes. Only tables, lists, ``<details>`` and fenced code: what
GitHub renders in a job summary.

GitHub renders raw HTML inside Markdown, so no report text reaches the page as it is: names (file,
metric, layer, model, pipeline) go through :func:`code`, prose that may quote them (finding
messages, explanations, summaries) through :func:`text`, the one HTML block (``<details>``) through
:func:`html.escape`, and code blocks get a fence longer than any backtick run inside them. Each
starts with :func:`~lossaudit.formats.sanitize.printable`. No ``<`` from report data is left raw.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lossaudit.core.findings import Severity
from lossaudit.core.report import AuditReport
from lossaudit.formats.plots import comparison_reference, confusion_axes, difference_text
from lossaudit.formats.sanitize import printable

MAX_MATRIX_CLASSES = 20
"""A confusion matrix wider than this is left to report.html and confusion_matrix.png."""
_SEVERITY_MARK = {Severity.ERROR: "🔴 error", Severity.WARNING: "🟠 warning", Severity.INFO: "🔵 info"}
_STATUS_MARK = {
    "agrees": "✅ agrees",
    "wrong_definition": "❌ wrong definition",
    "unexplained": "❌ unexplained",
    "consistent": "✅ within sampling error",
    "inconsistent": "❌ beyond sampling error",
    "not_compared": "➖ not compared",
}


_MD_PUNCTUATION = re.compile(r"([\\`*\[\]|~#!$])|(?<![^\W_])_|_(?![^\W_])")
"""Backslash-escaped in prose: code, emphasis, links and images, table pipes, strikethrough,
headings, GitHub math (``$``); ``_`` unless between two letters or digits, where CommonMark never
reads it as emphasis (``y_true`` stays readable). ``<``, ``>``, ``&`` become HTML entities."""
_LINE_START = re.compile(r"^(?:[-+=](?=[\s=-]|$)|(\d{1,9})([.)])(?=\s|$))")
"""What starts a list item, a thematic break, a setext underline or an ordered list item at the
start of a line (``-0.5`` and ``0.75`` start none)."""
_CODE_SPAN_UNSAFE = re.compile(r"[<>|]|^\s*$")
"""Names a backtick code span cannot carry everywhere: a raw ``<`` (kept out of the file whatever
the context), a pipe (splits a table row, and ``\\|`` is literal outside tables), blank text."""


def _escape_line_start(match: re.Match[str]) -> str:
    if match.group(1) is not None:  # "1." -> "1\.": a backslash before a digit would show
        return f"{match.group(1)}\\{match.group(2)}"
    return "\\" + match.group(0)


def text(value: Any) -> str:
    """Report text (prose that may quote user names) as inert inline Markdown, on one line.

    Control characters become visible escapes, ``&``, ``<``, ``>`` HTML entities, Markdown
    punctuation is backslash-escaped and line breaks are ``<br>``: safe in a table cell, a list
    item, a paragraph and inside ``<code>``.
    """
    escaped = html.escape(printable(value, newlines=True), quote=False)
    escaped = _MD_PUNCTUATION.sub(lambda m: "\\" + m.group(0), escaped)
    escaped = "<br>".join(part.strip() for part in escaped.split("\n"))
    return _LINE_START.sub(_escape_line_start, escaped)


def cell(value: Any) -> str:
    """Text safe inside a Markdown table cell (see :func:`text`): pipes escaped, line breaks as
    ``<br>``, tags as entities."""
    return text(value)


def code(value: Any) -> str:
    """A name (file, metric, layer, model) as inline code, safe anywhere (table cells included).

    A backtick code span whose fence is longer than any backtick run in the name (padded with
    spaces when the name starts or ends with a backtick or a space); a name a code span cannot
    carry everywhere (see ``_CODE_SPAN_UNSAFE``) is ``<code>`` around :func:`text`. Line breaks
    and control characters are shown as escapes.
    """
    name = printable(value)
    if _CODE_SPAN_UNSAFE.search(name):
        return f"<code>{text(name)}</code>"
    longest = max((len(run) for run in re.findall(r"`+", name)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if name[0] in "` " or name[-1] in "` " else ""
    return f"{fence}{pad}{name}{pad}{fence}"


def code_block(body: str, language: str = "") -> list[str]:
    """A fenced code block whose fence no line of ``body`` can close."""
    body = printable(body, newlines=True)
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=2)
    fence = "`" * (longest + 1)
    return [fence + language, body, fence]


def number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table of cells that are Markdown already (made by :func:`text`, :func:`code`,
    :func:`number` or this module); ``align`` has one letter per column (``l``, ``r``)."""
    marks = [("---:" if (align[i : i + 1] == "r") else "---") for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def verdict_line(report: AuditReport) -> str:
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in reversed(Severity))
    mark = "❌ FAIL" if report.verdict == "fail" else "✅ PASS"
    return f"**{mark}** — {counts}; fails at {code(report.fail_on.value)} or above"


def head_lines(report: AuditReport) -> list[str]:
    head = report.head
    if head is None:
        return ["- **Head:** unknown"]
    loss = "none"
    if head.loss is not None:
        loss = code(head.loss.name) + (" (from_logits=True)" if head.loss.from_logits else "")
        if head.loss.label_smoothing:
            loss += f", label_smoothing={head.loss.label_smoothing:g}"
    chain = " → ".join(text(a) for a in head.activation_chain)
    metrics = ", ".join(code(m) for m in head.metrics) or "none"
    lines = [
        f"- **Head:** {head.units} unit(s), {chain}; loss {loss}; metrics {metrics}; "
        f"Keras family {code(head.keras_family.value)} (from {text(head.source)})"
    ]
    for res in report.metric_resolutions:
        if res.resolved is None:
            continue
        assumed = " (label shape assumed from the loss)" if res.labels_assumed else ""
        lines.append(f"- {code(res.declared)} resolves to {code(res.resolved)}: {text(res.because)}{assumed}")
    return lines


def labels_lines(report: AuditReport) -> list[str]:
    if report.labels is None:
        return []
    return [f"- **Labels:** {text(report.labels.describe())}"]


def context_lines(context: Mapping[str, Any]) -> list[str]:
    """Scalar context entries (model, data, run ids); nested ones (retrain) have their own section."""
    lines = []
    for key, value in context.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            lines.append(f"- **{text(key)}:** {code(value)}")
        elif isinstance(value, Mapping) and key != "retrain":
            scalars = {k: v for k, v in value.items() if isinstance(v, str | int | float | bool)}
            if scalars:
                pairs = ", ".join(f"{text(k)} {code(v)}" for k, v in scalars.items())
                lines.append(f"- **{text(key)}:** {pairs}")
    return lines


def _findings(report: AuditReport) -> list[str]:
    if not report.findings:
        return ["No findings."]
    rows = [
        (code(f.code), _SEVERITY_MARK[f.severity], text(f.title), text(f.message)) for f in report.findings
    ]
    return table(("code", "severity", "title", "message"), rows)


def _metrics(report: AuditReport) -> list[str]:
    m = report.metrics
    if m is None:
        return []
    out = [f"### Recomputed metrics ({text(m.task)}, n = {m.n_samples}, K = {m.n_classes})", ""]
    rows = [
        (code(name), number(value), text(m.definitions.get(name, ""))) for name, value in m.values.items()
    ]
    out += table(("metric", "value", "how"), rows, "lrl")
    if m.per_class and len(m.per_class) <= MAX_MATRIX_CLASSES:
        out += ["", "<details><summary>Per class</summary>", ""]
        out += table(
            ("class", "precision", "recall", "f1", "support"),
            (
                (text(c.label), number(c.precision), number(c.recall), number(c.f1), str(c.support))
                for c in m.per_class
            ),
            "rrrrr",
        )
        out += ["", "</details>"]
    for note in m.notes:
        out.append(f"\n> note: {text(note)}")
    return out


def _comparisons(report: AuditReport) -> list[str]:
    if not report.comparisons:
        return []
    rows = []
    for comp in report.comparisons:
        reference = comparison_reference(comp)
        recomputed = "" if reference is None else f"{reference[0]:.4f} ({text(reference[1])})"
        difference = "" if reference is None else difference_text(comp.reported, reference[0])
        rows.append(
            (
                code(comp.metric),
                text(comp.source),
                number(comp.reported),
                recomputed,
                difference,
                _STATUS_MARK.get(comp.status) or text(comp.status),
                text(comp.explanation),
            )
        )
    header = ("metric", "source", "reported", "recomputed", "difference", "status", "explanation")
    return ["### Reported vs recomputed", "", *table(header, rows, "llrlrll")]


def _confusion(report: AuditReport) -> list[str]:
    axes = confusion_axes(report)
    if axes is None:
        return []
    rows, cols, counts = axes
    if max(len(rows), len(cols)) > MAX_MATRIX_CLASSES:
        return ["### Confusion matrix", "", f"{len(rows)} × {len(cols)}: see report.html."]
    multilabel = report.metrics is not None and report.metrics.task == "multilabel"
    corner = "label" if multilabel else "true \\\\ predicted"
    title = "### Confusion per label" if multilabel else "### Confusion matrix"
    body = [(f"**{text(r)}**", *(str(c) for c in row)) for r, row in zip(rows, counts, strict=True)]
    return [title, "", *table((corner, *(text(c) for c in cols)), body, "l" + "r" * len(cols))]


def _stages(report: AuditReport) -> list[str]:
    if not report.stages:
        return []
    total = sum(s.seconds for s in report.stages)
    rows = [(text(s.name), text(s.status), f"{s.seconds:.2f}", text(s.summary)) for s in report.stages]
    rows.append(("**total**", "", f"**{total:.2f}**", ""))
    return ["### Stages", "", *table(("stage", "status", "seconds", "summary"), rows, "llrl")]


def retrain_summary(context: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(summary sentence, other scalar fields) of ``context["retrain"]``, when a retrain ran."""
    retrain = context.get("retrain")
    if not isinstance(retrain, Mapping):
        return None
    summary = str(retrain.get("summary") or "")
    extra = {k: v for k, v in retrain.items() if k != "summary" and isinstance(v, str | int | float)}
    if not summary and not extra:
        return None
    return summary, extra


def _retrain(report: AuditReport) -> list[str]:
    found = retrain_summary(report.context)
    if found is None:
        return []
    summary, extra = found
    out = ["### Retrain with the fixed head", ""]
    if summary:
        out.append(text(summary))
    if extra:
        out += ["", *table(("", "value"), ((text(k), code(v)) for k, v in extra.items()))]
    return out


def _fixes(report: AuditReport) -> list[str]:
    seen: dict[str, tuple[str, str]] = {}
    for f in report.findings:
        seen.setdefault(f.code, (f.title, f.fix))
    if not seen:
        return []
    out = ["### Fixes", ""]
    for finding_code, (title, fix) in seen.items():
        # An HTML block: Markdown is not parsed up to the blank line, so HTML escaping only.
        summary = f"<code>{_html(finding_code)}</code> {_html(title)}"
        out += [f"<details><summary>{summary}</summary>", "", *code_block(fix, "python"), "", "</details>"]
    return out


def _html(value: Any) -> str:
    return html.escape(printable(value), quote=True)


def render_markdown(report: AuditReport) -> str:
    """The whole report as GitHub-flavoured Markdown.

    Parameters
    ----------
    report : AuditReport

    Returns
    -------
    str
        Ends with a newline; append it to ``$GITHUB_STEP_SUMMARY`` as it is.
    """
    model = report.context.get("model") or report.context.get("name")
    subject = f": {code(model)}" if isinstance(model, str) and model else ""
    title = f"## lossaudit {text(report.command)}{subject}"
    out = [title, "", verdict_line(report), "", "### Findings", "", *_findings(report), ""]
    out += [*head_lines(report), *labels_lines(report), *context_lines(report.context)]
    for section in (_metrics, _comparisons, _confusion, _stages, _retrain, _fixes):
        lines = section(report)
        if lines:
            out += ["", *lines]
    out += ["", f"<sub>lossaudit {text(report.tool_version)} · {text(report.created_at)}</sub>"]
    return "\n".join(out) + "\n"
