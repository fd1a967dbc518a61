"""``lossaudit log``: upload a report folder to MLflow as a run, and the MLflow options other
commands share (``--tracking-uri``, ``--experiment``, ``--no-log``).

Imports only Typer and :mod:`lossaudit.cli.common` at top level; MLflow is imported by the command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lossaudit.cli.common import JsonOpt, guarded
from lossaudit.errors import EXIT_PASS

if TYPE_CHECKING:
    from lossaudit.sinks.mlflow import MlflowSink
    from lossaudit.sources.base import ModelSource

TrackingUriOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help=(
            "MLflow tracking URI (http://host:5000, sqlite:///path/mlflow.db). Default: "
            "MLFLOW_TRACKING_URI, else a local store ./mlflow.db with artifacts in ./mlruns."
        ),
    ),
]
ExperimentOpt = Annotated[
    str | None,
    typer.Option(
        "--experiment",
        envvar="MLFLOW_EXPERIMENT_NAME",
        help="MLflow experiment for the audit run (created when missing). Default: lossaudit.",
    ),
]
NoLogOpt = Annotated[
    bool,
    typer.Option("--no-log", help="Write the local report folder only; do not log an MLflow run."),
]


def log(
    report_dir: Annotated[
        Path,
        typer.Argument(help="A report folder written by `lossaudit audit` (holds report.json)."),
    ],
    tracking_uri: TrackingUriOpt = None,
    experiment: ExperimentOpt = None,
    run_name: Annotated[
        str | None, typer.Option("--run-name", help="Run name (default: audit <model> <verdict>).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a report folder to MLflow as one run (e.g. one written while MLflow was down).

    Safe to repeat: the folder's upload.json records the run it was logged to. A folder already
    uploaded to this store is not sent again (the command says where its run is); an upload that
    was cut short (a killed server or process) is finished in the same run, not in a second one.

    Exit codes: 0 uploaded, or already uploaded (the run id and where to see it are printed,
    whatever the audit's verdict); 2 the folder has no readable report.json; 3 MLflow is
    unreachable or refused the run (the folder is kept; run the same command again later).
    """

    def body() -> int:
        from lossaudit.sinks.mlflow import load_report_dict, log_report_folder
        from lossaudit.tracking import DEFAULT_EXPERIMENT

        report = load_report_dict(report_dir)
        logged = log_report_folder(
            report_dir,
            tracking_uri=tracking_uri,
            experiment=experiment or DEFAULT_EXPERIMENT,
            run_name=run_name,
        )
        if as_json:
            doc = {
                "uploaded": True,
                "report_dir": str(report_dir),
                "report_verdict": report.get("verdict"),
                "report_codes": report.get("codes", []),
                **logged.to_dict(),
            }
            typer.echo(json.dumps(doc, indent=2))
        else:
            for note in logged.notes:
                typer.echo(f"note: {note}")
            typer.echo(logged.describe())
            typer.echo(f"audit verdict in {report_dir}: {report.get('verdict')}")
        return EXIT_PASS

    guarded(body)


def is_mlflow_model(model: str) -> bool:
    """True for ``models:/...`` and ``runs:/...`` (checked without importing MLflow)."""
    return model.strip().lower().startswith(("models:", "runs:"))


def report_name(model: str) -> str:
    """A report folder name for a model path or MLflow URI: ``digits`` for ``models/digits.keras``,
    ``digits-v3`` for ``models:/digits/3``, ``digits-champion`` for ``models:/digits@champion``,
    ``run-<id>-model`` for ``runs:/<id>/model``."""
    from lossaudit.safe_names import folder_name

    text = model.strip()
    if is_mlflow_model(text):
        body = text.split(":", 1)[1].strip("/")
        if text.lower().startswith("runs:"):
            body = "run-" + body
        elif "/" in body and body.rsplit("/", 1)[1].isdigit():
            body = body.rsplit("/", 1)[0] + "-v" + body.rsplit("/", 1)[1]
        return folder_name(body, what="model name", fallback="model")
    # A file named "...keras" has the stem "..": slugged, never followed.
    return folder_name(Path(text).stem, what="model name", fallback="model")


def audit_source_and_sink(
    model: str, tracking_uri: str | None, experiment: str | None, no_log: bool
) -> tuple[ModelSource | None, MlflowSink | None]:
    """The MLflow pieces of ``lossaudit audit``: a model source for ``models:/`` and ``runs:/``
    URIs (None for files: the pipeline reads those itself) and the sink that logs the run (None
    with ``--no-log``)."""
    from lossaudit.sinks.mlflow import MlflowSink, project_run_id
    from lossaudit.tracking import DEFAULT_EXPERIMENT

    source: ModelSource | None = None
    if is_mlflow_model(model):
        from lossaudit.sources.mlflow import MlflowModelSource

        source = MlflowModelSource(model, tracking_uri=tracking_uri)
    sink = (
        None
        if no_log
        else MlflowSink(
            tracking_uri=tracking_uri,
            experiment=experiment or DEFAULT_EXPERIMENT,
            parent_run_id=project_run_id(tracking_uri),
        )
    )
    return source, sink


def logged_line(sink: MlflowSink | None) -> str | None:
    """``lossaudit: logged MLflow run ...`` after a successful upload, else None."""
    if sink is None or not sink.logged:
        return None
    return f"lossaudit: {sink.logged[-1].describe()}"


def register(app: typer.Typer) -> None:
    """Add ``log`` to the ``lossaudit`` app."""
    app.command("log")(log)
