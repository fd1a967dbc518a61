"""``lossaudit run PIPELINE.yaml``: execute an audit, demo or registry pipeline file.

Imports only Typer and :mod:`lossaudit.cli_common` at top level.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lossaudit.cli_common import JsonOpt, guarded
from lossaudit.cli_mlflow import NoLogOpt, TrackingUriOpt


def run(
    pipeline: Annotated[Path, typer.Argument(help="A pipeline file, e.g. pipelines/ci.yaml.")],
    tracking_uri: TrackingUriOpt = None,
    no_log: NoLogOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the audits a pipeline file describes (kind audit, demo or registry).

    Exit codes: 0 pass; 1 an audit failed (for demo: a scenario did not reproduce); 2 an audit
    could not run (bad input); 3 MLflow unreachable (local report folders are complete).
    """

    def body() -> int:
        from lossaudit.pipeline.config import load_pipeline
        from lossaudit.pipeline.runner import run_pipeline

        config = load_pipeline(pipeline)

        def progress(line: str) -> None:
            if not as_json:
                typer.echo(line, err=True)

        outcome = run_pipeline(config, tracking_uri=tracking_uri, no_log=no_log, progress=progress)
        if as_json:
            typer.echo(json.dumps(outcome.to_dict(), indent=2))
        elif outcome.table is not None:
            typer.echo(outcome.table)
        else:
            for entry in outcome.entries:
                codes = ",".join(entry.codes) or "-"
                where = f" run {entry.run_id}" if entry.run_id else ""
                typer.echo(f"{entry.verdict:<5} {entry.name:<28} {codes:<28} {entry.folder or ''}{where}")
                if entry.error:
                    typer.echo(f"      {entry.error}")
            typer.echo(f"pipeline {config.name}: {outcome.verdict}")
        for line in {e.error for e in outcome.entries if e.error} | (
            {outcome.tracking_error} if outcome.tracking_error else set()
        ):
            typer.echo(f"lossaudit: error: {line}", err=True)
        return outcome.exit_code

    guarded(body)


def register(app: typer.Typer) -> None:
    """Add ``run`` to the ``lossaudit`` app."""
    app.command("run")(run)
