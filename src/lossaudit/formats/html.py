"""One self-contained HTML page of a report: open it from a CI artifact or an MLflow run.

Self-contained means no request leaves the page: inline CSS, the reported-vs-recomputed chart as
inline SVG, the confusion matrix as an HTML heat-map table and (with matplotlib) as a PNG in a
``data:`` URI; no JavaScript, no links: the only URL is that ``data:`` URI, made here.

Every piece of report text goes through :func:`esc` (control and bidirectional characters made
visible by :func:`~lossaudit.formats.sanitize.printable`, then :func:`html.escape` with quotes, so
it is safe in text and in double-quoted attributes); no report text reaches ``<style>``, a URL, an
element or attribute name, and class names come from fixed sets.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lossaudit.core.findings import Finding, Severity
from lossaudit.core.report import AuditReport
from lossaudit.formats.markdown import retrain_summary
from lossaudit.formats.plots import (
    ComparisonBar,
    comparison_bars,
    comparison_reference,
    confusion_axes,
    confusion_matrix_png,
    difference_text,
)
from lossaudit.formats.sanitize import printable

_CSS = """
:root { --fail: #c0392b; --pass: #1e8449; --warn: #b9770e; --info: #2e86c1; --ink: #1f2933;
  --muted: #616e7c; --line: #d9e2ec; --bg: #f5f7fa; --card: #ffffff; --blue: 43, 108, 176;
  --red: 192, 57, 43; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0; }
h1 .subject { color: var(--muted); font-weight: 400; }
h2 { font-size: 18px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
section, header { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 18px 20px; margin: 0 0 16px; }
header { display: flex; gap: 18px; align-items: center; flex-wrap: wrap;
  border-left: 8px solid var(--pass); }
header.fail { border-left-color: var(--fail); }
header .summary { color: var(--muted); margin: 4px 0 0; }
.badge { font-weight: 700; letter-spacing: .06em; color: #fff; background: var(--pass);
  padding: 6px 14px; border-radius: 6px; font-size: 18px; }
header.fail .badge { background: var(--fail); }
.pill { display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 8px; white-space: nowrap;
  border-radius: 10px; color: #fff; vertical-align: middle; }
.pill.error { background: var(--fail); } .pill.warning { background: var(--warn); }
.pill.info { background: var(--info); } .pill.agrees { background: var(--pass); }
.pill.wrong_definition { background: var(--fail); } .pill.unexplained { background: var(--warn); }
.pill.not_compared { background: var(--muted); }
.finding { border: 1px solid var(--line); border-left: 5px solid var(--info); border-radius: 6px;
  padding: 10px 14px; margin: 0 0 10px; }
.finding.error { border-left-color: var(--fail); } .finding.warning { border-left-color: var(--warn); }
.finding .title { font-weight: 600; }
.finding code.code { font-weight: 700; margin-right: 6px; }
.finding p { margin: 6px 0 0; }
details summary { cursor: pointer; color: var(--muted); margin-top: 6px; }
pre { background: #f0f4f8; border-radius: 6px; padding: 10px 12px; overflow-x: auto;
  font: 13px/1.45 "SFMono-Regular", Menlo, Consolas, monospace; margin: 6px 0 0; }
code { font-family: "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.92em; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: #f0f4f8; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
table.confusion td.cm { text-align: center; min-width: 52px; padding: 8px 10px;
  font-variant-numeric: tabular-nums; border: 1px solid #fff; }
table.confusion th.axis { background: none; color: var(--muted); font-weight: 400; }
table.confusion td.diag { font-weight: 700; }
table.confusion.compact td.cm { min-width: 0; padding: 2px 4px; font-size: 11px; }
table.confusion.compact th { padding: 2px 4px; font-size: 11px; }
.figures { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
.figures img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
.legend { color: var(--muted); font-size: 13px; margin: 8px 0 0; }
.note { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
svg.chart text { font: 12px -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: #1f2933; }
footer { color: var(--muted); font-size: 12px; text-align: center; }
"""

_SEVERITY_ORDER = (Severity.ERROR, Severity.WARNING, Severity.INFO)
_STATUS_TEXT = {
    "agrees": "agrees",
    "wrong_definition": "wrong definition",
    "unexplained": "unexplained",
    "consistent": "within sampling error",
    "inconsistent": "beyond sampling error",
    "not_compared": "not compared",
}
MAX_TABLE_CLASSES = 60
"""A wider confusion matrix is shown as the PNG only: a K x K table would weigh megabytes."""
COMPACT_TABLE_CLASSES = 12
CHART_REPORTED = "#d9822b"
CHART_RECOMPUTED = "#2b6cb0"


def esc(value: Any) -> str:
    """Report text safe in HTML text and in a double-quoted attribute value."""
    return html.escape(printable(value, newlines=True), quote=True)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (), raw: bool = False
) -> str:
    """A table; cells are escaped unless ``raw`` (then the caller escaped them)."""
    head = "".join(
        f'<th class="num">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = value if raw else esc(value)
            cells.append(f'<td class="num">{text}</td>' if i in numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    rows_html = "".join(body)
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table></div>'
    )


def _header(report: AuditReport) -> str:
    model = report.context.get("model") or report.context.get("name")
    subject = f' <span class="subject">{esc(model)}</span>' if isinstance(model, str) and model else ""
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in _SEVERITY_ORDER)
    verdict = "fail" if report.verdict == "fail" else "pass"
    return (
        f'<header class="{verdict}"><div class="badge">{esc(verdict.upper())}</div><div>'
        f"<h1>lossaudit {esc(report.command)}{subject}</h1>"
        f'<p class="summary">{esc(counts)}; fails at {esc(report.fail_on.value)} or above</p>'
        "</div></header>"
    )


def _finding(finding: Finding) -> str:
    sev = finding.severity.value
    return (
        f'<div class="finding {sev}"><div><code class="code">{esc(finding.code)}</code>'
        f'<span class="pill {sev}">{esc(sev)}</span> <span class="title">{esc(finding.title)}</span> '
        f'<span class="note">{esc(finding.name)}</span></div>'
        f"<p>{esc(finding.message)}</p>"
        f"<details><summary>Fix</summary><pre><code>{esc(finding.fix)}</code></pre></details></div>"
    )


def _findings(report: AuditReport) -> str:
    body = "".join(_finding(f) for f in report.findings) or "<p>No findings.</p>"
    return f'<section id="findings"><h2>Findings</h2>{body}</section>'


def _facts(report: AuditReport) -> str:
    rows: list[tuple[str, str]] = []
    head = report.head
    if head is not None:
        loss = "none"
        if head.loss is not None:
            loss = head.loss.name + (" (from_logits=True)" if head.loss.from_logits else "")
            if head.loss.label_smoothing:
                loss += f", label_smoothing={head.loss.label_smoothing:g}"
        rows += [
            ("head", f"{head.units} unit(s), {' → '.join(head.activation_chain)}"),
            ("loss", loss),
            ("metrics", ", ".join(head.metrics) or "none"),
            ("Keras family", f"{head.keras_family.value} (from {head.source})"),
        ]
    for res in report.metric_resolutions:
        if res.resolved is not None:
            assumed = " (label shape assumed from the loss)" if res.labels_assumed else ""
            rows.append((f"'{res.declared}' resolves to", f"{res.resolved}: {res.because}{assumed}"))
    if report.labels is not None:
        rows.append(("labels", report.labels.describe()))
    rows += _context_rows(report.context)
    if not rows:
        return ""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    return f'<section id="model"><h2>Model, head and labels</h2><dl class="facts">{items}</dl></section>'


def _context_rows(context: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in context.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            rows.append((key, str(value)))
        elif isinstance(value, Mapping) and key != "retrain":
            scalars = [f"{k} {v}" for k, v in value.items() if isinstance(v, str | int | float | bool)]
            if scalars:
                rows.append((key, ", ".join(scalars)))
    return rows


def comparison_svg(bars: Sequence[ComparisonBar]) -> str:
    """Reported vs recomputed as an inline SVG of horizontal bar pairs (no script, no fonts)."""
    label_width, bar_width, value_width = 250, 430, 70
    row_height, top = 58, 34
    width = label_width + bar_width + value_width
    axis_y = top + row_height * len(bars)
    height = axis_y + 22
    scale_max = max(1.0, *(b.reported for b in bars), *(b.recomputed for b in bars))

    def length(value: float) -> float:
        return max(0.0, value) / scale_max * bar_width

    parts = [
        f'<svg class="chart" id="comparison-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="reported versus recomputed metrics">',
        f'<rect x="{label_width}" y="8" width="12" height="12" fill="{CHART_REPORTED}"/>',
        f'<text x="{label_width + 18}" y="18">reported</text>',
        f'<rect x="{label_width + 100}" y="8" width="12" height="12" fill="{CHART_RECOMPUTED}"/>',
        f'<text x="{label_width + 118}" y="18">recomputed</text>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = label_width + length(tick * scale_max)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#d9e2ec"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{axis_y + 15}" text-anchor="middle" fill="#616e7c">'
            f"{tick * scale_max:.4g}</text>"
        )
    for i, bar in enumerate(bars):
        y = top + i * row_height
        status = _STATUS_TEXT.get(bar.status, bar.status)
        parts.append(f'<text x="0" y="{y + 18}" font-weight="600">{esc(bar.label)}</text>')
        parts.append(f'<text x="0" y="{y + 36}" fill="#616e7c">{esc(status)}</text>')
        for offset, value, colour, what in (
            (4, bar.reported, CHART_REPORTED, "reported"),
            (26, bar.recomputed, CHART_RECOMPUTED, f"recomputed: {bar.recomputed_label}"),
        ):
            w = length(value)
            parts.append(
                f'<rect class="bar" x="{label_width}" y="{y + offset}" width="{w:.1f}" height="18" '
                f'fill="{colour}" rx="2"><title>{esc(what)} {value:.4f}</title></rect>'
            )
            parts.append(f'<text x="{label_width + w + 6:.1f}" y="{y + offset + 14}">{value:.4f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _comparisons(report: AuditReport) -> str:
    if not report.comparisons:
        return ""
    bars = comparison_bars(report)
    chart = (
        comparison_svg(bars)
        if bars
        else '<p class="note">No reported number had a recomputed counterpart.</p>'
    )
    rows = []
    for comp in report.comparisons:
        reference = comparison_reference(comp)
        recomputed = "" if reference is None else f"{reference[0]:.4f} ({esc(reference[1])})"
        difference = "" if reference is None else difference_text(comp.reported, reference[0])
        status = _STATUS_TEXT.get(comp.status, comp.status)
        rows.append(
            (
                f"<code>{esc(comp.metric)}</code>",
                esc(comp.source),
                _num(comp.reported),
                recomputed,
                difference,
                f'<span class="pill {_status_class(comp.status)}">{esc(status)}</span>',
                esc(comp.explanation),
            )
        )
    header = ("metric", "source", "reported", "recomputed", "difference", "status", "explanation")
    table = _table(header, rows, numeric=(2, 4), raw=True)
    return (
        f'<section id="comparisons"><h2>Reported vs recomputed</h2><div class="scroll">{chart}</div>'
        f"<h3>Every reported number</h3>{table}</section>"
    )


def _status_class(status: str) -> str:
    """A comparison status as a CSS class: one of the known statuses, never report text."""
    return status if status in _STATUS_TEXT else "unknown"


def _heat(share: float, error: bool) -> str:
    if share == 0.0:  # an empty cell stays blank, so the errors that happened stand out
        return "color: #9aa5b1"
    rgb = "var(--red)" if error else "var(--blue)"
    colour = "#fff" if share > 0.55 else "#1f2933"
    return f"background: rgba({rgb}, {0.08 + 0.82 * share:.3f}); color: {colour}"


def confusion_table(report: AuditReport) -> str:
    """The confusion matrix as an HTML heat map: blue where right, red where wrong, by row share."""
    axes = confusion_axes(report)
    if axes is None:
        return ""
    rows, cols, counts = axes
    if len(cols) > MAX_TABLE_CLASSES:
        return ""
    multilabel = report.metrics is not None and report.metrics.task == "multilabel"
    corner = "label" if multilabel else "true \\ predicted"
    compact = " compact" if len(cols) > COMPACT_TABLE_CLASSES else ""
    head = f'<th class="axis">{esc(corner)}</th>' + "".join(f'<th class="num">{esc(c)}</th>' for c in cols)
    body = []
    for i, (label, row) in enumerate(zip(rows, counts, strict=True)):
        total = sum(row) or 1
        cells = []
        for j, value in enumerate(row):
            right = cols[j] in ("tn", "tp") if multilabel else i == j
            share = value / total
            klass = "cm diag" if right and not multilabel else "cm"
            cells.append(
                f'<td class="{klass}" data-count="{value}" style="{_heat(share, not right)}" '
                f'title="{esc(label)} / {esc(cols[j])}: {value} ({share:.1%} of row)">{value}</td>'
            )
        body.append(f"<tr><th>{esc(label)}</th>{''.join(cells)}</tr>")
    return (
        f'<div class="scroll"><table class="confusion{compact}" id="confusion-matrix">'
        f"<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _confusion(report: AuditReport, with_png: bool) -> str:
    axes = confusion_axes(report)
    if axes is None:
        return ""
    table = confusion_table(report)
    multilabel = report.metrics is not None and report.metrics.task == "multilabel"
    title = "Confusion per label (tn, fp, fn, tp)" if multilabel else "Confusion matrix"
    legend = (
        "Rows are labels; blue cells are right (tn, tp), red cells wrong (fp, fn); "
        if multilabel
        else "Rows are true classes, columns predicted classes; blue is right, red is wrong; "
    )
    legend += "the shade is the share of the row."
    figure = ""
    png = confusion_matrix_png(report) if with_png else None
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        figure = f'<img id="confusion-png" alt="{esc(title)}" src="data:image/png;base64,{data}">'
    if not table:
        legend = f"{len(axes[0])} x {len(axes[1])}: too large for a table; see confusion_matrix.png."
    return (
        f'<section id="confusion"><h2>{esc(title)}</h2><div class="figures"><div>{table}'
        f'<p class="legend">{esc(legend)}</p></div>{figure}</div></section>'
    )


def _metrics(report: AuditReport) -> str:
    m = report.metrics
    if m is None:
        return ""
    values = _table(
        ("metric", "value", "how"),
        ((name, _num(value), m.definitions.get(name, "")) for name, value in m.values.items()),
        numeric=(1,),
    )
    per_class = ""
    if m.per_class:
        per_class = "<h3>Per class</h3>" + _table(
            ("class", "precision", "recall", "f1", "support"),
            ((c.label, _num(c.precision), _num(c.recall), _num(c.f1), c.support) for c in m.per_class),
            numeric=(0, 1, 2, 3, 4),
        )
    notes = "".join(f'<p class="note">note: {esc(n)}</p>' for n in m.notes)
    return (
        f'<section id="metrics"><h2>Recomputed metrics <span class="note">{esc(m.task)}, '
        f"n = {m.n_samples}, K = {m.n_classes}</span></h2>{values}{notes}{per_class}</section>"
    )


def _stages(report: AuditReport) -> str:
    if not report.stages:
        return ""
    total = sum(s.seconds for s in report.stages)
    rows = [(s.name, s.status, f"{s.seconds:.2f}", s.summary) for s in report.stages]
    rows.append(("total", "", f"{total:.2f}", ""))
    table = _table(("stage", "status", "seconds", "summary"), rows, (2,))
    return f'<section id="stages"><h2>Stages</h2>{table}</section>'


def _retrain(report: AuditReport) -> str:
    found = retrain_summary(report.context)
    if found is None:
        return ""
    summary, extra = found
    table = _table(("", "value"), extra.items()) if extra else ""
    return f'<section id="retrain"><h2>Retrain with the fixed head</h2><p>{esc(summary)}</p>{table}</section>'


def render_html(report: AuditReport, *, embed_png: bool = True) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    report : AuditReport
    embed_png : bool, default True
        Embed the matplotlib confusion-matrix PNG (when matplotlib is installed) beside the table.
    """
    model = report.context.get("model") or report.context.get("name")
    title = f"lossaudit {report.verdict.upper()}" + (f": {model}" if isinstance(model, str) and model else "")
    sections = [
        _header(report),
        _findings(report),
        _comparisons(report),
        _confusion(report, embed_png),
        _metrics(report),
        _facts(report),
        _stages(report),
        _retrain(report),
    ]
    body = "\n".join(s for s in sections if s)
    footer = f"<footer>lossaudit {esc(report.tool_version)} · {esc(report.created_at)}</footer>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><main>\n{body}\n{footer}\n</main></body></html>\n"
    )
