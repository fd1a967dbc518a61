"""What every ``lossaudit`` command shares: option types, the error guard, report output.

Imports only Typer: every command module of :mod:`lossaudit.cli` builds on it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from lossaudit.errors import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_PASS, LossauditError

if TYPE_CHECKING:
    from lossaudit.core.config import RuleConfig
    from lossaudit.core.findings import Severity
    from lossaudit.core.report import AuditReport

EXIT_INTERNAL = 4


class FailOn(StrEnum):
    error = "error"
    warning = "warning"
    info = "info"


class Family(StrEnum):
    keras3 = "keras3"
    tf_keras = "tf_keras"
    legacy = "legacy"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


class Engine(StrEnum):
    """``--engine`` of ``audit`` and ``registry``."""

    local = "local"
    spark = "spark"


class RocAucMode(StrEnum):
    """``--roc-auc`` of ``audit``: keep the predictions for the exact value, or bound it."""

    exact = "exact"
    bounds = "bounds"


MasterOpt = Annotated[
    str | None,
    typer.Option(
        "--master",
        help="Spark master for --engine spark (default: SPARK_MASTER, else local[*]), e.g. "
        "spark://host:7077 or yarn.",
    ),
]


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"


FormatOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        help="Output: text (default), json (as --json), github (GitHub Actions annotations on the "
        "flagged lines), sarif (SARIF 2.1.0 for code scanning).",
    ),
]
FailOnOpt = Annotated[FailOn, typer.Option("--fail-on", help="Lowest finding severity that fails (exit 1).")]
RuleFailOnOpt = Annotated[
    FailOn | None,
    typer.Option(
        "--fail-on",
        help="Lowest finding severity that fails (exit 1). Default: fail_on of the configuration, "
        "else error.",
    ),
]
SelectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        help="Rule codes or prefixes to run, e.g. LA1,LA501 (comma list or repeat; ALL for every "
        "rule). Replaces the configuration's select and ignore.",
    ),
]
IgnoreOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore",
        help="Rule codes or prefixes to silence, e.g. LA103 (comma list or repeat), on top of the "
        "configuration.",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="A lossaudit.toml, or a pyproject.toml with [tool.lossaudit]. Default: the first one "
        "found from the working folder upwards.",
    ),
]
LabelColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--label-column",
        help="Label column(s) of a CSV/Parquet file; repeat or use a glob for one-hot columns.",
    ),
]


class MeasuredOn(StrEnum):
    this = "this"
    other = "other"


ReportedOnOpt = Annotated[
    MeasuredOn,
    typer.Option(
        "--reported-on",
        help="Where the --reported numbers were measured: 'this' eval set (judged to their last "
        "digit) or 'other' data, e.g. a validation split (judged against sampling error).",
    ),
]
ReportedNOpt = Annotated[
    int | None,
    typer.Option(
        "--reported-n",
        min=1,
        help="Samples the --reported numbers were measured on, with --reported-on other "
        "(unknown: the interval comes from this eval set alone).",
    ),
]


def parse_reported(texts: list[str] | None, measured_on: MeasuredOn, n: int | None) -> tuple[Any, ...]:
    """``--reported NAME=VALUE`` options as reported metrics, stated by the user."""
    from lossaudit.core.compare import ReportedMetric

    if n is not None and measured_on is MeasuredOn.this:
        raise bad_input("--reported-n goes with --reported-on other (this eval set's size is known)")
    return tuple(ReportedMetric.parse(t, measured_on=measured_on.value, n=n) for t in texts or ())


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    from lossaudit.formats.sanitize import printable
    from lossaudit.tracking.http import redact_text

    # File names and other user text in the message: no escape sequence reaches the terminal,
    # and the message stays one line; no password of a tracking URI (an internal error may quote
    # an MLflow error that quotes the URL it called).
    typer.echo(f"lossaudit: error: {printable(redact_text(message))}", err=True)
    # SystemExit, not typer.Exit: it leaves Typer as it is, with the error as its context, which
    # the `mlflow run` project run reads for its lossaudit.error tag (typer.Exit would be turned
    # into a bare return code by main()'s non-standalone Typer call).
    raise SystemExit(code)


def guarded(fn: Callable[[], int]) -> None:
    """Run a command body: a LossauditError becomes one line and its exit code, never a traceback."""
    try:
        code = fn()
    except LossauditError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("LOSSAUDIT_DEBUG"):
            raise
        # Unexpected: still one line (set LOSSAUDIT_DEBUG=1 for the traceback).
        _fail(f"internal error: {type(exc).__name__}: {_first_line(exc)}", EXIT_INTERNAL)
    raise typer.Exit(code)


def bad_input(message: str) -> LossauditError:
    from lossaudit.errors import BadInputError

    return BadInputError(message)


def severity(fail_on: FailOn) -> Severity:
    from lossaudit.core.findings import Severity

    return Severity(fail_on.value)


def rule_config(
    config: Path | None,
    select: list[str] | None,
    ignore: list[str] | None,
    fail_on: FailOn | None,
) -> RuleConfig:
    """The effective rule configuration of a command: the configuration file (``--config``, else
    discovered from the working folder upwards) under ``--select``, ``--ignore`` and
    ``--fail-on``. Bad values raise a one-line :class:`~lossaudit.errors.BadInputError`."""
    from lossaudit.core.config_file import resolve_config

    return resolve_config(
        config_path=config,
        select=select,
        ignore=ignore,
        fail_on=None if fail_on is None else fail_on.value,
    )


def rule_overrides(
    select: list[str] | None, ignore: list[str] | None, fail_on: FailOn | None
) -> dict[str, object]:
    """The command line's rule keys alone (for pipeline files, which sit between the
    configuration file and the flags)."""
    from lossaudit.core.config_file import command_line_layer

    return command_line_layer(select, ignore, None if fail_on is None else fail_on.value)


def emit(report: AuditReport, as_json: bool) -> int:
    """Print the report and return its exit code."""
    if as_json:
        typer.echo(report.to_json())
    else:
        from lossaudit.cli.console import severity_colours
        from lossaudit.formats.text import render_report

        typer.echo(severity_colours(render_report(report)))
    return EXIT_FINDINGS if report.verdict == "fail" else EXIT_PASS


def emit_as(report: AuditReport, output: OutputFormat, *, source: bool = False) -> int:
    """Print the report in ``output`` and return its exit code (``source``: a report on
    training scripts, whose text is one block per flagged line)."""
    if output is OutputFormat.json:
        typer.echo(report.to_json())
    elif output is OutputFormat.sarif:
        import json

        from lossaudit.formats.sarif import render_sarif

        typer.echo(json.dumps(render_sarif(report), indent=2, allow_nan=False))
    elif output is OutputFormat.github:
        from lossaudit.formats.github import render_github

        typer.echo(render_github(report))
    else:
        from lossaudit.cli.console import severity_colours
        from lossaudit.formats.text import render_report, render_source_report

        typer.echo(severity_colours(render_source_report(report) if source else render_report(report)))
    return EXIT_FINDINGS if report.verdict == "fail" else EXIT_PASS


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def parse_threshold(text: str) -> tuple[str, float]:
    """``accuracy=0.9`` -> ("accuracy", 0.9); one-line bad input otherwise."""
    import math

    name, sep, value = text.partition("=")
    try:
        floor = float(value)
    except ValueError:
        floor = math.nan
    if not sep or not name.strip() or not math.isfinite(floor):
        raise bad_input(f"--threshold takes NAME=NUMBER, got {text!r}")
    return name.strip(), floor
