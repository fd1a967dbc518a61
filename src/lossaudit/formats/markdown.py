"""GitHub-flavoured Markdown report, fit for ``$GITHUB_STEP_SUMMARY`` and pull-request comments.

Order: verdict, findings, head and labels, recomputed metrics, reported vs recomputed, confusion
matrix, pipeline stages, retrain, fixes. Only tables, lists, ``<details>`` and fenced code: what
GitHub renders in a job summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lossaudit.core.findings import Severity
from lossaudit.core.report import AuditReport
from lossaudit.formats.plots import comparison_reference, confusion_axes, difference_text

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


def cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, line breaks as ``<br>``."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return "<br>".join(part.strip() for part in text.splitlines()) if "\n" in text else text


def number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` has one letter per column (``l``, ``r``), default left."""
    marks = [("---:" if (align[i : i + 1] == "r") else "---") for i in range(len(header))]
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def verdict_line(report: AuditReport) -> str:
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in reversed(Severity))
    mark = "❌ FAIL" if report.verdict == "fail" else "✅ PASS"
    return f"**{mark}** — {counts}; fails at `{report.fail_on.value}` or above"


def head_lines(report: AuditReport) -> list[str]:
    head = report.head
    if head is None:
        return ["- **Head:** unknown"]
    loss = "none"
    if head.loss is not None:
        loss = f"`{head.loss.name}`" + (" (from_logits=True)" if head.loss.from_logits else "")
        if head.loss.label_smoothing:
            loss += f", label_smoothing={head.loss.label_smoothing:g}"
    chain = " → ".join(head.activation_chain)
    metrics = ", ".join(f"`{m}`" for m in head.metrics) or "none"
    lines = [
        f"- **Head:** {head.units} unit(s), {chain}; loss {loss}; metrics {metrics}; "
        f"Keras family `{head.keras_family.value}` (from {head.source})"
    ]
    for res in report.metric_resolutions:
        if res.resolved is None:
            continue
        assumed = " (label shape assumed from the loss)" if res.labels_assumed else ""
        lines.append(f"- `{res.declared}` resolves to `{res.resolved}`: {res.because}{assumed}")
    return lines


def labels_lines(report: AuditReport) -> list[str]:
    if report.labels is None:
        return []
    return [f"- **Labels:** {report.labels.describe()}"]


def context_lines(context: Mapping[str, Any]) -> list[str]:
    """Scalar context entries (model, data, run ids); nested ones (retrain) have their own section."""
    lines = []
    for key, value in context.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            lines.append(f"- **{key}:** `{value}`")
        elif isinstance(value, Mapping) and key != "retrain":
            scalars = {k: v for k, v in value.items() if isinstance(v, str | int | float | bool)}
            if scalars:
                lines.append(f"- **{key}:** " + ", ".join(f"{k} `{v}`" for k, v in scalars.items()))
    return lines


def _findings(report: AuditReport) -> list[str]:
    if not report.findings:
        return ["No findings."]
    rows = [(f"`{f.code}`", _SEVERITY_MARK[f.severity], f.title, f.message) for f in report.findings]
    return table(("code", "severity", "title", "message"), rows)


def _metrics(report: AuditReport) -> list[str]:
    m = report.metrics
    if m is None:
        return []
    out = [f"### Recomputed metrics ({m.task}, n = {m.n_samples}, K = {m.n_classes})", ""]
    rows = [(f"`{name}`", number(value), m.definitions.get(name, "")) for name, value in m.values.items()]
    out += table(("metric", "value", "how"), rows, "lrl")
    if m.per_class and len(m.per_class) <= MAX_MATRIX_CLASSES:
        out += ["", "<details><summary>Per class</summary>", ""]
        out += table(
            ("class", "precision", "recall", "f1", "support"),
            ((c.label, number(c.precision), number(c.recall), number(c.f1), c.support) for c in m.per_class),
            "rrrrr",
        )
        out += ["", "</details>"]
    for note in m.notes:
        out.append(f"\n> note: {note}")
    return out


def _comparisons(report: AuditReport) -> list[str]:
    if not report.comparisons:
        return []
    rows = []
    for comp in report.comparisons:
        reference = comparison_reference(comp)
        recomputed = "" if reference is None else f"{reference[0]:.4f} ({reference[1]})"
        difference = "" if reference is None else difference_text(comp.reported, reference[0])
        rows.append(
            (
                f"`{comp.metric}`",
                comp.source,
                number(comp.reported),
                recomputed,
                difference,
                _STATUS_MARK.get(comp.status, comp.status),
                comp.explanation,
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
    corner = "label" if multilabel else "true \\ predicted"
    title = "### Confusion per label" if multilabel else "### Confusion matrix"
    body = [(f"**{r}**", *row) for r, row in zip(rows, counts, strict=True)]
    return [title, "", *table((corner, *cols), body, "l" + "r" * len(cols))]


def _stages(report: AuditReport) -> list[str]:
    if not report.stages:
        return []
    total = sum(s.seconds for s in report.stages)
    rows = [(s.name, s.status, f"{s.seconds:.2f}", s.summary) for s in report.stages]
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
        out.append(summary)
    if extra:
        out += ["", *table(("", "value"), ((k, v) for k, v in extra.items()))]
    return out


def _fixes(report: AuditReport) -> list[str]:
    seen: dict[str, tuple[str, str]] = {}
    for f in report.findings:
        seen.setdefault(f.code, (f.title, f.fix))
    if not seen:
        return []
    out = ["### Fixes", ""]
    for code, (title, fix) in seen.items():
        out += [
            f"<details><summary><code>{code}</code> {cell(title)}</summary>",
            "",
            "```python",
            fix,
            "```",
            "",
        ]
        out.append("</details>")
    return out


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
    title = f"## lossaudit {report.command}" + (f": `{model}`" if isinstance(model, str) and model else "")
    out = [title, "", verdict_line(report), "", "### Findings", "", *_findings(report), ""]
    out += [*head_lines(report), *labels_lines(report), *context_lines(report.context)]
    for section in (_metrics, _comparisons, _confusion, _stages, _retrain, _fixes):
        lines = section(report)
        if lines:
            out += ["", *lines]
    out += ["", f"<sub>lossaudit {report.tool_version} · {report.created_at}</sub>"]
    return "\n".join(out) + "\n"
