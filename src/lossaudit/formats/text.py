"""Plain-text console output: findings first, then numbers, then the verdict.

Names from the report (file, metric, layer and model names) are printed through
:func:`~lossaudit.formats.sanitize.printable` on one line, prose that quotes them (messages,
explanations, notes) with its line breaks kept, and the whole page once more at the end: no escape
sequence, carriage return or other control character from a file name reaches the terminal, and a
name cannot start a line of its own (``model.keras\nverdict: pass``).
"""

from __future__ import annotations

import textwrap
from typing import Any

from lossaudit.core.findings import Rule, Severity, SourceEdit, SourceLocation
from lossaudit.core.report import AuditReport
from lossaudit.formats.sanitize import printable

_WIDTH = 100
_NOTE_KEYS = ("model_notes", "notes")
_HEADLINE_METRICS = (
    "accuracy",
    "subset_accuracy",
    "balanced_accuracy",
    "majority_baseline",
    "f1_macro",
    "precision_macro",
    "recall_macro",
    "log_loss",
    "roc_auc",
    "brier_score",
    "top_2_accuracy",
    "top_3_accuracy",
)


def _one(value: Any) -> str:
    """A name or one-line value: control characters and line breaks as escapes."""
    return printable(value)


def _lines(value: Any) -> str:
    """Prose: control characters as escapes, line breaks kept."""
    return printable(value, newlines=True)


def _indent(text: str, prefix: str = "      ") -> str:
    lines: list[str] = []
    for para in _lines(text).split("\n"):
        wrapped = textwrap.wrap(para, _WIDTH - len(prefix)) or [""]
        lines.extend(prefix + w for w in wrapped)
    return "\n".join(lines)


def describe_head(report: AuditReport) -> str:
    head = report.head
    if head is None:
        return "head: unknown"
    loss = "no loss"
    if head.loss is not None:
        loss = _one(head.loss.name) + (" (from_logits=True)" if head.loss.from_logits else "")
    chain = " -> ".join(_one(a) for a in head.activation_chain)
    metrics = ", ".join(_one(m) for m in head.metrics) or "none"
    return (
        f"head: {head.units} unit(s), {chain}, {loss}; metrics: {metrics}; "
        f"Keras family: {head.keras_family.value}"
    )


def render_report(report: AuditReport) -> str:
    """The report as plain text for a terminal: no control character from report data in it."""
    out = [f"lossaudit {_one(report.command)}", describe_head(report)]
    if report.labels is not None:
        out.append(f"labels: {_one(report.labels.describe())}")
    for res in report.metric_resolutions:
        if res.resolved is not None and res.declared in ("accuracy", "acc"):
            assumed = ", label shape assumed from the loss" if res.labels_assumed else ""
            out.append(
                f"'{_one(res.declared)}' resolves to {_one(res.resolved)} ({_one(res.because)}{assumed})"
            )
    for key, value in report.context.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            out.append(f"{_one(key)}: {_one(value)}")
    # Where the rule configuration came from (a file, a pipeline, flags), unless all defaults.
    config_source = report.config.get("source")
    if isinstance(config_source, str) and config_source not in ("defaults", "request"):
        out.append(f"config: {_one(config_source)}")
    # Notes from reading and loading the model (Lambda layers, graph mode, nested models).
    for key in _NOTE_KEYS:
        notes = report.context.get(key)
        if isinstance(notes, list | tuple):
            out.extend(f"note: {_one(note)}" for note in notes if isinstance(note, str))
    out.append("")
    if report.findings:
        for i, f in enumerate(report.findings):
            if i:
                out.append("")
            out.append(f"{_one(f.code)} {f.severity.value:<7} {_one(f.title)} [{_one(f.name)}]")
            out.append(_indent(f.message))
            out.append(_indent("fix:"))
            # The fix is code: every line, indented as written, never re-wrapped.
            out.append(textwrap.indent(_lines(f.fix), "        "))
    else:
        out.append("no findings")
    if report.metrics is not None:
        m = report.metrics
        out.append("")
        out.append(f"recomputed ({_one(m.task)}, n = {m.n_samples}, K = {m.n_classes}):")
        for name in _HEADLINE_METRICS:
            value = m.values.get(name)
            if value is not None:
                out.append(f"  {name:<20} {value:.4f}")
        for note in m.notes:
            out.append(f"  note: {_one(note)}")
    if report.comparisons:
        out.append("")
        out.append("reported vs recomputed:")
        for c in report.comparisons:
            out.append(f"  [{_one(c.status)}] ({_one(c.source)}) {_one(c.explanation)}")
    if report.stages:
        out.append("")
        out.append("stages:")
        for stage in report.stages:
            name, status, summary = _one(stage.name), _one(stage.status), _one(stage.summary)
            out.append(f"  {name:<20} {stage.seconds:7.2f} s  {status:<7} {summary}")
    retrain = report.context.get("retrain")
    if isinstance(retrain, dict) and retrain.get("summary"):
        out.append("")
        out.append(f"retrain: {_one(retrain['summary'])}")
    out.append("")
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in reversed(Severity))
    out.append(f"verdict: {_one(report.verdict)} ({counts}; failing at {report.fail_on.value})")
    # Once more over the whole page: whatever a field above let through, no control character
    # but the line feeds of this page reaches the terminal.
    return _lines("\n".join(out))


def where(location: SourceLocation) -> str:
    """``train.py:16:1``; for a notebook also the cell: ``nb.ipynb:45:9 [cell 3, line 2]``."""
    text = f"{_one(location.path)}:{location.line}:{location.column}"
    if location.cell is not None:
        text += f" [cell {location.cell}, line {location.cell_line}]"
    return text


def _suggestion_lines(edit: SourceEdit) -> list[str]:
    lines = _lines(edit.replacement).split("\n")
    out = []
    for offset, line in enumerate(lines):
        number = edit.first_line + offset
        label = f"{number}" if edit.location.cell is None else f"cell {edit.location.cell}:{number}"
        out.append(f"        {label} | {line}")
    return out


def render_source_report(report: AuditReport) -> str:
    """A report on training scripts (``lossaudit check PATH...``): one block per finding, headed
    by ``path:line:column``, with the fix as the flagged lines rewritten; then what could not be
    parsed, and the verdict."""
    out: list[str] = []
    for i, f in enumerate(report.findings):
        if i:
            out.append("")
        head = f"{where(f.location)}: " if f.location is not None else ""
        out.append(f"{head}{_one(f.code)} {f.severity.value} {_one(f.title)} [{_one(f.name)}]")
        out.append(_indent(f.message))
        out.append(_indent("fix:"))
        if f.suggestions:
            for edit in f.suggestions:
                out.extend(_suggestion_lines(edit))
        else:
            out.append(textwrap.indent(_lines(f.fix), "        "))
    context = report.context
    not_parsed = context.get("not_parsed") or []
    if report.findings and not_parsed:
        out.append("")
    for notice in not_parsed if isinstance(not_parsed, list) else []:
        if isinstance(notice, dict):
            place = _one(notice.get("path"))
            if notice.get("line") is not None:
                place += f":{notice['line']}"
                if notice.get("column") is not None:
                    place += f":{notice['column']}"
            out.append(f"{place}: {_one(notice.get('message'))}")
    if out:
        out.append("")
    models = context.get("models") or []
    summary = f"checked {context.get('files', 0)} file(s): {len(models)} model(s) judged"
    not_followed = context.get("models_not_followed") or 0
    if not_followed:
        summary += f", {not_followed} whose head the code does not show"
    if context.get("suppressed"):
        summary += f", {context['suppressed']} finding(s) suppressed"
    if not_parsed:
        summary += f", {len(not_parsed)} file(s) or cell(s) not parsed"
    out.append(summary)
    families = sorted({str(m.get("keras_family")) for m in models if isinstance(m, dict)})
    if families:
        out.append("Keras family: " + "; ".join(_one(f) for f in families))
    config_source = report.config.get("source")
    if isinstance(config_source, str) and config_source not in ("defaults", "request"):
        out.append(f"config: {_one(config_source)}")
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in reversed(Severity))
    out.append(f"verdict: {_one(report.verdict)} ({counts}; failing at {report.fail_on.value})")
    return _lines("\n".join(out))


def render_rule_table(rules: tuple[Rule, ...]) -> str:
    lines = [f"{'code':<6} {'severity':<8} {'name':<40} title"]
    for r in rules:
        lines.append(f"{r.code:<6} {r.severity.value:<8} {r.name:<40} {r.title}")
    return "\n".join(lines)


def render_rule_page(rule: Rule) -> str:
    """``lossaudit explain CODE``: the ruff-style page of one rule."""
    families = ", ".join(f.value for f in rule.families)
    parts = [
        f"# {rule.name} ({rule.code})",
        "",
        f"Severity: {rule.severity.value}. Applies to Keras families: {families}. Stage: {rule.stage}.",
        "",
        "## What it finds",
        rule.title,
        "",
        "## Why it is wrong",
        textwrap.fill(rule.why.split("\n\n")[0], _WIDTH),
    ]
    for para in rule.why.split("\n\n")[1:]:
        parts += ["", textwrap.fill(para, _WIDTH)]
    parts += ["", "## Fix", textwrap.indent(rule.fix, "    ")]
    if rule.references:
        parts += ["", "## References"] + [f"- {ref}" for ref in rule.references]
    return "\n".join(parts)
