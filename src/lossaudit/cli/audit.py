"""``lossaudit audit``: load a Keras model, run it on eval data, and audit what it reports.

Imports only Typer and :mod:`lossaudit.cli.common` at module level; the pipeline, numpy and Keras
are imported when the command runs, so ``lossaudit --help`` stays fast.
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
    MeasuredOn,
    ReportedNOpt,
    ReportedOnOpt,
    RocAucMode,
    RuleFailOnOpt,
    SelectOpt,
    emit,
    guarded,
    parse_reported,
    parse_threshold,
    rule_config,
)
from lossaudit.cli.log import ExperimentOpt, NoLogOpt, TrackingUriOpt

DEFAULT_REPORTS_DIR = "lossaudit-reports"


def audit(
    model: Annotated[
        str, typer.Argument(metavar="MODEL", help="A saved model: .keras, .h5, or a SavedModel folder.")
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            metavar="PATH",
            help="Eval data: .npz with arrays x and y, or CSV/Parquet (with --engine spark: Parquet "
            "files, a folder or a glob, any URI Spark reads).",
        ),
    ],
    train: Annotated[
        Path | None, typer.Option("--train", help="Training data for --retrain (same formats as --data).")
    ] = None,
    retrain: Annotated[
        bool,
        typer.Option("--retrain", help="Prove the fix: retrain the original and the fixed head on --train."),
    ] = False,
    reported: Annotated[
        list[str] | None,
        typer.Option(
            "--reported", help="A metric a past run reported, NAME=VALUE (repeat), e.g. accuracy=0.9979."
        ),
    ] = None,
    reported_on: ReportedOnOpt = MeasuredOn.this,
    reported_n: ReportedNOpt = None,
    retrain_seeds: Annotated[
        int,
        typer.Option(
            "--retrain-seeds",
            min=1,
            max=10,
            help="Seeds each head is retrained with; the fix is proven only beyond their spread.",
        ),
    ] = 3,
    out: Annotated[
        Path | None,
        typer.Option("--out", help=f"Report folder (default {DEFAULT_REPORTS_DIR}/<model name>)."),
    ] = None,
    label_column: LabelColumnOpt = None,
    unsafe: Annotated[
        bool,
        typer.Option(
            "--unsafe", help="Load Lambda layers, running the Python code stored in the model file."
        ),
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Samples per predict batch.")] = 256,
    epochs: Annotated[int, typer.Option("--epochs", help="Retrain epochs.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Retrain random seed.")] = 0,
    gx: Annotated[
        bool,
        typer.Option(
            "--gx/--no-gx",
            help="Validate labels and features with Great Expectations (result and Data Docs kept).",
        ),
    ] = True,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold", help="Floor on a recomputed metric, NAME=VALUE (repeat), e.g. accuracy=0.9."
        ),
    ] = None,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    config: ConfigOpt = None,
    fail_on: RuleFailOnOpt = None,
    tracking_uri: TrackingUriOpt = None,
    experiment: ExperimentOpt = None,
    no_log: NoLogOpt = False,
    as_json: JsonOpt = False,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="Where rows are read, predicted and counted: this process, or Spark (pip install "
            "'lossaudit[spark]').",
        ),
    ] = Engine.local,
    master: MasterOpt = None,
    roc_auc: Annotated[
        RocAucMode,
        typer.Option(
            "--roc-auc",
            help="exact: keep every prediction (n x units) to rank the scores. bounds: fold each "
            "batch into counts as it is predicted and keep none; ROC-AUC is bounded from score "
            "histograms (roc_auc_lower/roc_auc_upper, roc_auc where they meet). With --engine "
            "spark, exact collects the scores to the driver up to 200,000 rows and bounds beyond.",
        ),
    ] = RocAucMode.exact,
) -> None:
    """Audit a saved Keras model on eval data: static read, load, predict, recompute, compare.

    Writes a report folder (report.json, report.md, ...) and exits as `check` does.
    """

    def body() -> int:
        from lossaudit.cli.log import audit_source_and_sink, logged_line, report_name
        from lossaudit.pipeline.stages import AuditRequest, run_audit

        if engine is Engine.spark:
            from lossaudit.spark.session import require_pyspark

            require_pyspark()  # one line before anything is read
        elif master is not None:
            from lossaudit.errors import BadInputError

            raise BadInputError("--master goes with --engine spark")

        rules = rule_config(config, select, ignore, fail_on)
        reported_metrics = parse_reported(reported, reported_on, reported_n)
        out_dir = out if out is not None else Path(DEFAULT_REPORTS_DIR) / report_name(model)
        from lossaudit.sinks.local import check_writable

        check_writable(out_dir)  # before the model loads, not after the whole audit
        request = AuditRequest(
            model=model,
            data=data,
            label_columns=tuple(label_column or ()),
            train=None if train is None else str(train),
            retrain=retrain,
            reported=reported_metrics,
            out_dir=str(out_dir),
            config=rules,
            unsafe=unsafe,
            batch_size=batch_size,
            epochs=epochs,
            seed=seed,
            retrain_seeds=retrain_seeds,
            gx=gx,
            thresholds=dict(parse_threshold(t) for t in threshold or ()),
            roc_auc=roc_auc.value,
        )
        source, mlflow_sink = audit_source_and_sink(model, tracking_uri, experiment, no_log)
        from lossaudit.cli import console

        # A live status line on stderr in a terminal (which stage is running); nothing in a pipe.
        with console.progress(f"audit {model}") as update:
            if engine is Engine.spark:
                from lossaudit.pipeline.spark_audit import run_spark_audit

                outcome = run_spark_audit(
                    request,
                    master=master,
                    source=source,
                    sinks=() if mlflow_sink is None else (mlflow_sink,),
                    progress=None if as_json else update,
                )
            else:
                outcome = run_audit(
                    request,
                    source=source,
                    sinks=() if mlflow_sink is None else (mlflow_sink,),
                    progress=None if as_json else update,
                )
        from lossaudit.pipeline.project_run import record_audit

        record_audit(outcome, mlflow_sink)  # under `mlflow run`: the project run's verdict and folder
        code = emit(outcome.report, as_json)
        # With MLflow down the error line names the folder; stderr keeps that one line.
        if outcome.folder is not None and outcome.sink_error is None:
            typer.echo(f"lossaudit: report written to {outcome.folder}", err=True)
        line = logged_line(mlflow_sink)
        if line is not None:
            typer.echo(line, err=True)
        if outcome.sink_error is not None:
            raise outcome.sink_error
        return code

    guarded(body)


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command to the ``lossaudit`` app."""
    app.command(name="audit")(audit)
