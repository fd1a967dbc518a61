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
        from lossaudit.cli import console
        from lossaudit.core.config_file import base_config
        from lossaudit.pipeline.config import load_pipeline
        from lossaudit.pipeline.runner import record_project_outcome, run_pipeline

        overrides = rule_overrides(select, ignore, fail_on)
        config = load_pipeline(pipeline, base=base_config(config_file), overrides=overrides)
        # An empty --tracking-uri (the MLproject `registry` entry point's default) is not given.
        uri = tracking_uri if tracking_uri and tracking_uri.strip() else None
        # Progress: a live line on stderr in a terminal, nothing in a pipe or with --json.
        with console.progress(f"running {pipeline.name}") as update:
            outcome = run_pipeline(
                config, tracking_uri=uri, no_log=no_log, progress=None if as_json else update, kinds=kinds()
            )
        # Under `mlflow run`, the project run gets the verdict, codes and folders at exit.
        record_project_outcome(outcome)
        if as_json:
            typer.echo(json.dumps(outcome.to_dict(), indent=2))
        elif outcome.table is not None:
            typer.echo(outcome.table)
        else:
            _print_outcome(config, outcome, uri if not no_log else None, logged=not no_log)
        for line in {e.error for e in outcome.entries if e.error} | (
            {outcome.tracking_error} if outcome.tracking_error else set()
        ):
            typer.echo(f"lossaudit: error: {line}", err=True)
        return outcome.exit_code

    guarded(body)


def _model_verdict(entry: Any) -> str:
    """The audited model's own verdict (the demo's models fail on purpose)."""
    verdict = entry.extra.get("model_verdict")
    if verdict:
        return str(verdict)
    return "fail" if any(f.get("severity") == "error" for f in entry.findings) else "pass"


def _print_outcome(config: Any, outcome: Any, tracking_uri: str | None, *, logged: bool) -> None:
    """A headed table of the entries, then where the runs are and how to see them."""
    from lossaudit.cli import console

    entries = outcome.entries
    if config.kind == "demo":
        headers = ("scenario", "reproduced?", "findings", "audited model", "MLflow run")
        rows = [
            (
                e.name,
                "error" if e.verdict == "error" else ("yes" if e.extra.get("reproduced") else "no"),
                ", ".join(e.codes) or "none",
                _model_verdict(e),
                e.run_id or "-",
            )
            for e in entries
        ]
        styles = ["pass" if e.verdict == "pass" else "error" for e in entries]
    else:
        headers = ("audit", "verdict", "findings", "report folder", "MLflow run")
        rows = [
            (e.name, e.verdict, ", ".join(e.codes) or "none", e.folder or "-", e.run_id or "-")
            for e in entries
        ]
        styles = ["pass" if e.verdict == "pass" else "error" for e in entries]
    if rows:
        console.table(headers, rows, styles)
    if config.kind == "demo":
        from lossaudit.cli.demo import demo_verdict_line

        reproduced = sum(1 for e in entries if e.extra.get("reproduced"))
        failing = sum(1 for e in entries if e.verdict != "error" and _model_verdict(e) == "fail")
        typer.echo(demo_verdict_line(reproduced, len(entries), failing, outcome.verdict))
    else:
        typer.echo(f"pipeline {config.name}: {outcome.verdict}")
    typer.echo(_where(config, entries, tracking_uri, logged=logged))


def _where(config: Any, entries: Any, tracking_uri: str | None, *, logged: bool) -> str:
    """One closing line: where the report folders and the MLflow runs are, and how to see them."""
    out = config.resolve(config.out)
    if not logged or not config.log.enabled or not any(e.run_id for e in entries):
        return f"reports in {out}; nothing logged to MLflow"
    from lossaudit.sinks.mlflow import project_run_id
    from lossaudit.tracking import DEFAULT_EXPERIMENT
    from lossaudit.tracking.store import resolve_tracking_uri

    target = resolve_tracking_uri(tracking_uri or config.log.tracking_uri)
    experiment = config.log.experiment or DEFAULT_EXPERIMENT
    parent = project_run_id(target.uri)
    if parent is not None:
        # Under `mlflow run` the runs are children of the project run, in its experiment.
        named = _experiment_name(target.uri, next(e.run_id for e in entries if e.run_id))
        experiment = named or experiment
        runs = f"runs nested in the project run {parent} in {target.describe()}"
    else:
        runs = f"runs in {target.describe()}"
    if target.is_http:
        see = f"open {target.uri}"
    else:
        see = f"see them with `mlflow ui --backend-store-uri {target.uri}`"
    return f"reports in {out}; {runs}, experiment '{experiment}'; {see}"


def _experiment_name(tracking_uri: str, run_id: str) -> str | None:
    """The name of the experiment ``run_id`` was logged to; None when the store does not answer
    (the closing line then names the pipeline's experiment setting)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        client = MlflowClient(tracking_uri)
        return str(client.get_experiment(client.get_run(run_id).info.experiment_id).name)
    except (MlflowException, OSError):
        return None


def kinds() -> dict[str, Any]:
    """The pipeline kinds beyond ``audit``, wired here (the pipeline imports neither package)."""
    from lossaudit.demo.pipeline import run_demo
    from lossaudit.registry.pipeline import run_registry

    return {"demo": run_demo, "registry": run_registry}


def register(app: typer.Typer) -> None:
    """Add ``run`` to the ``lossaudit`` app."""
    app.command("run")(run)
