"""PNG charts of a report: the confusion matrix and reported-vs-recomputed numbers.

matplotlib is imported inside the functions (never at import time: the CLI must start without it)
and only through its object API -- ``matplotlib.figure.Figure`` drawn on the Agg canvas -- so no
pyplot figure manager, no GUI backend and no global ``matplotlib.use`` switch is ever involved:
a figure is a local object, freed when the function returns, and a caller's own pyplot session
(a notebook, say) keeps its backend. Both functions return ``None`` when matplotlib is missing or
there is nothing to draw.

:func:`comparison_bars` is the chart's data, shared with the HTML report's inline SVG chart.

Labels that come from the report (metric and source names) are drawn with ``parse_math=False``,
so a ``$`` in a name is a dollar sign, not mathtext (``$\\bad{$`` would stop the whole report
folder from being written), and through :func:`~lossaudit.formats.sanitize.printable`.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lossaudit.formats.sanitize import printable

if TYPE_CHECKING:
    from lossaudit.core.compare import Comparison
    from lossaudit.core.report import AuditReport

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MULTILABEL_COLUMNS = ("tn", "fp", "fn", "tp")
"""Column order of a multi-label confusion row (sklearn ``multilabel_confusion_matrix`` raveled)."""
ANNOTATE_MAX_CLASSES = 25
"""Above this many classes the cells are too small to carry their counts."""
TICK_EVERY_CLASS_MAX = 50
"""Above this many classes matplotlib picks which class ticks to label."""
LABEL_WIDTH = 40
"""Characters per line of a comparison row's name (metric and source) before it wraps."""
_DPI = 110


@dataclass(frozen=True)
class ComparisonBar:
    """One reported number beside the recomputed number it should equal."""

    metric: str
    source: str
    reported: float
    recomputed: float
    recomputed_label: str
    """Which definition ``recomputed`` is: the one the task needs, else the closest one."""
    status: str

    @property
    def label(self) -> str:
        return f"{self.metric} ({self.source})"


def comparison_reference(comparison: Comparison) -> tuple[float, str] | None:
    """The recomputed value a reported number is judged against, and its definition's label.

    The definition the task needs when there is one (accuracy); for metrics lossaudit attributes
    without a single right definition (precision, f1, ...), the closest recomputed candidate.
    """
    definition = comparison.correct
    if definition is None and comparison.matches:
        definition = comparison.matches[0]
    if definition is None:
        definition = comparison.nearest
    if definition is None:
        return None
    return definition.value, definition.label


def difference_text(reported: float, recomputed: float) -> str:
    """``+0.1111``; a difference that rounds to zero is ``+0.0000``, never ``-0.0000``."""
    difference = reported - recomputed
    return f"{0.0 if abs(difference) < 5e-5 else difference:+.4f}"


def comparison_bars(report: AuditReport) -> list[ComparisonBar]:
    """Every comparison that has a recomputed counterpart (``not_compared`` ones have none)."""
    bars: list[ComparisonBar] = []
    for comp in report.comparisons:
        reference = comparison_reference(comp)
        if comp.status == "not_compared" or reference is None:
            continue
        bars.append(
            ComparisonBar(comp.metric, comp.source, comp.reported, reference[0], reference[1], comp.status)
        )
    return bars


def confusion_axes(report: AuditReport) -> tuple[list[str], list[str], list[list[int]]] | None:
    """(row labels, column labels, counts) of the report's confusion matrix, or None.

    Binary and multiclass: rows are true classes, columns predicted classes. Multi-label: one row
    per label with its (tn, fp, fn, tp) counts.
    """
    metrics = report.metrics
    if metrics is None or not metrics.confusion_matrix:
        return None
    counts = [list(row) for row in metrics.confusion_matrix]
    if metrics.task == "multilabel":
        rows = [f"label {i}" for i in range(len(counts))]
        return rows, list(MULTILABEL_COLUMNS), counts
    labels = [str(i) for i in range(len(counts))]
    return labels, labels, counts


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # No "Software" text chunk: the same report gives the same bytes on every matplotlib.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    figure.clear()
    return buffer.getvalue()


def _matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def confusion_matrix_png(report: AuditReport) -> bytes | None:
    """The confusion matrix as a PNG heat map, or None without a matrix or matplotlib.

    Colours are shares of each row (recall per true class; per label for multi-label), so a small
    class is as visible as a large one; each cell is annotated with its count.
    """
    axes_data = confusion_axes(report)
    if axes_data is None or not _matplotlib_available():
        return None
    rows, cols, counts = axes_data
    multilabel = report.metrics is not None and report.metrics.task == "multilabel"
    n_rows, n_cols = len(rows), len(cols)
    shares = [[c / (sum(row) or 1) for c in row] for row in counts]
    side = min(max(3.2, 0.45 * max(n_rows, n_cols) + 1.8), 14.0)
    figure = _new_figure(
        side if not multilabel else 5.0, side if not multilabel else max(2.4, 0.4 * n_rows + 1.4)
    )
    ax = figure.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of row")
    if max(n_rows, n_cols) <= TICK_EVERY_CLASS_MAX:
        ax.set_xticks(range(n_cols), cols, parse_math=False)
        ax.set_yticks(range(n_rows), rows, parse_math=False)
    if multilabel:
        ax.set_title("Confusion per label (tn, fp, fn, tp)")
        ax.set_xlabel("outcome")
    else:
        ax.set_title("Confusion matrix")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
    if max(n_rows, n_cols) <= ANNOTATE_MAX_CLASSES:
        for i, row in enumerate(counts):
            for j, value in enumerate(row):
                colour = "white" if shares[i][j] > 0.55 else "#1f2933"
                ax.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=9)
    return _png(figure)


def comparison_chart_png(report: AuditReport) -> bytes | None:
    """Reported vs recomputed numbers, one row per number: a dot for each, joined by the gap.

    The axis spans the values themselves, not 0 to 1, so a 0.9943 vs 0.9741 gap is visible; the
    reported value is labelled above its dot and the recomputed one below, the difference in a
    column of its own at the right edge (headed ``reported - recomputed``), the row names wrapped
    at :data:`LABEL_WIDTH` characters so a long source name cannot squeeze the axis, and the
    legend under the figure: no label can cover another (``tests/test_formats.py`` measures
    them). None when there is no comparable number.
    """
    bars = comparison_bars(report)
    if not bars or not _matplotlib_available():
        return None
    return _png(comparison_figure(bars))


def comparison_figure(bars: Sequence[ComparisonBar]) -> Any:
    """The matplotlib figure of :func:`comparison_chart_png` (``bars`` not empty)."""
    figure = _new_figure(7.5, max(2.4, 0.95 * len(bars) + 1.5))
    ax = figure.add_subplot()
    values = [v for b in bars for v in (b.reported, b.recomputed)]
    low, high = min(values), max(values)
    span = max(high - low, 0.01)
    left, right = low - 0.35 * span, high + 0.75 * span
    for i, bar in enumerate(bars):
        ax.plot([bar.recomputed, bar.reported], [i, i], color="#9aa5b1", linewidth=2, zorder=1)
        ax.scatter([bar.reported], [i], s=55, color="#d9822b", zorder=3, label="reported" if i == 0 else None)
        ax.scatter(
            [bar.recomputed], [i], s=55, color="#2b6cb0", zorder=3, label="recomputed" if i == 0 else None
        )
        for value, dy, va in ((bar.reported, 8, "bottom"), (bar.recomputed, -8, "top")):
            ax.annotate(
                f"{value:.4f}",
                xy=(value, i),
                xytext=(0, dy),
                textcoords="offset points",
                ha="center",
                va=va,
                fontsize=8,
                parse_math=False,
            )
        ax.text(
            right,
            i,
            difference_text(bar.reported, bar.recomputed) + " ",
            ha="right",
            va="center",
            fontsize=8,
            color="#616e7c",
            parse_math=False,
        )
    ax.text(
        right,
        -0.6,
        "reported - recomputed ",
        ha="right",
        va="top",
        fontsize=8,
        color="#616e7c",
        parse_math=False,
    )
    labels = [
        "\n".join(
            [
                *textwrap.wrap(printable(b.label), LABEL_WIDTH, break_on_hyphens=False),
                f"[{printable(b.status)}]",
            ]
        )
        for b in bars
    ]
    ax.set_yticks(list(range(len(bars))), labels, fontsize=8, parse_math=False)
    ax.set_ylim(len(bars) - 0.4, -0.6)  # first number on top, room for the labels above and below
    ax.set_xlim(left, right)
    ax.set_xlabel("value (the axis spans the values, not 0 to 1)", fontsize=8)
    ax.set_title("Reported vs recomputed")
    handles, names = ax.get_legend_handles_labels()
    figure.legend(handles, names, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return figure
