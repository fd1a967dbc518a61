"""The job's summary as text: the aligned table ``lossaudit registry`` prints (and a ``kind:
registry`` pipeline shows) and the Markdown the summary run keeps as ``summary.md``, one row per
version and closing lines for the counts, errors and alias moves.
"""

from __future__ import annotations

from pathlib import Path

from lossaudit.registry.results import AUDITED, NOT_AUDITED, STORED, RegistrySummary

_COLUMNS = ("model", "version", "verdict", "source", "job", "codes", "data", "seconds")


def _rows(summary: RegistrySummary) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for v in summary.versions:
        data = "-" if v.data is None else f"{v.data_origin}:{Path(v.data).name}"
        rows.append(
            (
                v.model,
                v.version,
                v.verdict,
                v.verdict_source,
                v.status.replace("_", " "),
                ",".join(v.codes) or "-",
                data,
                f"{v.seconds:.1f}" if v.status == AUDITED else "-",
            )
        )
    return rows


def _closing_lines(summary: RegistrySummary) -> list[str]:
    c = summary.counts
    lines = [
        f"{c['n_versions']} version(s): {c['n_audited']} audited now, {c['n_skipped']} skipped (already "
        f"audited with the same data and rules {summary.rules_version}), {c['n_not_audited']} could not "
        f"be audited now; {c['n_fresh']} fresh and {c['n_stored']} stored verdict(s); counted as "
        f"{c['n_passed']} pass, {c['n_failed']} fail, {c['n_error']} error; verdict {summary.verdict} "
        "(the worst)"
    ]
    for v in summary.versions:
        if v.status == NOT_AUDITED and v.verdict_source == STORED:
            lines.append(
                f"{v.label}: could not be audited now ({v.error_kind}): {v.error}; keeps its stored "
                f"{v.verdict} verdict of {v.audited_at or '?'}, counted as error"
            )
        elif v.status == NOT_AUDITED:
            lines.append(f"{v.label}: error ({v.error_kind}), never audited: {v.error}")
        elif v.verdict == "error":
            lines.append(f"{v.label}: stored error ({v.error_kind}) of {v.audited_at or '?'}: {v.error}")
    for move in summary.alias_moves:
        lines.append(f"alias {move.alias!r} of {move.model}: {move.action}: {move.reason}")
    if summary.engine == "spark":
        if summary.spark_version is None:
            lines.append(
                f"engine spark: Spark was not started (no version to audit); master {summary.master}"
            )
        else:
            lines.append(
                f"engine spark: audited on master {summary.master} (Spark {summary.spark_version}), up to "
                f"{summary.workers} version(s) at once"
            )
    if summary.summary_run is not None:
        where = summary.summary_run_url or summary.tracking_uri
        lines.append(f"summary run {summary.summary_run} ({where})")
    return lines


def render_table(summary: RegistrySummary) -> str:
    """The summary as an aligned plain-text table and closing lines."""
    rows = [_COLUMNS, *_rows(summary)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join([*lines, "", *_closing_lines(summary)])


def render_markdown(summary: RegistrySummary) -> str:
    """The summary as Markdown (the summary run's ``summary.md``)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        f"# lossaudit registry audit: {summary.verdict}",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in _rows(summary)]
    lines += ["", *(f"- {cell(line)}" for line in _closing_lines(summary)), ""]
    return "\n".join(lines)
