"""What every ``lossaudit`` command shares: option types, the error guard, report output.

Imports only Typer: command modules (``cli``, ``cli_keras``, ``cli_mlflow``) build on it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from lossaudit.errors import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_PASS, LossauditError

if TYPE_CHECKING:
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
FailOnOpt = Annotated[FailOn, typer.Option("--fail-on", help="Lowest finding severity that fails (exit 1).")]
LabelColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--label-column",
        help="Label column(s) of a CSV/Parquet file; repeat or use a glob for one-hot columns.",
    ),
]


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    typer.echo(f"lossaudit: error: {message}", err=True)
    raise typer.Exit(code)


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


def emit(report: AuditReport, as_json: bool) -> int:
    """Print the report and return its exit code."""
    if as_json:
        typer.echo(report.to_json())
    else:
        from lossaudit.formats.text import render_report

        typer.echo(render_report(report))
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
