"""``lossaudit run PIPELINE.yaml``: execute an audit, demo or registry pipeline file.

Imports only Typer and :mod:`lossaudit.cli.common` at top level.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lossaudit.cli.common import (
    ConfigOpt,
    IgnoreOpt,
    JsonOpt,
    RuleFailOnOpt,
    SelectOpt,
    guarded,
    rule_overrides,
)
from lossaudit.cli.log import NoLogOpt, TrackingUriOpt


def run(
    pipeline: Annotated[Path, typer.Argument(help="A pipeline file, e.g. pipelines/ci.yaml.")],
    tracking_uri: TrackingUriOpt = None,
    no_log: NoLogOpt = False,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    config_file: ConfigOpt = None,
    fail_on: RuleFailOnOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the audits a pipeline file describes (kind audit, demo or registry).

    Rule configuration: the configuration file (--config, else found from the working folder
    upwards) < the pipeline file's select/ignore/severity/fail_on/alpha/tolerance < --select,
    --ignore, --fail-on.

    Exit codes: 0 pass; 1 an audit failed (for demo: a scenario did not reproduce); 2 an audit
    could not run (bad input); 3 MLflow unreachable (local report folders are complete). Under
    `mlflow run`, which exits 1 for any failure, the project run is tagged lossaudit.verdict,
    lossaudit.codes and lossaudit.exit_code.
    """

    def body() -> int:
        from lossaudit.core.config_file import base_config
        from lossaudit.pipeline.config import load_pipeline
        from lossaudit.pipeline.runner import record_project_outcome, run_pipeline

        overrides = rule_overrides(select, ignore, fail_on)
        config = load_pipeline(pipeline, base=base_config(config_file), overrides=overrides)

        def progress(line: str) -> None:
            if not as_json:
                typer.echo(line, err=True)

        # An empty --tracking-uri (the MLproject `registry` entry point's default) is not given.
        uri = tracking_uri if tracking_uri and tracking_uri.strip() else None
        outcome = run_pipeline(config, tracking_uri=uri, no_log=no_log, progress=progress, kinds=kinds())
        # Under `mlflow run`, the project run gets the verdict, codes and folders at exit.
        record_project_outcome(outcome)
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


def kinds() -> dict[str, Any]:
    """The pipeline kinds beyond ``audit``, wired here (the pipeline imports neither package)."""
    from lossaudit.demo.pipeline import run_demo
    from lossaudit.registry.pipeline import run_registry

    return {"demo": run_demo, "registry": run_registry}


def register(app: typer.Typer) -> None:
    """Add ``run`` to the ``lossaudit`` app."""
    app.command("run")(run)
