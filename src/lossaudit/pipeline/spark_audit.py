"""``lossaudit audit --engine spark``: the audit's stages with Spark as the engine past one machine.

The same stages as :func:`lossaudit.pipeline.stages.run_audit`, timed the same way, with the same
report and MLflow run. The saved head's read, the model's load (for its live head and Keras's
metric classes), the rules, the report and the log are the local stages themselves; Spark swaps in
for the three that touch every row:

* validate_labels -- the data as a Spark DataFrame (:mod:`lossaudit.spark.data`); label evidence
  and the data checks as aggregates (:mod:`lossaudit.spark.labels`);
* predict -- outputs through ``mlflow.pyfunc.spark_udf``, cached; Keras's evaluate run per
  partition and merged (:mod:`lossaudit.spark.predict`);
* recompute -- the confusion matrix and sums merged over partitions (:mod:`lossaudit.spark.stats`)
  turned into the metrics by :mod:`lossaudit.core.counts`.

The report context adds ``engine``, ``partitions``, ``rows``, the Spark master and version and an
order-independent fingerprint of the data (``data_sha256`` stays empty: the rows are never in one
place to hash).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lossaudit.core.findings import DataCheck, StageFailure
from lossaudit.core.report import AuditReport, StageResult
from lossaudit.errors import BadInputError
from lossaudit.pipeline.stages import (
    COMMAND,
    AuditOutcome,
    AuditRequest,
    CompareStage,
    CompatibilityStage,
    LabelsStage,
    LogStage,
    ModelStage,
    PredictStage,
    RecomputeStage,
    ReportStage,
    _Timer,
    audit_context,
    log,
    merged_report,
    obtain_model,
    static_audit_context,
)
from lossaudit.sinks.base import ReportSink
from lossaudit.sources.base import ModelSource, model_source_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lossaudit.core.compare import Definition
    from lossaudit.core.facts import OutputFacts
    from lossaudit.core.labels import LabelEvidence
    from lossaudit.core.metrics import RecomputedMetrics
    from lossaudit.core.outputs import Reading
    from lossaudit.keras.predict import LiveEvaluation
    from lossaudit.keras.static import StaticModel
    from lossaudit.spark.data import EvalData
    from lossaudit.spark.labels import LabelFacts
    from lossaudit.spark.predict import ShippedModel

ENGINES = ("local", "spark")
ENGINE = "spark"


@dataclass(frozen=True)
class SparkLabelsStage:
    """validate_labels on Spark: the data as read, what the labels are, the data checks."""

    data: EvalData
    facts: LabelFacts
    static: StaticModel
    labels: LabelEvidence
    checks: tuple[DataCheck, ...] | None = None
    """The checks the Great Expectations suite makes, as Spark aggregates (None: skipped)."""
    gx: None = None
    scratch: Path | None = None
    data_sha256: str | None = None

    @property
    def n_samples(self) -> int:
        return self.facts.n_rows

    @property
    def summary(self) -> str:
        ev = self.labels
        text = (
            f"{self.n_samples} samples in {self.data.partitions} partition(s); labels {ev.encoding.value}, "
            f"shape {list(ev.shape)}, K = {ev.n_classes}"
        )
        if self.checks is not None:
            failed = sum(1 for c in self.checks if not c.success)
            text += f"; data checks (Spark): {len(self.checks) - failed}/{len(self.checks)} passed"
        return text


@dataclass(frozen=True)
class SparkPredictStage:
    """predict on Spark: the cached outputs (not collected), Keras's merged evaluate."""

    frame: DataFrame
    rows: int
    units: int
    output_kind: str
    evaluation: LiveEvaluation
    built_metrics: tuple[tuple[str, str], ...] | None
    partitions: int

    @property
    def summary(self) -> str:
        if self.evaluation.error is not None:
            live = f"evaluate failed ({self.evaluation.error})"
        else:
            live = "evaluate " + ", ".join(f"{k} {v:.4f}" for k, v in self.evaluation.values.items())
            live += f" (merged over {self.partitions} partition(s))"
        built = ""
        if self.built_metrics:
            built = "; built " + ", ".join(f"{d}={c}" for d, c in self.built_metrics)
        return f"{self.rows}x{self.units} {self.output_kind} through spark_udf; {live}{built}"


@dataclass(frozen=True)
class SparkRecomputeStage:
    """recompute on Spark: metrics from the merged confusion matrix and sums, or why none."""

    labels: LabelEvidence
    outputs: OutputFacts
    metrics: RecomputedMetrics | None = None
    accuracy_defs: tuple[Definition, ...] | None = None
    reading: Reading | None = None
    unscored: str | None = None
    scored: None = None

    @property
    def status(self) -> str:
        return "skipped" if self.metrics is None else "ok"

    @property
    def summary(self) -> str:
        if self.metrics is None:
            return f"no metrics: {self.unscored}"
        values = self.metrics.values
        shown = [
            f"{k} {values[k]:.4f}" for k in ("accuracy", "majority_baseline") if values.get(k) is not None
        ]
        return f"{self.metrics.task}: " + ", ".join(shown) + " (merged counts)"


# --- the stages -------------------------------------------------------------------------------


def validate_labels(request: AuditRequest, source: ModelSource, spark: SparkSession) -> SparkLabelsStage:
    """Read the saved head (no TensorFlow), read the data with Spark and judge the labels by
    aggregates; the data checks when ``request.gx``."""
    from lossaudit.core.audit import require_readable
    from lossaudit.spark.data import read_eval_data
    from lossaudit.spark.labels import data_checks, summarise

    static = source.read_static()
    data = read_eval_data(spark, request.data, request.label_columns)
    facts = summarise(data)
    head = static.head
    evidence = facts.evidence(None if head is None else head.units)
    if head is not None:
        evidence = require_readable(evidence)
    elif evidence.problem is not None and evidence.problem.unreadable:
        raise BadInputError(f"labels: {evidence.reason}")
    checks = data_checks(data, facts, head) if request.gx and head is not None else None
    return SparkLabelsStage(data=data, facts=facts, static=static, labels=evidence, checks=checks)


def check_compatibility(request: AuditRequest, labels: SparkLabelsStage) -> CompatibilityStage:
    """The rule catalogue on the saved head and the label evidence."""
    from lossaudit.core.audit import check

    head = labels.static.head
    if head is None:
        return CompatibilityStage(report=None)
    return CompatibilityStage(
        report=check(head, command=COMMAND, config=request.rules, evidence=labels.labels)
    )


def model_file(source: ModelSource, static: StaticModel) -> Path:
    """The file the executors load: the audited file, or the one downloaded from MLflow."""
    from lossaudit.sources.local import LocalFileSource
    from lossaudit.sources.mlflow import MlflowModelSource

    if static.format == "savedmodel":
        raise BadInputError(
            f"{source.uri} is a SavedModel folder: the Spark engine ships .keras and .h5 files "
            "(audit it with --engine local, or save it as .keras)"
        )
    if isinstance(source, LocalFileSource):
        return Path(source.path)
    if isinstance(source, MlflowModelSource):
        return Path(source.fetch().model_file)
    path = getattr(source, "path", None)
    if path is None:
        raise BadInputError(f"{source.uri}: the Spark engine needs a model file to ship to the executors")
    return Path(path)


def predict(
    request: AuditRequest,
    source: ModelSource,
    labels: SparkLabelsStage,
    model: ModelStage,
    spark: SparkSession,
    keep: Callable[[ShippedModel], None],
) -> SparkPredictStage:
    """The outputs through ``spark_udf`` (cached, computed by the first count) and Keras's evaluate
    merged over the partitions; the shipped model folder goes to ``keep`` for removal at the end."""
    from lossaudit.keras.live import built_metric_classes
    from lossaudit.keras.predict import output_kind
    from lossaudit.spark.predict import check_input, evaluate_merged, predictions_frame, ship_model

    check_input(model.model, labels.facts.feature_count, labels.n_samples)
    shipped = ship_model(
        model_file(source, labels.static),
        sha256=labels.static.sha256,
        unsafe=request.unsafe,
        batch_size=request.batch_size,
    )
    keep(shipped)
    frame = labels.data.frame
    inputs = labels.data.inputs
    evaluation = evaluate_merged(
        spark,
        frame,
        model.model,
        shipped,
        unsafe=request.unsafe,
        batch_size=request.batch_size,
        inputs=inputs,
    )
    built = built_metric_classes(model.model) if evaluation.ran else None
    return SparkPredictStage(
        frame=predictions_frame(spark, frame, shipped, units=model.head.units, inputs=inputs),
        rows=labels.n_samples,
        units=model.head.units,
        output_kind=output_kind(model.head),
        evaluation=evaluation,
        built_metrics=built or None,
        partitions=labels.data.partitions,
    )


def recompute(
    labels: SparkLabelsStage, model: ModelStage, predicted: SparkPredictStage, *, roc_auc: str = "exact"
) -> SparkRecomputeStage:
    """The metrics of the task from merged counts (two Spark jobs and the ROC-AUC's). ``roc_auc``
    ``bounds`` bounds the ROC-AUC from histograms at any size; ``exact`` collects the scores to the
    driver up to :data:`lossaudit.spark.stats.ROC_EXACT_ROWS` rows and bounds it beyond."""
    from lossaudit.core.audit import require_readable, unscorable_reason
    from lossaudit.core.counts import (
        accuracy_definitions_from_counts,
        multilabel_definitions,
        multilabel_metrics,
        single_label_metrics,
    )
    from lossaudit.core.outputs import reading_of
    from lossaudit.core.resolution import task_kind
    from lossaudit.spark.stats import (
        ROC_EXACT_ROWS,
        multilabel_counts,
        single_label_counts,
        summarise_outputs,
    )

    head = model.head
    summary = summarise_outputs(predicted.frame, head)
    evidence = require_readable(labels.facts.evidence(head.units))
    outputs = summary.facts()
    reason = unscorable_reason(evidence, outputs)
    if reason is not None:
        return SparkRecomputeStage(labels=evidence, outputs=outputs, unscored=reason)
    task = task_kind(head, evidence)
    reading = reading_of(head, task, summary)
    exact_rows = 0 if roc_auc == "bounds" else ROC_EXACT_ROWS
    if task == "multilabel":
        merged, label_hits = multilabel_counts(
            predicted.frame, head, evidence, reading, summary, exact_rows=exact_rows
        )
        return SparkRecomputeStage(
            labels=evidence,
            outputs=outputs,
            metrics=multilabel_metrics(merged),
            accuracy_defs=multilabel_definitions(label_hits, are_logits=reading.are_logits),
            reading=reading,
        )
    counts, hits = single_label_counts(
        predicted.frame, head, evidence, task, reading, summary, exact_rows=exact_rows
    )
    metrics = single_label_metrics(counts, task=task)
    definitions = accuracy_definitions_from_counts(
        hits, task=task, units=head.units, are_logits=reading.are_logits, dense_labels=evidence.is_dense
    )
    return SparkRecomputeStage(
        labels=evidence, outputs=outputs, metrics=metrics, accuracy_defs=definitions, reading=reading
    )


def _spark_context(spark: SparkSession, labels: SparkLabelsStage) -> dict[str, Any]:
    from lossaudit.spark.session import describe

    data = labels.data
    return {
        "engine": ENGINE,
        "partitions": data.partitions,
        "rows": labels.n_samples,
        **describe(spark),
        "data_fingerprint": labels.facts.fingerprint,
        "feature_layout": data.feature_layout,
        "label_layout": data.label_layout,
        "data_checks": None
        if labels.checks is None
        else "Spark aggregates of the Great Expectations suite's checks",
    }


def compare(
    request: AuditRequest,
    source: ModelSource,
    labels: SparkLabelsStage,
    model: ModelStage,
    predicted: SparkPredictStage,
    recomputed: SparkRecomputeStage,
    spark: SparkSession,
) -> CompareStage:
    """Attribute Keras's and the user's numbers and run every rule, on merged counts."""
    reported = (*predicted.evaluation.reported(), *request.reported, *source.reported_metrics())
    # audit_context reads the attributes the Spark stages share with the local ones.
    context = audit_context(
        request,
        source,
        cast(LabelsStage, labels),
        model,
        cast(PredictStage, predicted),
        cast(RecomputeStage, recomputed),
    )
    context.update(_spark_context(spark, labels))
    report = merged_report(
        request,
        model.head,
        recomputed,
        reported,
        built_metrics=predicted.built_metrics,
        data_checks=labels.checks or (),
        context=context,
    )
    return CompareStage(report=report)


def compare_static(
    request: AuditRequest,
    source: ModelSource,
    labels: SparkLabelsStage,
    failures: tuple[StageFailure, ...],
    spark: SparkSession,
) -> CompareStage:
    """The findings when the live model could not be loaded or run (see the local stage)."""
    from lossaudit.core.audit import check

    head = labels.static.head
    if head is None:
        raise BadInputError(failures[0].reason if failures else "the model could not be read")
    rows = {"data_sha256": None, "n_samples": labels.n_samples}
    context = {
        **static_audit_context(request, source, labels.static, failures, data=rows),
        **_spark_context(spark, labels),
    }
    report_ = check(
        head,
        command=COMMAND,
        config=request.rules,
        failed_stages=failures,
        data_checks=labels.checks or (),
        context=context,
        evidence=labels.labels,
    )
    return CompareStage(report=report_)


def report(request: AuditRequest, compared: CompareStage, stages: Sequence[StageResult]) -> ReportStage:
    """The local report folder (no Great Expectations files: the checks ran as Spark aggregates)."""
    if request.out_dir is None:
        return ReportStage(folder=None)
    from lossaudit.sinks.local import write_report_folder

    folder = Path(request.out_dir)
    files = write_report_folder(replace(compared.report, stages=tuple(stages)), folder)
    return ReportStage(folder=folder, files=dict(files))


# --- the runner -------------------------------------------------------------------------------


@dataclass
class _Held:
    """What the audit leaves on the cluster and the disk until it ends."""

    shipped: list[ShippedModel] = field(default_factory=list)
    frames: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        for frame in self.frames:
            with contextlib.suppress(Exception):  # the session is gone: nothing is held any more
                frame.unpersist()
        for shipped in self.shipped:
            shipped.close()


def run_spark_audit(
    request: AuditRequest,
    *,
    master: str | None = None,
    source: ModelSource | None = None,
    sinks: Sequence[ReportSink] = (),
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[str], None] | None = None,
    spark: SparkSession | None = None,
) -> AuditOutcome:
    """Every stage of the audit, with Spark where rows are touched (see the module docstring).

    Parameters
    ----------
    master : the Spark master (``--master``); else ``SPARK_MASTER``, else ``local[*]``. Ignored
        when a session is active (``spark-submit``, a notebook) or given.
    spark : the session to run on (tests pass theirs).

    Raises
    ------
    BadInputError
        pyspark missing or Spark not starting, ``--retrain`` (local engine only), bad input.
    """
    from lossaudit.spark.session import require_pyspark, spark_session

    require_pyspark()
    if request.retrain:
        raise BadInputError("--retrain runs on the local engine only: drop --engine spark to retrain")
    session = spark if spark is not None else spark_session(master)
    model_source = source if source is not None else model_source_for(request.model)
    timer = _Timer(clock, progress)
    held = _Held()
    labels = timer.run("validate_labels", lambda: validate_labels(request, model_source, session))
    try:
        timer.run("check_compatibility", lambda: check_compatibility(request, labels))
        failures: list[StageFailure] = []
        model = timer.attempt(
            "obtain_model",
            # obtain_model reads only the static read of the labels stage (retrain is refused).
            lambda: obtain_model(request, model_source, cast(LabelsStage, labels)),
            failures,
            unchecked="the live model: its predictions, metrics and reported numbers",
        )

        def predicted_stage(live: ModelStage) -> SparkPredictStage:
            stage = predict(request, model_source, labels, live, session, held.shipped.append)
            held.frames.append(stage.frame)
            return stage

        predicted = (
            timer.attempt(
                "predict",
                lambda: predicted_stage(model),
                failures,
                unchecked="predictions, metrics and reported numbers",
                bad_input_ends=True,
            )
            if model is not None
            else None
        )
        if model is not None and predicted is not None:
            recomputed = timer.run(
                "recompute", lambda: recompute(labels, model, predicted, roc_auc=request.roc_auc)
            )
            compared = timer.run(
                "compare",
                lambda: compare(request, model_source, labels, model, predicted, recomputed, session),
            )
        else:
            compared = timer.run(
                "compare", lambda: compare_static(request, model_source, labels, tuple(failures), session)
            )
        written = timer.run("report", lambda: report(request, compared, tuple(timer.results)))
    finally:
        held.release()
    logged: LogStage | None = None
    if sinks:
        so_far = replace(compared.report, stages=tuple(timer.results))
        logged = timer.run("log", lambda: log(so_far, written, sinks))
    final: AuditReport = replace(compared.report, stages=tuple(timer.results))
    return AuditOutcome(
        report=final,
        files=dict(written.files),
        folder=written.folder,
        sink_results=dict(logged.results) if logged is not None else {},
        sink_error=logged.error if logged is not None else None,
    )
