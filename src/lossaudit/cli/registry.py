"""``lossaudit registry``: scheduled audits over the MLflow Model Registry.

Imports only Typer and :mod:`lossaudit.cli.common` at top level; MLflow and the audit are
imported when the command runs.

Scheduling it with cron (every night at 03:00; a version already audited with the same data and
rules is skipped, so a nightly run costs only what is new), two lines of a crontab::

    MLFLOW_TRACKING_URI=http://mlflow.internal:5000
    0 3 * * * cd /srv/models && lossaudit registry --workers 2 --promote-alias audited >> audit.log 2>&1
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lossaudit.cli.common import (
    ConfigOpt,
    Engine,
    IgnoreOpt,
    JsonOpt,
    LabelColumnOpt,
    MasterOpt,
    RuleFailOnOpt,
    SelectOpt,
    guarded,
    rule_config,
)

REGISTRY_EXIT_CODES = (
    "Exit codes, from the worst current verdict of the selected versions (fresh, or stored on a "
    "skipped version): 0 every one passes; 1 one's verdict is fail; 2 one's verdict is error, or "
    "one could not be audited now (no eval data, corrupt artifact, crash: it keeps its earlier "
    "verdict tags and gets lossaudit.error), or bad options; 3 MLflow unreachable."
)


def registry(
    name: Annotated[
        str | None,
        typer.Option("--name", help="Registered model name or glob, e.g. 'digits*'. Default: every model."),
    ] = None,
    alias: Annotated[
        str | None,
        typer.Option("--alias", help="Audit only the version this alias points to, in each model."),
    ] = None,
    filter_: Annotated[
        str | None,
        typer.Option("--filter", help="Extra search_model_versions filter, e.g. \"tags.team = 'vision'\"."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes (each imports TensorFlow once); 1 audits in this process. With "
            "--engine spark: versions audited at once (default: Spark's default parallelism).",
        ),
    ] = 1,
    force: Annotated[
        bool,
        typer.Option("--force", help="Audit again versions already audited with the same data and rules."),
    ] = False,
    promote_alias: Annotated[
        str | None,
        typer.Option(
            "--promote-alias",
            help=(
                "Point this alias of each model at its newest passing version; an alias on a version "
                "whose latest verdict is fail or error is moved off it, or removed."
            ),
        ),
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help=(
                "MODEL=PATH (repeat): eval data for a model name or glob. Without it: the version "
                "tag lossaudit.data, else the dataset logged on the version's source run."
            ),
        ),
    ] = None,
    label_column: LabelColumnOpt = None,
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder for one report folder per audited version."),
    ] = Path("lossaudit-reports/registry"),
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking and registry URI. Default: MLFLOW_TRACKING_URI, else ./mlflow.db.",
        ),
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option(
            "--experiment",
            envvar="MLFLOW_EXPERIMENT_NAME",
            help="Experiment of the summary run and the audit runs. Default: lossaudit.",
        ),
    ] = None,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    config: ConfigOpt = None,
    fail_on: RuleFailOnOpt = None,
    as_json: JsonOpt = False,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="Where the versions are audited: worker processes here, or Spark, one task per "
            "version on the executors (pip install 'lossaudit[spark]'; the tracking server must be "
            "reachable from them).",
        ),
    ] = Engine.local,
    master: MasterOpt = None,
) -> None:
    """Audit registered model versions and tag each with its verdict.

    Finds versions (search_model_versions), resolves each one's eval data, audits each as an
    MLflow run nested under one summary run, and writes lossaudit.verdict, lossaudit.codes,
    lossaudit.audit_run, lossaudit.audited_at, lossaudit.data_hash and lossaudit.rules_version
    tags on the version. A version that cannot be audited now keeps its earlier verdict tags and
    gets lossaudit.error, lossaudit.error_kind and lossaudit.error_at.

    With --engine spark each version is one Spark job on the executors (master: --master, else
    SPARK_MASTER, else local[*]); they fetch the model and log the audit run themselves.
    """

    def body() -> int:
        from lossaudit.cli import console
        from lossaudit.registry.audit import run_registry_audit
        from lossaudit.registry.options import RegistryOptions, parse_data_mapping
        from lossaudit.registry.render import render_table
        from lossaudit.registry.results import VersionResult
        from lossaudit.tracking import DEFAULT_EXPERIMENT

        rules = rule_config(config, select, ignore, fail_on)
        options = RegistryOptions(
            name=name,
            alias=alias,
            filter=filter_,
            workers=workers,
            engine=engine.value,
            master=master,
            force=force,
            promote_alias=promote_alias,
            data=parse_data_mapping(data or ()),
            label_columns=tuple(label_column or ()),
            fail_on=rules.fail_on.value,
            rules=rules.to_dict(),
            tracking_uri=tracking_uri,
            experiment=experiment or DEFAULT_EXPERIMENT,
            out_dir=str(out),
        )

        def finished(result: VersionResult) -> None:
            # One line per version on stderr as it finishes: a long job shows it is alive.
            console.stderr_line(f"lossaudit: {result.label}: {result.describe()}")

        # And a live status line on stderr in a terminal (what the job is at, versions done out
        # of all); nothing in a pipe or with --json.
        with console.progress("registry") as update:
            summary = run_registry_audit(options, on_version=finished, progress=None if as_json else update)
        typer.echo(summary.to_json() if as_json else render_table(summary))
        if summary.summary_error is not None:
            typer.echo(f"lossaudit: error: {summary.summary_error}", err=True)
        return summary.exit_code

    guarded(body)


registry.__doc__ = f"{registry.__doc__}\n\n    {REGISTRY_EXIT_CODES}"


def register(app: typer.Typer) -> None:
    """Add the ``registry`` command to the ``lossaudit`` app."""
    app.command(name="registry")(registry)
