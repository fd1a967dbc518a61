"""The ``lossaudit`` command line: the one place that wires the packages together.

This module builds the Typer app and its entry point :func:`main`; each command family has its
module beside it (``check`` and ``compare`` in :mod:`.check`, ``rules`` and ``explain`` in
:mod:`.rules`, ``audit``, ``demo``, ``run`` in :mod:`.pipeline`, ``registry``, ``log``), with the
options they share in :mod:`.common`.

Start-up stays light: these modules import Typer and nothing heavy. numpy, scikit-learn,
TensorFlow, MLflow and Great Expectations are imported inside the commands that need them.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from lossaudit import __version__
from lossaudit.quiet import hide_pyspark_import_warnings

EXIT_CODES_HELP = (
    "Exit codes: 0 pass; 1 findings at or above --fail-on; 2 bad input (one line on stderr); "
    "3 audit complete and report written locally, but MLflow unreachable."
)

app = typer.Typer(
    name="lossaudit",
    help=(
        "Check that a classifier's labels, output layer, loss and metrics fit together, and that "
        "the numbers it reports are true.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lossaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """lossaudit."""


def _register_commands() -> None:
    """One module per command family; each imports only Typer at top level, and its command
    bodies import what they use."""
    from lossaudit.cli import audit, check, demo, log, pipeline, registry, rules

    check.register(app)
    rules.register(app)
    audit.register(app)
    demo.register(app)
    pipeline.register(app)
    registry.register(app)
    log.register(app)


_register_commands()


def main() -> None:
    # Quiet TensorFlow and MLflow before anything may import them; the user's settings win.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    # MLflow imports pyspark whenever it is installed, and pyspark warns about pandas 3 on stderr.
    hide_pyspark_import_warnings()
    from lossaudit.pipeline.project_run import project_run_verdict

    # Under `mlflow run`, the project run is tagged with the verdict and the real exit code.
    with project_run_verdict():
        try:
            code = app(prog_name="lossaudit", standalone_mode=False)
        except Exception as exc:
            line = usage_error_line(exc)
            if line is None:
                raise
            # Bad input gets one line, as every other error does (Click's own print is four).
            sys.stderr.write(f"lossaudit: error: {line}\n")
            raise SystemExit(getattr(exc, "exit_code", 2)) from exc
        raise SystemExit(code if isinstance(code, int) else 0)


def usage_error_line(exc: BaseException) -> str | None:
    """One line for a Click usage error (an unknown command or option, a value of the wrong
    type, a missing argument) with the command's ``--help`` to read; None for anything else.
    Click's exceptions are recognised by shape: Typer vendors its own copy of Click."""
    format_message = getattr(exc, "format_message", None)
    if not callable(format_message) or not hasattr(exc, "exit_code"):
        return None
    message = " ".join(str(format_message()).split())
    if type(exc).__name__ == "Abort" or not message:
        return None
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "lossaudit"
    return f"{message} (see '{path} --help')"


if __name__ == "__main__":
    main()
