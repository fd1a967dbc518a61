"""One self-contained HTML page of a report: open it from a CI artifact or an MLflow run.

Self-contained means no request leaves the page: inline CSS, the reported-vs-recomputed chart as
inline SVG, the confusion matrix as an HTML heat-map table and (with matplotlib) as a PNG in a
``data:`` URI; no JavaScript, no links: the only URL is that ``data:`` URI, made here.

The page is the Jinja2 template ``templates/report.html.j2`` (with ``templates/report.css``),
shipped as package data. This module only turns the report into plain values for it. The
environment autoescapes everything: every piece of report text is escaped for HTML text and
double-quoted attributes, after the template's ``p`` filter made control and bidirectional
characters visible (:func:`~lossaudit.formats.sanitize.printable`). No report text reaches
``<style>``, a URL, an element or attribute name, and class names come from fixed sets.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from lossaudit.core.findings import Severity
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

if TYPE_CHECKING:
    import jinja2


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


def _template_text(name: str) -> str:
    return files("lossaudit.formats").joinpath("templates", name).read_text(encoding="utf-8")


_CSS = "\n" + _template_text("report.css")
"""The page's stylesheet (``templates/report.css``); class names in the template come from it."""


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lossaudit.formats", "templates"),
        autoescape=True,  # every {{ value }} is HTML-escaped; only the CSS is marked safe
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["p"] = lambda value: printable(value, newlines=True)
    return env


def esc(value: Any) -> str:
    """Report text safe in HTML text and in a double-quoted attribute value (what the template's
    autoescape does, for callers outside it)."""
    return html.escape(printable(value, newlines=True), quote=True)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _findings(report: AuditReport) -> list[dict[str, str]]:
    return [
        {
            "code": f.code,
            "severity": f.severity.value,
            "title": f.title,
            "name": f.name,
            "message": f.message,
            "fix": f.fix,
        }
        for f in report.findings
    ]


def _facts(report: AuditReport) -> list[tuple[str, str]]:
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
    return rows


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


def _chart(bars: Sequence[ComparisonBar]) -> dict[str, Any]:
    """Reported vs recomputed as horizontal bar pairs, laid out for the template's inline SVG."""
    label_width, bar_width, value_width = 250, 430, 70
    row_height, top = 58, 34
    axis_y = top + row_height * len(bars)
    scale_max = max(1.0, *(b.reported for b in bars), *(b.recomputed for b in bars))

    def length(value: float) -> float:
        return max(0.0, value) / scale_max * bar_width

    rows = []
    for i, bar in enumerate(bars):
        pairs = []
        for offset, value, colour, what in (
            (4, bar.reported, CHART_REPORTED, "reported"),
            (26, bar.recomputed, CHART_RECOMPUTED, f"recomputed: {bar.recomputed_label}"),
        ):
            w = length(value)
            pairs.append(
                {
                    "offset": offset,
                    "width": f"{w:.1f}",
                    "value_x": f"{label_width + w + 6:.1f}",
                    "colour": colour,
                    "what": what,
                    "value": f"{value:.4f}",
                }
            )
        rows.append(
            {
                "y": top + i * row_height,
                "label": bar.label,
                "status": _STATUS_TEXT.get(bar.status, bar.status),
                "bars": pairs,
            }
        )
    return {
        "width": label_width + bar_width + value_width,
        "height": axis_y + 22,
        "label_width": label_width,
        "top": top,
        "axis_y": axis_y,
        "reported_colour": CHART_REPORTED,
        "recomputed_colour": CHART_RECOMPUTED,
        "ticks": [
            {"x": f"{label_width + length(t * scale_max):.1f}", "label": f"{t * scale_max:.4g}"}
            for t in (0.0, 0.25, 0.5, 0.75, 1.0)
        ],
        "rows": rows,
    }


def comparison_svg(bars: Sequence[ComparisonBar]) -> str:
    """The chart alone, as the page draws it (for callers that embed it elsewhere)."""
    doc = _render(_empty_context() | {"comparisons": {"chart": _chart(bars), "rows": []}})
    start = doc.index("<svg")
    return doc[start : doc.index("</svg>", start) + len("</svg>")]


def _comparisons(report: AuditReport) -> dict[str, Any] | None:
    if not report.comparisons:
        return None
    bars = comparison_bars(report)
    rows = []
    for comp in report.comparisons:
        reference = comparison_reference(comp)
        rows.append(
            {
                "metric": comp.metric,
                "source": comp.source,
                "reported": _num(comp.reported),
                "recomputed": "" if reference is None else f"{reference[0]:.4f} ({reference[1]})",
                "difference": "" if reference is None else difference_text(comp.reported, reference[0]),
                "status": _STATUS_TEXT.get(comp.status, comp.status),
                "status_class": _status_class(comp.status),
                "explanation": comp.explanation,
            }
        )
    return {"chart": _chart(bars) if bars else None, "rows": rows}


def _status_class(status: str) -> str:
    """A comparison status as a CSS class: one of the known statuses, never report text."""
    return status if status in _STATUS_TEXT else "unknown"


def _heat(share: float, error: bool) -> str:
    if share == 0.0:  # an empty cell stays blank, so the errors that happened stand out
        return "color: #9aa5b1"
    rgb = "var(--red)" if error else "var(--blue)"
    colour = "#fff" if share > 0.55 else "#1f2933"
    return f"background: rgba({rgb}, {0.08 + 0.82 * share:.3f}); color: {colour}"


def _confusion_table(report: AuditReport) -> dict[str, Any] | None:
    """The confusion matrix as a heat map: blue where right, red where wrong, by row share."""
    axes = confusion_axes(report)
    if axes is None:
        return None
    labels, cols, counts = axes
    if len(cols) > MAX_TABLE_CLASSES:
        return None
    multilabel = report.metrics is not None and report.metrics.task == "multilabel"
    rows = []
    for i, (label, row) in enumerate(zip(labels, counts, strict=True)):
        total = sum(row) or 1
        cells = []
        for j, value in enumerate(row):
            right = cols[j] in ("tn", "tp") if multilabel else i == j
            share = value / total
            cells.append(
                {
                    "klass": "cm diag" if right and not multilabel else "cm",
                    "count": value,
                    "style": _heat(share, not right),
                    "title": f"{label} / {cols[j]}: {value} ({share:.1%} of row)",
                }
            )
        rows.append({"label": label, "cells": cells})
    return {
        "compact": len(cols) > COMPACT_TABLE_CLASSES,
        "corner": "label" if multilabel else "true \\ predicted",
        "cols": list(cols),
        "rows": rows,
    }


def confusion_table(report: AuditReport) -> str:
    """The confusion matrix's HTML table alone ("" when there is none, or it is too wide)."""
    doc = render_html(report, embed_png=False)
    start = doc.find('<div class="scroll"><table class="confusion')
    if start < 0:
        return ""
    return doc[start : doc.index("</table></div>", start) + len("</table></div>")]


def _confusion(report: AuditReport, with_png: bool) -> dict[str, Any] | None:
    axes = confusion_axes(report)
    if axes is None:
        return None
    table = _confusion_table(report)
    multilabel = report.metrics is not None and report.metrics.task == "multilabel"
    title = "Confusion per label (tn, fp, fn, tp)" if multilabel else "Confusion matrix"
    legend = (
        "Rows are labels; blue cells are right (tn, tp), red cells wrong (fp, fn); "
        if multilabel
        else "Rows are true classes, columns predicted classes; blue is right, red is wrong; "
    )
    legend += "the shade is the share of the row."
    png = confusion_matrix_png(report) if with_png else None
    if table is None:
        legend = f"{len(axes[0])} x {len(axes[1])}: too large for a table; see confusion_matrix.png."
    return {
        "title": title,
        "legend": legend,
        "table": table,
        "png": None if png is None else base64.b64encode(png).decode("ascii"),
    }


def _metrics(report: AuditReport) -> dict[str, Any] | None:
    m = report.metrics
    if m is None:
        return None
    return {
        "task": m.task,
        "n": m.n_samples,
        "k": m.n_classes,
        "value_rows": [(name, _num(value), m.definitions.get(name, "")) for name, value in m.values.items()],
        "notes": list(m.notes),
        "per_class": [
            (c.label, _num(c.precision), _num(c.recall), _num(c.f1), c.support) for c in m.per_class
        ],
    }


def _stages(report: AuditReport) -> list[tuple[str, str, str, str]]:
    if not report.stages:
        return []
    total = sum(s.seconds for s in report.stages)
    rows = [(s.name, s.status, f"{s.seconds:.2f}", s.summary) for s in report.stages]
    rows.append(("total", "", f"{total:.2f}", ""))
    return rows


def _retrain(report: AuditReport) -> dict[str, Any] | None:
    found = retrain_summary(report.context)
    if found is None:
        return None
    summary, extra = found
    return {"summary": summary, "extra": list(extra.items())}


def _empty_context() -> dict[str, Any]:
    return {
        "title": "",
        "css": _CSS,
        "verdict": "pass",
        "command": "",
        "subject": None,
        "counts": "",
        "fail_on": "",
        "findings": [],
        "comparisons": None,
        "confusion": None,
        "metrics": None,
        "facts": [],
        "stages": [],
        "retrain": None,
        "tool_version": "",
        "created_at": "",
    }


def _render(context: Mapping[str, Any]) -> str:
    return _environment().get_template("report.html.j2").render(**context)


def render_html(report: AuditReport, *, embed_png: bool = True) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    report : AuditReport
    embed_png : bool, default True
        Embed the matplotlib confusion-matrix PNG (when matplotlib is installed) beside the table.
    """
    model = report.context.get("model") or report.context.get("name")
    subject = model if isinstance(model, str) and model else None
    title = f"lossaudit {report.verdict.upper()}" + (f": {subject}" if subject else "")
    return _render(
        {
            "title": title,
            "css": _CSS,
            "verdict": "fail" if report.verdict == "fail" else "pass",
            "command": report.command,
            "subject": subject,
            "counts": ", ".join(f"{report.count(s)} {s.value}" for s in _SEVERITY_ORDER),
            "fail_on": report.fail_on.value,
            "findings": _findings(report),
            "comparisons": _comparisons(report),
            "confusion": _confusion(report, embed_png),
            "metrics": _metrics(report),
            "facts": _facts(report),
            "stages": _stages(report),
            "retrain": _retrain(report),
            "tool_version": report.tool_version,
            "created_at": report.created_at,
        }
    )
