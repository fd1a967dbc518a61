"""The stages of ``lossaudit audit`` and the runner that times them.

validate_labels -> check_compatibility -> obtain_model -> predict -> recompute -> compare ->
report -> log

Every stage is a function that takes the earlier stages' results (frozen dataclasses) and returns
its own frozen result with a one-line ``summary``. :func:`run_audit` runs them in order, times each
into a :class:`~lossaudit.core.report.StageResult` and keeps them in the final
:class:`~lossaudit.core.report.AuditReport` (``stages=``). The last stage, ``log``, calls the
:class:`ReportSink` objects given to the runner (the MLflow sink) after the local report folder is
written: a sink that fails leaves a complete local report and its error in the outcome (exit 3).

Where the model comes from is a :class:`ModelSource`: given by the caller (an MLflow model, a model
in memory), else :func:`~lossaudit.sources.base.model_source_for` the request's path or URI.

Heavy libraries (numpy, Keras, scikit-learn) are imported inside the stages that use them.

Why one module of about 1,000 lines: each stage's frozen result type sits beside the function that
produces it, and :func:`run_audit` threads them in order, so the audit reads top to bottom in one
file. The stages hold no audit logic of their own (that is in ``core`` and the adapters); this
module only wires it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from lossaudit.core.compare import ReportedMetric
from lossaudit.core.config import RuleConfig
from lossaudit.core.findings import DataCheck, FixEvidence, Severity, StageFailure
from lossaudit.core.head import HeadSpec
from lossaudit.core.report import AuditReport, StageResult
from lossaudit.errors import BadInputError, LossauditError, RefusedError, TrackingUnavailableError
from lossaudit.sinks.base import ReportSink
from lossaudit.sources.base import ModelSource, model_source_for

if TYPE_CHECKING:
    import numpy as np

    from lossaudit.core.audit import Scored
    from lossaudit.core.blockwise import BlockReducer, MergedOutputs
    from lossaudit.core.chunks import BackgroundDigest
    from lossaudit.core.compare import Definition
    from lossaudit.core.facts import OutputFacts
    from lossaudit.core.labels import LabelEvidence
    from lossaudit.core.metrics import RecomputedMetrics
    from lossaudit.core.outputs import Reading
    from lossaudit.keras.predict import LiveEvaluation
    from lossaudit.keras.static import StaticModel
    from lossaudit.validation.gx import GxValidation

STAGE_NAMES = (
    "validate_labels",
    "check_compatibility",
    "obtain_model",
    "predict",
    "recompute",
    "compare",
    "report",
    "log",
)
COMMAND = "audit"
ROC_AUC_MODES = ("exact", "bounds")


# --- the request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRequest:
    """Everything one audit is asked to do; the CLI and pipeline files build one of these."""

    model: str
    """A model file path, or a URI a registered :class:`ModelSource` understands."""
    data: str
    """Eval data: ``.npz`` with ``x`` and ``y``, or a CSV/Parquet table with ``label_columns``; for
    arrays given to :func:`run_audit` (``data=``), what the report calls them."""
    label_columns: tuple[str, ...] = ()
    train: str | None = None
    """Training data for ``retrain``, in the same formats as ``data``."""
    retrain: bool = False
    reported: tuple[ReportedMetric, ...] = ()
    """Numbers a past run stated (``--reported NAME=VALUE``), compared like the live evaluate."""
    out_dir: str | None = None
    """Folder for the report files; None writes none (the report stage is skipped)."""
    fail_on: Severity = Severity.ERROR
    unsafe: bool = False
    """Load Lambda layers (their Python code runs); refused otherwise."""
    batch_size: int = 256
    """Samples per predict/evaluate batch."""
    epochs: int = 10
    """Retrain epochs."""
    seed: int = 0
    """Retrain seed (``keras.utils.set_random_seed``)."""
    train_batch_size: int = 32
    """Retrain batch size."""
    retrain_seeds: int = 3
    """Seeds each head is retrained with: the fix is proven only beyond their spread."""
    thresholds: Mapping[str, float] = field(default_factory=dict)
    """Floors on recomputed metrics (``accuracy: 0.9``); a miss is finding LA506."""
    roc_auc: str = "exact"
    """``exact``: every prediction is kept (n x units) to rank the scores. ``bounds``: each batch
    is folded into counts as it is predicted and dropped; ROC-AUC is bounded from score histograms
    (:mod:`lossaudit.core.blockwise`). On Spark, ``exact`` collects the scores to the driver up to
    200,000 rows and bounds beyond; ``bounds`` bounds at any size."""
    gx: bool = True
    """Validate labels and features with Great Expectations (its result and Data Docs are kept)."""
    config: RuleConfig | None = None
    """select / ignore / severities / alpha / tolerance; its ``fail_on`` wins over ``fail_on``."""

    def __post_init__(self) -> None:
        if self.retrain and not self.train:
            raise BadInputError("--retrain needs training data: pass --train TRAIN")
        if self.batch_size < 1:
            raise BadInputError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.epochs < 1:
            raise BadInputError(f"--epochs must be at least 1, got {self.epochs}")
        if self.roc_auc not in ROC_AUC_MODES:
            raise BadInputError(f"roc_auc must be one of {', '.join(ROC_AUC_MODES)}, got {self.roc_auc!r}")
        if self.train_batch_size < 1:
            raise BadInputError(f"the retrain batch size must be at least 1, got {self.train_batch_size}")
        object.__setattr__(self, "fail_on", Severity(self.fail_on))
        if self.config is None:
            object.__setattr__(self, "config", RuleConfig(fail_on=self.fail_on, source="request"))
        else:
            object.__setattr__(self, "fail_on", self.config.fail_on)

    @property
    def rules(self) -> RuleConfig:
        assert self.config is not None  # set in __post_init__
        return self.config


# --- stage results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelsStage:
    """validate_labels: the eval data, its hash, the saved head, and what the labels are."""

    x: np.ndarray
    y: np.ndarray
    digest: BackgroundDigest
    """The data hash, taken in a background thread while the audit goes on (see data_sha256)."""
    static: StaticModel
    labels: LabelEvidence
    gx: GxValidation | None = None
    """The Great Expectations run (None when skipped: ``gx=False`` or no saved head)."""
    scratch: Path | None = None
    """A temporary folder (the Data Docs site) that the runner removes when the audit ends."""
    in_memory: bool = False
    """The data came as arrays (the Python API, an MLflow evaluation), not from ``request.data``."""

    @property
    def data_sha256(self) -> str:
        """:func:`data_sha256` of x and y (waits for the background thread the first time)."""
        return self.digest.result()

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def summary(self) -> str:
        ev = self.labels
        shape = list(ev.shape)
        text = f"{self.n_samples} samples; labels {ev.encoding.value}, shape {shape}, K = {ev.n_classes}"
        if self.gx is not None:
            failed = sum(1 for c in self.gx.checks if not c.success)
            text += f"; Great Expectations: {len(self.gx.checks) - failed}/{len(self.gx.checks)} passed"
        return text


@dataclass(frozen=True)
class CompatibilityStage:
    """check_compatibility: the rules on the saved head and the labels, before any model run."""

    report: AuditReport | None
    """None when the saved files do not carry a head (read after the live load instead)."""

    @property
    def status(self) -> str:
        return "skipped" if self.report is None else "ok"

    @property
    def summary(self) -> str:
        if self.report is None:
            return "the saved model carries no readable head: judged after the live load"
        codes = ", ".join(self.report.codes) or "none"
        return f"saved head: findings {codes}"


@dataclass(frozen=True)
class ModelStage:
    """obtain_model: the live model and the head read from it."""

    model: Any
    head: HeadSpec
    keras_version: str
    keras_backend: str
    notes: tuple[str, ...] = ()
    retrain: Mapping[str, Any] | None = None
    """The retrain result's ``to_dict()`` with a ``summary`` line, when retraining ran."""

    @property
    def summary(self) -> str:
        head = self.head
        loss = "no loss" if head.loss is None else head.loss.name
        if head.loss is not None and head.loss.from_logits:
            loss += " (from_logits)"
        text = (
            f"Keras {self.keras_version} ({self.keras_backend}): {head.units} unit(s), "
            f"{' -> '.join(head.activation_chain)}, {loss}"
        )
        if self.retrain is not None:
            text += f"; retrain: {self.retrain.get('summary', 'done')}"
        return text


@dataclass(frozen=True)
class PredictStage:
    """predict: the model's outputs on the eval data and, from the same pass, what evaluate reports;
    the built metric classes."""

    predictions: np.ndarray | None
    """(n, units) outputs; None when they were folded into ``reduced`` and not kept."""
    output_kind: str
    """``probabilities``, ``logits`` or ``scores``, from the head."""
    evaluation: LiveEvaluation
    built_metrics: tuple[tuple[str, str], ...] | None
    """(declared, built class) pairs; None when evaluate failed before building them."""
    reduced: BlockReducer | None = None
    """``roc_auc="bounds"``: every batch folded into counts (recompute reads them)."""

    @property
    def summary(self) -> str:
        if self.predictions is not None:
            shape = "x".join(str(d) for d in self.predictions.shape)
        else:
            assert self.reduced is not None
            shape = f"{self.reduced.n}x{self.reduced.k} folded into counts (not kept)"
        if self.evaluation.error is not None:
            live = f"evaluate failed ({self.evaluation.error})"
        else:
            live = "evaluate " + ", ".join(f"{k} {v:.4f}" for k, v in self.evaluation.values.items())
        built = ""
        if self.built_metrics:
            built = "; built " + ", ".join(f"{d}={c}" for d, c in self.built_metrics)
        return f"{shape} {self.output_kind}; {live}{built}"


@dataclass(frozen=True)
class RecomputeStage:
    """recompute: metrics recomputed with scikit-learn from the labels and the predictions; or, for
    labels the head cannot score or diverged predictions, why not (findings in compare)."""

    scored: Scored | None
    unscored: str | None = None
    merged: MergedOutputs | None = None
    """``roc_auc="bounds"``: the metrics from the counts the batches were folded into."""

    @property
    def status(self) -> str:
        return "skipped" if self.metrics is None else "ok"

    @property
    def metrics(self) -> RecomputedMetrics | None:
        if self.merged is not None:
            return self.merged.metrics
        return None if self.scored is None else self.scored.metrics

    @property
    def summary(self) -> str:
        metrics = self.metrics
        if metrics is None:
            return f"no metrics: {self.unscored}"
        values = metrics.values
        shown = [
            f"{k} {values[k]:.4f}" for k in ("accuracy", "majority_baseline") if values.get(k) is not None
        ]
        merged = " (merged counts)" if self.merged is not None else ""
        return f"{metrics.task}: " + ", ".join(shown) + merged


@dataclass(frozen=True)
class CompareStage:
    """compare: reported numbers attributed, every rule run; the audit's findings."""

    report: AuditReport

    @property
    def summary(self) -> str:
        statuses = ", ".join(f"{c.source}:{c.metric} {c.status}" for c in self.report.comparisons)
        codes = ", ".join(self.report.codes) or "no findings"
        return f"{codes}; {statuses or 'nothing reported'}; verdict {self.report.verdict}"


@dataclass(frozen=True)
class ReportStage:
    """report: the local report folder."""

    folder: Path | None
    files: Mapping[str, Path] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "skipped" if self.folder is None else "ok"

    @property
    def summary(self) -> str:
        if self.folder is None:
            return "no report folder requested"
        return f"{len(self.files)} file(s) in {self.folder}"


@dataclass(frozen=True)
class LogStage:
    """log: what each sink said, and the first sink error (the report folder is complete)."""

    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    error: LossauditError | None = None
    failed_sink: str | None = None

    @property
    def status(self) -> str:
        return "failed" if self.error is not None else "ok"

    @property
    def summary(self) -> str:
        if self.error is not None:
            return f"{self.failed_sink}: {self.error}"
        return ", ".join(self.results) or "no sinks"


# --- the stages -------------------------------------------------------------------------------


def data_sha256(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 over the bytes of x, then of y (C order), so two audits can prove the same data.

    Streamed a block of rows at a time (:func:`lossaudit.core.chunks.sha256_of`): the digest is
    that of ``np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes()``, without
    either copy (object arrays: their values' text).
    """
    from lossaudit.core.chunks import sha256_of

    return sha256_of(x, y)


def validate_labels(
    request: AuditRequest, source: ModelSource, data: tuple[Any, Any] | None = None
) -> LabelsStage:
    """Load the eval data (or take ``data``, in-memory ``(x, y)``), read the saved head (no
    TensorFlow) and judge the labels against it.

    Raises
    ------
    BadInputError
        For unreadable data or model files, or labels no rule can judge (strings, NaN).
    """
    from lossaudit.core.audit import inspect_labels
    from lossaudit.core.chunks import BackgroundDigest
    from lossaudit.core.labels import detect_labels
    from lossaudit.sources.files import dataset_from_arrays, finite_feature_rows, load_dataset

    static = source.read_static()
    if data is not None:
        x, y = dataset_from_arrays(data[0], data[1], request.label_columns, check_finite=False)
    else:
        x, y = load_dataset(request.data, request.label_columns, check_finite=False)
    # One pass over x for finiteness, whose per-row flags also feed Great Expectations.
    finite = finite_feature_rows(None if data is not None else request.data, x)
    digest = BackgroundDigest(x, y)  # data_sha256, on the other core while the stages go on
    if static.head is not None:
        labels = inspect_labels(y, static.head)
    else:
        labels = detect_labels(y)
        if labels.problem is not None and labels.problem.unreadable:
            raise BadInputError(f"labels: {labels.reason}")
    gx = None
    docs: Path | None = None
    if request.gx and static.head is not None:
        import tempfile

        from lossaudit.validation.gx import validate_with_gx

        # Data Docs go to a temporary folder; the report stage copies them into the report.
        docs = Path(tempfile.mkdtemp(prefix="lossaudit-gx-"))
        try:
            gx = validate_with_gx(y, static.head, x, docs_dir=docs, finite_rows=finite)
        except BaseException:
            import shutil

            shutil.rmtree(docs, ignore_errors=True)
            raise
    return LabelsStage(
        x=x,
        y=y,
        digest=digest,
        static=static,
        labels=labels,
        gx=gx,
        scratch=docs,
        in_memory=data is not None,
    )


def check_compatibility(request: AuditRequest, labels: LabelsStage) -> CompatibilityStage:
    """The rule catalogue on the saved head and the labels (what ``lossaudit check`` says)."""
    from lossaudit.core.audit import check

    head = labels.static.head
    if head is None:
        return CompatibilityStage(report=None)
    return CompatibilityStage(report=check(head, labels.y, command=COMMAND, config=request.rules))


def obtain_model(request: AuditRequest, source: ModelSource, labels: LabelsStage) -> ModelStage:
    """Load the model (Lambda layers refused unless ``unsafe``) and read its head live; with
    ``retrain``, also prove the findings' fix by retraining on ``train``."""
    from lossaudit.keras.live import head_from_model, keras_version

    notes: list[str] = []
    model = source.load(labels.static, unsafe=request.unsafe, on_note=notes.append)
    head = head_from_model(model, source=f"live:{source.uri}")
    static_head = labels.static.head
    if static_head is not None and _head_shape(static_head) != _head_shape(head):
        notes.append(
            "the live model's head differs from the saved config's: "
            f"saved {_head_shape(static_head)}, live {_head_shape(head)}; the live head is audited"
        )
    if static_head is not None and static_head.keras_family is not head.keras_family:
        # The numbers a past run logged were computed by the Keras that trained the model, so
        # the rules about 'accuracy' follow the saved file's family, not the one loading it now.
        notes.append(
            f"saved by Keras family {static_head.keras_family.value}, loaded with "
            f"{head.keras_family.value}: 'accuracy' is judged as {static_head.keras_family.value} "
            "resolved it"
        )
        head = head.with_changes(keras_family=static_head.keras_family)
    retrain = _retrain(request, model, head, labels) if request.retrain else None
    return ModelStage(
        model=model,
        head=head,
        keras_version=keras_version(model),
        keras_backend=_backend(model),
        notes=tuple(notes),
        retrain=retrain,
    )


def predict(
    request: AuditRequest,
    labels: LabelsStage,
    model: ModelStage,
    progress: Callable[[str], None] | None = None,
) -> PredictStage:
    """One pass over the data in batches (progress bar on long runs): the outputs, the numbers
    Keras's compiled loss and metrics give on them (what evaluate reports), and the metric
    classes Keras built."""
    from lossaudit.keras.live import built_metric_classes
    from lossaudit.keras.predict import output_kind, predict_and_evaluate

    reduced = None
    if request.roc_auc == "bounds":
        from lossaudit.core.audit import inspect_labels
        from lossaudit.core.blockwise import BlockReducer

        reduced = BlockReducer(model.head, inspect_labels(labels.y, model.head), labels.y)
    predictions, evaluation = predict_and_evaluate(
        model.model,
        labels.x,
        labels.y,
        batch_size=request.batch_size,
        on_batch=None if reduced is None else reduced.add,
        on_progress=None if progress is None else _rows_told(progress, STAGE_ACTIVITY["predict"]),
    )
    built = built_metric_classes(model.model) if evaluation.ran else None
    return PredictStage(
        predictions=predictions,
        output_kind=output_kind(model.head),
        evaluation=evaluation,
        built_metrics=built or None,
        reduced=reduced,
    )


def _rows_told(progress: Callable[[str], None], activity: str) -> Callable[[int, int], None]:
    """(rows done, rows) as the stage's progress text, about a hundred times a run at most."""
    last = [-1]

    def told(done: int, total: int) -> None:
        step = done * 100 // max(total, 1)
        if step != last[0]:
            last[0] = step
            progress(f"{activity}: {done:,} of {total:,} rows")

    return told


def recompute(labels: LabelsStage, model: ModelStage, predicted: PredictStage) -> RecomputeStage:
    """Recompute every metric of the task from the labels and predictions with scikit-learn."""
    from lossaudit.core.audit import inspect_labels, output_facts_of, score, unscorable_reason
    from lossaudit.core.metrics import prediction_matrix

    if predicted.reduced is not None:
        merged = predicted.reduced.result()
        return RecomputeStage(scored=None, unscored=merged.unscored, merged=merged)
    raw = prediction_matrix(predicted.predictions, model.head)
    reason = unscorable_reason(inspect_labels(labels.y, model.head), output_facts_of(raw, model.head))
    if reason is not None:
        return RecomputeStage(scored=None, unscored=reason)
    return RecomputeStage(scored=score(model.head, labels.y, predicted.predictions))


def compare(
    request: AuditRequest,
    source: ModelSource,
    labels: LabelsStage,
    model: ModelStage,
    predicted: PredictStage,
    recomputed: RecomputeStage,
) -> CompareStage:
    """Attribute the live evaluate's and the user's numbers and run every rule: the findings."""
    from lossaudit.core.audit import audit_predictions

    reported = (*predicted.evaluation.reported(), *request.reported, *source.reported_metrics())
    if recomputed.merged is not None:
        report = merged_report(
            request,
            model.head,
            recomputed.merged,
            reported,
            built_metrics=predicted.built_metrics,
            data_checks=labels.gx.checks if labels.gx is not None else (),
            context=audit_context(request, source, labels, model, predicted, recomputed),
            fix_evidence=_fix_evidence(model.retrain),
        )
        return CompareStage(report=report)
    report = audit_predictions(
        model.head,
        labels.y,
        predicted.predictions,
        reported,
        scored=recomputed.scored,
        fail_on=request.fail_on,
        data_checks=labels.gx.checks if labels.gx is not None else (),
        thresholds=request.thresholds,
        built_metrics=_comparable_built_metrics(model.head, predicted.built_metrics),
        context=audit_context(request, source, labels, model, predicted, recomputed),
        command=COMMAND,
        config=request.rules,
        fix_evidence=_fix_evidence(model.retrain),
    )
    return CompareStage(report=report)


class MergedStatistics(Protocol):
    """What an engine that never holds every prediction hands the comparison: the local
    block-wise reduction (:class:`lossaudit.core.blockwise.MergedOutputs`) or Spark's merged
    counts (:class:`lossaudit.pipeline.spark_audit.SparkRecomputeStage`)."""

    @property
    def labels(self) -> LabelEvidence: ...
    @property
    def outputs(self) -> OutputFacts: ...
    @property
    def metrics(self) -> RecomputedMetrics | None: ...
    @property
    def accuracy_defs(self) -> tuple[Definition, ...] | None: ...
    @property
    def unscored(self) -> str | None: ...
    @property
    def reading(self) -> Reading | None: ...


def merged_report(
    request: AuditRequest,
    head: HeadSpec,
    merged: MergedStatistics,
    reported: Sequence[ReportedMetric],
    *,
    built_metrics: tuple[tuple[str, str], ...] | None,
    data_checks: tuple[DataCheck, ...],
    context: Mapping[str, Any],
    fix_evidence: FixEvidence | None = None,
) -> AuditReport:
    """The findings from merged statistics (:func:`lossaudit.core.audit.audit_merged`), judged
    with the request's rules and thresholds."""
    from lossaudit.core.audit import audit_merged

    return audit_merged(
        head,
        merged.labels,
        merged.outputs,
        reported,
        metrics=merged.metrics,
        accuracy_defs=merged.accuracy_defs,
        unscored=merged.unscored,
        not_probabilities=None if merged.reading is None else merged.reading.problem,
        fail_on=request.fail_on,
        built_metrics=_comparable_built_metrics(head, built_metrics),
        data_checks=data_checks,
        thresholds=request.thresholds,
        context=context,
        command=COMMAND,
        config=request.rules,
        fix_evidence=fix_evidence,
    )


def static_audit_context(
    request: AuditRequest,
    source: ModelSource,
    static_model: StaticModel,
    failures: Sequence[StageFailure],
    *,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """The report context of an audit judged on the saved head alone (the live model failed):
    the model and its saved head, the request's data, then ``data`` (what the engine knows of the
    rows: hash, count, dataset), the failed stages and the model's notes."""
    static = static_model.context()
    return {
        "model": source.uri,
        **{k: v for k, v in source.context().items() if k != "model"},
        "model_format": static.get("model_format"),
        "read_mode": static.get("read_mode"),
        "saved_keras_version": static.get("keras_version"),
        "saved_keras_family": static.get("keras_family"),
        "head_layers": static.get("head_layers"),
        "lambda_layers": static.get("lambda_layers", []),
        "data_file": request.data,
        "label_columns": list(request.label_columns),
        **data,
        "failed_stages": [f.stage for f in failures],
        "notes": list(static.get("model_notes", [])),
    }


def compare_static(
    request: AuditRequest,
    source: ModelSource,
    labels: LabelsStage,
    failures: tuple[StageFailure, ...],
) -> CompareStage:
    """The findings when the live model could not be loaded or run: the rules on the saved head
    and the labels, the data expectations, and a finding (LA701) per failed stage.

    Without a saved head there is nothing to judge: the first failure ends the audit (exit 2).
    """
    from lossaudit.core.audit import check

    head = labels.static.head
    if head is None:
        raise BadInputError(failures[0].reason if failures else "the model could not be read")
    context = static_audit_context(
        request,
        source,
        labels.static,
        failures,
        data={
            "data_sha256": labels.data_sha256,
            "n_samples": labels.n_samples,
            "dataset": eval_dataset(request, labels),
        },
    )
    report_ = check(
        head,
        labels.y,
        command=COMMAND,
        config=request.rules,
        failed_stages=failures,
        data_checks=labels.gx.checks if labels.gx is not None else (),
        context=context,
    )
    return CompareStage(report=report_)


def report(
    request: AuditRequest, labels: LabelsStage, compared: CompareStage, stages: Sequence[StageResult]
) -> ReportStage:
    """Write the local report folder (report.json, report.md, ..., the Great Expectations result
    and Data Docs) when ``out_dir`` is set.

    The files hold the stages timed before this one; the report returned by the runner also holds
    this stage and ``log``.
    """
    if request.out_dir is None:
        return ReportStage(folder=None)
    from lossaudit.sinks.local import GX_DOCS_DIR, GX_RESULT_JSON, write_report_folder

    attachments: dict[str, bytes] = {}
    attached_dirs: dict[str, Path] = {}
    if labels.gx is not None:
        import json

        attachments[GX_RESULT_JSON] = (json.dumps(labels.gx.result_json, indent=2) + "\n").encode()
        if labels.gx.data_docs_dir is not None:
            attached_dirs[GX_DOCS_DIR] = labels.gx.data_docs_dir
    folder = Path(request.out_dir)
    files = write_report_folder(
        replace(compared.report, stages=tuple(stages)),
        folder,
        attachments=attachments,
        attached_dirs=attached_dirs,
    )
    return ReportStage(folder=folder, files=dict(files))


def log(report_: AuditReport, written: ReportStage, sinks: Sequence[ReportSink]) -> LogStage:
    """Send the report to each sink; the first :class:`LossauditError` stops the sending and is
    kept (the local folder is already complete)."""
    results: dict[str, Mapping[str, Any]] = {}
    for sink in sinks:
        try:
            results[sink.name] = dict(sink.send(report_, written.files))
        except LossauditError as exc:
            return LogStage(results=results, error=exc, failed_sink=sink.name)
    return LogStage(results=results)


# --- helpers of the stages --------------------------------------------------------------------


def _fix_evidence(retrain: Mapping[str, Any] | None) -> FixEvidence | None:
    """The retrain's result as evidence for the findings whose fix it applied."""
    if retrain is None or "fix" not in retrain:
        return None  # no retrain, or nothing to prove
    gain = retrain.get("gain_beyond_spread")
    return FixEvidence(
        proven=bool(retrain.get("proven")),
        summary=str(retrain.get("summary", "")),
        seeds=int(retrain.get("seeds", 1)),
        gain_beyond_spread=None if gain is None else float(gain),
    )


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:limit]


def _head_shape(head: HeadSpec) -> dict[str, Any]:
    """The parts of a head that the saved config and the live model must agree on."""
    return {
        "units": head.units,
        "activation_chain": list(head.activation_chain),
        "loss": None if head.loss is None else head.loss.name,
        "from_logits": head.from_logits,
        "metrics": list(head.metrics),
    }


def _comparable_built_metrics(
    head: HeadSpec, built: tuple[tuple[str, str], ...] | None
) -> tuple[tuple[str, str], ...] | None:
    """The built classes for rule LA505, or None when they cannot test the rules' prediction.

    The live Keras resolves 'accuracy' from shapes; a legacy-family head's 'accuracy' followed the
    loss-based rule when it was trained, so the live classes say nothing about that prediction.
    The classes stay in the report context either way.
    """
    from lossaudit.core.head import KerasFamily

    return None if head.keras_family is KerasFamily.LEGACY else built


def _backend(model: Any) -> str:
    from lossaudit.core.head import KerasFamily
    from lossaudit.keras.live import model_family

    if model_family(model) is KerasFamily.TF_KERAS:
        return "tensorflow"
    import keras

    return str(keras.backend.backend())


def _retrain(request: AuditRequest, model: Any, head: HeadSpec, labels: LabelsStage) -> dict[str, Any]:
    """Prove the findings' fix: retrain the original and the fixed head alike on ``train``.

    The fix is merged from what the head and label rules propose for the live head (the LA5xx
    prediction rules propose no head change, so they are not needed to know it).
    """
    from lossaudit.core.audit import check
    from lossaudit.keras.retrain import describe_fix, merge_fixes, prove_fix
    from lossaudit.sources.files import load_dataset

    assert request.train is not None  # AuditRequest refuses retrain without train
    fix = merge_fixes(check(head, labels.y).findings)
    if fix.is_empty():
        return {"proven": False, "summary": "nothing to prove: no finding proposes a head change"}
    x_train, y_train = load_dataset(request.train, request.label_columns)
    result = prove_fix(
        model,
        fix,
        x_train,
        y_train,
        labels.x,
        labels.y,
        epochs=request.epochs,
        batch_size=request.train_batch_size,
        seed=request.seed,
        seeds=request.retrain_seeds,
    )
    return {**result.to_dict(), "fix_applied": describe_fix(fix)}


DATASET_DIGEST_LENGTH = 16
"""Hex digits of ``data_sha256`` that make the eval dataset's MLflow digest (MLflow keeps 36)."""


def eval_dataset(request: AuditRequest, labels: LabelsStage) -> dict[str, Any]:
    """The eval data as an MLflow dataset would describe it (``report.context["dataset"]``):
    name, digest, source, and the profile and tensor shapes of ``mlflow.data.from_numpy``.

    The MLflow sink logs it as the run's dataset input (context ``eval``) from the report alone.
    """
    x, y = labels.x, labels.y
    source: dict[str, Any]
    if labels.in_memory:
        name = request.data or "eval"
        source_type, source = "code", {"tags": {"lossaudit.data": name}}
    else:
        path = Path(request.data).resolve()
        name = path.stem or "eval"
        source_type, source = "local", {"uri": str(path)}
    return {
        "name": name,
        "digest": labels.data_sha256[:DATASET_DIGEST_LENGTH],
        "source_type": source_type,
        "source": source,
        "profile": {
            "features_shape": list(x.shape),
            "features_size": int(x.size),
            "features_nbytes": int(x.nbytes),
            "targets_shape": list(y.shape),
            "targets_size": int(y.size),
            "targets_nbytes": int(y.nbytes),
        },
        "features_dtype": str(x.dtype),
        "targets_dtype": str(y.dtype),
    }


def audit_context(
    request: AuditRequest,
    source: ModelSource,
    labels: LabelsStage,
    model: ModelStage,
    predicted: PredictStage,
    recomputed: RecomputeStage,
) -> dict[str, Any]:
    """Where the audit came from, for ``AuditReport.context`` (plain JSON values only)."""
    static = labels.static.context()
    context: dict[str, Any] = {
        "model": source.uri,
        **{k: v for k, v in source.context().items() if k != "model"},
        "model_format": static.get("model_format"),
        "read_mode": static.get("read_mode"),
        "saved_keras_version": static.get("keras_version"),
        "saved_keras_family": static.get("keras_family"),
        "keras_version": model.keras_version,
        "keras_backend": model.keras_backend,
        "head_layers": static.get("head_layers"),
        "lambda_layers": static.get("lambda_layers", []),
        "unsafe_load": request.unsafe and bool(labels.static.lambda_layers),
        "data_file": request.data,
        "label_columns": list(request.label_columns),
        "data_sha256": labels.data_sha256,
        "n_samples": labels.n_samples,
        # Arrays in hand only: the Spark engine's labels stage holds a DataFrame, not x and y.
        "dataset": eval_dataset(request, labels) if isinstance(labels, LabelsStage) else None,
        "output_kind": predicted.output_kind,
        "roc_auc": request.roc_auc,
        "evaluate": dict(predicted.evaluation.values),
        "built_metrics": None
        if predicted.built_metrics is None
        else [list(pair) for pair in predicted.built_metrics],
        "notes": [*static.get("model_notes", []), *model.notes],
    }
    if predicted.evaluation.error is not None:
        context["evaluate_error"] = predicted.evaluation.error
    if predicted.evaluation.keras_warnings:
        context["keras_warnings"] = list(predicted.evaluation.keras_warnings)
    if predicted.evaluation.non_finite:
        context["evaluate_non_finite"] = list(predicted.evaluation.non_finite)
    if request.train is not None:
        context["train_file"] = request.train
    if model.retrain is not None:
        context["retrain"] = dict(model.retrain)
    return context


# --- the runner -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditOutcome:
    """What :func:`run_audit` produced: the report, its files, and what the sinks said."""

    report: AuditReport
    files: Mapping[str, Path] = field(default_factory=dict)
    folder: Path | None = None
    sink_results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sink_error: LossauditError | None = None
    """Set when a sink failed after the local report was complete (exit 3 for MLflow)."""


T = TypeVar("T")


STAGE_ACTIVITY = {
    "validate_labels": "validating the labels (Great Expectations)",
    "check_compatibility": "checking labels, head, loss and metrics",
    "obtain_model": "loading the model (or retraining it)",
    "predict": "predicting the eval set",
    "recompute": "recomputing the metrics with scikit-learn",
    "compare": "comparing the reported numbers",
    "report": "writing the report folder",
    "log": "logging to MLflow",
}
"""What each stage is doing, for a progress line."""


class _Timer:
    """Runs stages and keeps their :class:`StageResult` in order."""

    def __init__(self, clock: Callable[[], float], progress: Callable[[str], None] | None = None) -> None:
        self.clock = clock
        self.progress = progress
        self.results: list[StageResult] = []

    def attempt(
        self,
        name: str,
        fn: Callable[[], T],
        failures: list[StageFailure],
        *,
        unchecked: str,
        bad_input_ends: bool = False,
    ) -> T | None:
        """Run a stage whose failure is a finding (LA701), not the end of the audit: on failure
        the stage is recorded as failed, ``failures`` gets why, and None is returned.

        A refusal (Lambda code without --unsafe) and an unreachable MLflow still end the command
        with their own exit codes: they are the user's call or the infrastructure, not the model.
        With ``bad_input_ends``, so does bad input (eval data that does not fit the model's
        input): the data is wrong, not the model, and no finding about the model would be true.
        """
        start = self.clock()
        try:
            return self.run(name, fn)
        except (RefusedError, TrackingUnavailableError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if bad_input_ends and isinstance(exc, BadInputError):
                raise
            self._failed(name, start, failures, unchecked)
            return None

    def _failed(self, name: str, start: float, failures: list[StageFailure], unchecked: str) -> None:
        import sys

        reason = _one_line(sys.exc_info()[1] or RuntimeError("unknown failure"))
        failures.append(StageFailure(stage=name, reason=reason, unchecked=unchecked))
        self.results.append(
            StageResult(name=name, seconds=self.clock() - start, status="failed", summary=reason)
        )

    def run(self, name: str, fn: Callable[[], T]) -> T:
        if self.progress is not None:
            self.progress(STAGE_ACTIVITY.get(name, name))
        start = self.clock()
        result = fn()
        self.results.append(
            StageResult(
                name=name,
                seconds=self.clock() - start,
                status=str(getattr(result, "status", "ok")),
                summary=str(getattr(result, "summary", "")),
            )
        )
        return result


def run_audit(
    request: AuditRequest,
    *,
    source: ModelSource | None = None,
    sinks: Sequence[ReportSink] = (),
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[str], None] | None = None,
    data: tuple[Any, Any] | None = None,
) -> AuditOutcome:
    """Run every stage of the audit in order and return the report with each stage's timing.

    Parameters
    ----------
    request : what to audit and how.
    source : where the model comes from; by default :func:`model_source_for` ``(request.model)``.
    sinks : called in the ``log`` stage, after the local report folder is written.
    clock : seconds counter used to time the stages.
    progress : told what each stage is doing as it starts (the CLI's live status line).
    data : the eval data in memory, ``(x, y)`` (numpy arrays, lists, pandas objects), instead of
        the file ``request.data`` names; ``request.data`` is then what the report calls it.

    Raises
    ------
    BadInputError
        For bad input in any stage before the report (one line; nothing is written).
    """
    model_source = source if source is not None else model_source_for(request.model)
    timer = _Timer(clock, progress)
    labels = timer.run("validate_labels", lambda: validate_labels(request, model_source, data))
    try:
        timer.run("check_compatibility", lambda: check_compatibility(request, labels))
        failures: list[StageFailure] = []
        model = timer.attempt(
            "obtain_model",
            lambda: obtain_model(request, model_source, labels),
            failures,
            unchecked="the live model: its predictions, metrics and reported numbers",
        )
        predicted = (
            timer.attempt(
                "predict",
                lambda: predict(request, labels, model, timer.progress),
                failures,
                unchecked="predictions, metrics and reported numbers",
                bad_input_ends=True,
            )
            if model is not None
            else None
        )
        if model is not None and predicted is not None:
            recomputed = timer.run("recompute", lambda: recompute(labels, model, predicted))
            compared = timer.run(
                "compare", lambda: compare(request, model_source, labels, model, predicted, recomputed)
            )
        else:
            compared = timer.run(
                "compare", lambda: compare_static(request, model_source, labels, tuple(failures))
            )
        written = timer.run("report", lambda: report(request, labels, compared, tuple(timer.results)))
    finally:
        if labels.scratch is not None:
            import shutil

            shutil.rmtree(labels.scratch, ignore_errors=True)
    logged: LogStage | None = None
    if sinks:
        so_far = replace(compared.report, stages=tuple(timer.results))
        logged = timer.run("log", lambda: log(so_far, written, sinks))
    final = replace(compared.report, stages=tuple(timer.results))
    return AuditOutcome(
        report=final,
        files=dict(written.files),
        folder=written.folder,
        sink_results=dict(logged.results) if logged is not None else {},
        sink_error=logged.error if logged is not None else None,
    )
