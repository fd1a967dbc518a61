"""``lossaudit.audit``, ``lossaudit.check`` and ``lossaudit.compare``: the CLI's three judging
commands as Python functions, over the same pipeline and core.

* :func:`audit` -- ``lossaudit audit``: a model (a ``keras.Model`` in memory, a saved file, or a
  ``models:/``/``runs:/`` URI) run on eval data (arrays, a DataFrame, or a data file), every
  number it reports compared with the recomputed one;
* :func:`check` -- ``lossaudit check``: the rules on a head (a model, a file, a spec) and labels;
* :func:`compare` -- ``lossaudit compare``: labels and predictions against reported numbers.

Each returns an :class:`~lossaudit.api.report.AuditReport`. A failing verdict is a report, not an
exception (``report.raise_for_verdict()`` makes it one); what the CLI ends with exit 2 or 3 raises
:class:`~lossaudit.errors.BadInputError` (and its :class:`~lossaudit.errors.RefusedError`) or
:class:`~lossaudit.errors.TrackingUnavailableError` (``exc.report`` holds the finished report).

Rule configuration, as on the command line: ``config`` (a ``lossaudit.toml`` or ``pyproject.toml``
path, a mapping of its keys, or a :class:`~lossaudit.core.config.RuleConfig`; by default the file
found from the working folder upwards), under ``select``, ``ignore`` and ``fail_on``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.api.report import AuditReport
from lossaudit.errors import BadInputError, LossauditError

if TYPE_CHECKING:
    from lossaudit.core.compare import ReportedMetric
    from lossaudit.core.config import RuleConfig
    from lossaudit.core.head import HeadSpec
    from lossaudit.sinks.base import ReportSink
    from lossaudit.sources.base import ModelSource

ConfigArg = Any
"""``None``, a path (str or Path), a mapping of ``[tool.lossaudit]`` keys, or a ``RuleConfig``."""
PathLike = str | os.PathLike[str]
DEFAULT_DATA_NAME = "eval"
"""What an audit calls in-memory eval data (the MLflow dataset name) unless ``data_name`` says."""
SPEC_SUFFIXES = (".yaml", ".yml", ".json")


# --- what the three functions share --------------------------------------------------------------


def rule_config(
    config: ConfigArg = None,
    *,
    select: Iterable[str] | str | None = None,
    ignore: Iterable[str] | str | None = None,
    fail_on: str | None = None,
) -> RuleConfig:
    """The effective rule configuration, layered as the CLI layers it (file < ``config`` mapping <
    ``select``/``ignore``/``fail_on``). Bad values raise :class:`BadInputError`."""
    from lossaudit.core.config import RuleConfig
    from lossaudit.core.config_file import (
        apply_layer,
        base_config,
        command_line_layer,
        describe_flags,
        resolve_config,
    )

    select = [select] if isinstance(select, str) else select
    ignore = [ignore] if isinstance(ignore, str) else ignore
    if config is None or isinstance(config, str | os.PathLike):
        path = None if config is None else Path(config)
        return resolve_config(config_path=path, select=select, ignore=ignore, fail_on=fail_on)
    if isinstance(config, RuleConfig):
        base = config
    elif isinstance(config, Mapping):
        base = apply_layer(base_config(), config, source="config=")
    else:
        raise BadInputError(f"config must be a path, a mapping or a RuleConfig, got {type(config).__name__}")
    flags = command_line_layer(select, ignore, fail_on)
    return apply_layer(base, flags, source=describe_flags(flags)) if flags else base


def reported_metrics(
    reported: Mapping[str, Any] | Iterable[Any] | None,
    *,
    reported_on: str = "this",
    reported_n: int | None = None,
) -> tuple[ReportedMetric, ...]:
    """Numbers someone reported, as ``--reported NAME=VALUE`` would give them: a mapping
    ``{"accuracy": 0.9979}``, ``"accuracy=0.9979"`` strings, or ``ReportedMetric`` objects.

    A number's tolerance is half a unit of its last written digit (``0.9979`` -> 0.00005); pass the
    value as a string (``"0.99790"``) to say how many digits were reported.
    """
    from lossaudit.core.compare import ReportedMetric

    if reported is None:
        return ()
    if reported_n is not None and reported_on == "this":
        raise BadInputError("reported_n goes with reported_on='other' (this eval set's size is known)")
    items: list[Any] = (
        [
            f"{name}={value!r}" if isinstance(value, float) else f"{name}={value}"
            for name, value in reported.items()
        ]
        if isinstance(reported, Mapping)
        else list(reported)
    )
    out = []
    for item in items:
        if isinstance(item, ReportedMetric):
            out.append(item)
        elif isinstance(item, str):
            out.append(ReportedMetric.parse(item, measured_on=reported_on, n=reported_n))
        else:
            raise BadInputError(f"reported: expected NAME=VALUE or a mapping, got {item!r}")
    return tuple(out)


def _is_path(value: Any) -> bool:
    return isinstance(value, str | os.PathLike)


def _is_mlflow_uri(value: Any) -> bool:
    from lossaudit.sources.mlflow import is_mlflow_uri

    return isinstance(value, str) and is_mlflow_uri(value)


def model_source(model: Any, *, tracking_uri: str | None = None) -> ModelSource:
    """The pipeline's model source for a ``keras.Model``, a model file or an MLflow URI."""
    from lossaudit.sources.memory import InMemoryModelSource, is_keras_model

    if is_keras_model(model):
        return InMemoryModelSource(model)
    if _is_mlflow_uri(model):
        from lossaudit.sources.mlflow import MlflowModelSource

        return MlflowModelSource(str(model), tracking_uri=tracking_uri)
    if _is_path(model):
        from lossaudit.sources.local import LocalFileSource

        return LocalFileSource(Path(model))
    raise BadInputError(
        f"model must be a keras.Model, a model file or a models:/ or runs:/ URI, got {type(model).__name__}"
    )


def head_of(obj: Any, *, tracking_uri: str | None = None) -> tuple[HeadSpec, dict[str, Any]]:
    """A head and its report context from a ``HeadSpec``, a mapping (a spec's keys), a live Keras
    model, a spec file (``.yaml``/``.json``), a saved model file (read statically, no TensorFlow)
    or an MLflow model URI (downloaded, then read statically)."""
    from lossaudit.core.head import HeadSpec
    from lossaudit.sources.memory import is_keras_model

    if isinstance(obj, HeadSpec):
        return obj, {}
    if isinstance(obj, Mapping):
        return HeadSpec.from_mapping(obj, source="mapping"), {}
    if is_keras_model(obj):
        from lossaudit.sources.memory import InMemoryModelSource

        static = InMemoryModelSource(obj).read_static()
        return static.require_head(), {"model": static.path, "model_format": static.format}
    if _is_mlflow_uri(obj):
        from lossaudit.keras.static import read_model_file
        from lossaudit.sources.mlflow import fetch_model

        fetched = fetch_model(str(obj), tracking_uri=tracking_uri, read_reported=False)
        try:
            static = read_model_file(fetched.model_file, name=str(obj))
        finally:
            fetched.cleanup()
        return static.require_head(), {**static.context(), **fetched.context()}
    if _is_path(obj):
        path = Path(obj)
        if path.suffix.lower() in SPEC_SUFFIXES:
            from lossaudit.sources.files import load_spec

            return load_spec(path), {"spec": str(path)}
        from lossaudit.keras.static import read_model_file

        static = read_model_file(path)
        return static.require_head(), static.context()
    raise BadInputError(
        "give the head as a keras.Model, a HeadSpec, a mapping (units, activation, loss, ...), a "
        f"spec file, a model file or an MLflow model URI; got {type(obj).__name__}"
    )


def _labels(y: Any, label_columns: Sequence[str]) -> Any:
    if _is_path(y):
        from lossaudit.sources.files import load_labels

        return load_labels(Path(y), label_columns)
    return y


def _active_run() -> tuple[str, str] | None:
    """(run id, tracking URI) of the MLflow run active in this process, if MLflow is in use."""
    if "mlflow" not in sys.modules:
        return None  # nothing imported MLflow, so no run can be active
    import mlflow

    run = mlflow.active_run()
    return None if run is None else (run.info.run_id, mlflow.get_tracking_uri())


def log_into_active_run(report: AuditReport, folder: Path | None = None) -> dict[str, Any] | None:
    """Log ``report`` into the active MLflow run (its folder, or one written for the upload), with
    the files under ``lossaudit/``; None when no run is active. Raises
    :class:`~lossaudit.errors.TrackingUnavailableError` when the store refuses it."""
    active = _active_run()
    if active is None:
        return None
    from lossaudit.sinks.mlflow import log_report_into_run

    run_id, tracking_uri = active
    if folder is not None and (folder / "report.json").is_file():
        return log_report_into_run(folder, run_id, tracking_uri=tracking_uri).to_dict()
    with tempfile.TemporaryDirectory(prefix="lossaudit-report-") as tmp:
        report.save(tmp)
        return log_report_into_run(tmp, run_id, tracking_uri=tracking_uri).to_dict()


# --- audit ---------------------------------------------------------------------------------------


def audit(
    model: Any,
    x: Any = None,
    y: Any = None,
    *,
    label_columns: Sequence[str] = (),
    reported: Mapping[str, Any] | Iterable[Any] | None = None,
    reported_on: str = "this",
    reported_n: int | None = None,
    config: ConfigArg = None,
    select: Iterable[str] | str | None = None,
    ignore: Iterable[str] | str | None = None,
    fail_on: str | None = None,
    thresholds: Mapping[str, float] | None = None,
    log: bool = False,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    out: PathLike | None = None,
    gx: bool = True,
    batch_size: int = 256,
    unsafe: bool = False,
    data_name: str | None = None,
    roc_auc: str = "exact",
) -> AuditReport:
    """Audit a Keras classifier on eval data, as ``lossaudit audit`` does; return its report.

    Parameters
    ----------
    model
        A ``keras.Model`` in memory (audited as it is: compiled head, live weights), a saved model
        file (``.keras``, ``.h5``, SavedModel folder) or an MLflow model URI (``models:/NAME/3``,
        ``models:/NAME@champion``, ``models:/m-...``, ``runs:/RUN/model``).
    x, y
        The eval data: arrays (numpy, lists), or a pandas DataFrame of numeric features and
        labels as an array or Series; or ``x`` a data file (``.npz`` with ``x`` and ``y``, CSV,
        Parquet) and ``y`` None. A DataFrame (or a table file) holding the labels names them in
        ``label_columns``.
    reported
        Numbers a past run stated: ``{"accuracy": 0.9979}`` or ``["accuracy=0.9979"]``;
        ``reported_on="other"`` (and ``reported_n``) when they were measured on other data.
    config, select, ignore, fail_on
        The rule configuration (see the module docstring).
    thresholds
        Floors on recomputed metrics (``{"accuracy": 0.9}``); a miss is finding LA506.
    log
        Log the audit to MLflow: into the active run when one is open (``mlflow.start_run()``,
        autologging), else as a run of its own in ``experiment`` (default ``lossaudit``) at
        ``tracking_uri`` (default ``MLFLOW_TRACKING_URI``, else ``./mlflow.db``), as the CLI does.
    out
        Write the report folder there (``report.json``, ``report.html``, ...); none by default.
    gx
        Validate labels and features with Great Expectations (a few seconds).
    batch_size, unsafe
        As ``--batch-size`` and ``--unsafe`` (Lambda layers of a model file).
    data_name
        What the report and the MLflow dataset call in-memory data (default ``eval``).
    roc_auc
        ``exact`` keeps every prediction to rank the scores; ``bounds`` folds each batch into
        counts and keeps none (ROC-AUC bounded from score histograms), as ``--roc-auc``.

    Raises
    ------
    BadInputError
        The model or data cannot be audited (wrong shapes, unreadable labels, a missing file).
    RefusedError
        A model file holds Lambda layers and ``unsafe`` is False.
    TrackingUnavailableError
        ``log=True`` and MLflow could not be reached (or an MLflow URI could not be fetched);
        ``exc.report`` is the finished report when the audit itself completed.
    """
    from lossaudit.pipeline.stages import AuditRequest

    rules = rule_config(config, select=select, ignore=ignore, fail_on=fail_on)
    data: tuple[Any, Any] | None = None
    if _is_path(x):
        if y is not None:
            raise BadInputError("x is a data file: it holds the labels too (give y=None)")
        data_label = str(x)
    else:
        if x is None:
            raise BadInputError("give the eval data: x and y, or x a data file")
        data = (x, y)
        data_label = data_name or DEFAULT_DATA_NAME
    if out is not None:
        from lossaudit.sinks.local import check_writable

        check_writable(Path(out))
    source = model_source(model, tracking_uri=tracking_uri)
    request = AuditRequest(
        model=source.uri,
        data=data_label,
        label_columns=tuple(label_columns),
        reported=reported_metrics(reported, reported_on=reported_on, reported_n=reported_n),
        out_dir=None if out is None else str(out),
        config=rules,
        unsafe=unsafe,
        batch_size=batch_size,
        gx=gx,
        thresholds=dict(thresholds or {}),
        roc_auc=roc_auc,
    )
    return run_request(request, source, data=data, log=log, tracking_uri=tracking_uri, experiment=experiment)


def run_request(
    request: Any,
    source: ModelSource,
    *,
    data: tuple[Any, Any] | None = None,
    log: bool = False,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    into_run: str | None = None,
) -> AuditReport:
    """Run the pipeline for ``request`` and log it: into run ``into_run`` when given, else into the
    active MLflow run, else (``log``) as a run of its own, as the CLI logs it."""
    from lossaudit.pipeline.stages import run_audit

    active = _active_run() if log and into_run is None else None
    sinks: list[ReportSink] = []
    if log and into_run is None and active is None:
        from lossaudit.sinks.mlflow import MlflowSink, project_run_id
        from lossaudit.tracking import DEFAULT_EXPERIMENT

        sinks.append(
            MlflowSink(
                tracking_uri=tracking_uri,
                experiment=experiment or DEFAULT_EXPERIMENT,
                parent_run_id=project_run_id(tracking_uri),
            )
        )
    outcome = run_audit(request, source=source, sinks=sinks, data=data)
    report = AuditReport.of(outcome.report, folder=outcome.folder)
    logged: Mapping[str, Any] | None = next(iter(outcome.sink_results.values()), None)
    try:
        if outcome.sink_error is not None:
            raise outcome.sink_error
        if into_run is not None:
            logged = _log_into(report, outcome.folder, into_run, tracking_uri)
        elif active is not None:
            logged = log_into_active_run(report, outcome.folder)
    except LossauditError as exc:
        exc.report = report
        raise
    return AuditReport.of(report, folder=outcome.folder, mlflow_run=logged)


def _log_into(
    report: AuditReport, folder: Path | None, run_id: str, tracking_uri: str | None
) -> dict[str, Any]:
    from lossaudit.sinks.mlflow import log_report_into_run

    if folder is not None:
        return log_report_into_run(folder, run_id, tracking_uri=tracking_uri).to_dict()
    with tempfile.TemporaryDirectory(prefix="lossaudit-report-") as tmp:
        report.save(tmp)
        return log_report_into_run(tmp, run_id, tracking_uri=tracking_uri).to_dict()


# --- check and compare -------------------------------------------------------------------------


def check(
    model_or_head: Any,
    labels: Any = None,
    *,
    label_columns: Sequence[str] = (),
    config: ConfigArg = None,
    select: Iterable[str] | str | None = None,
    ignore: Iterable[str] | str | None = None,
    fail_on: str | None = None,
    tracking_uri: str | None = None,
) -> AuditReport:
    """The rules on a head and, optionally, its labels, without running a model (``lossaudit
    check``).

    ``model_or_head`` is a ``keras.Model`` (its compiled head), a saved model file or an MLflow
    model URI (read statically: no TensorFlow), a spec file (``.yaml``/``.json``), a mapping
    (``{"units": 1, "activation": "sigmoid", "loss": "categorical_crossentropy"}``) or a
    :class:`~lossaudit.core.head.HeadSpec`. ``labels`` is an array or a labels file.
    """
    from lossaudit.core.audit import check as run_check

    rules = rule_config(config, select=select, ignore=ignore, fail_on=fail_on)
    head, context = head_of(model_or_head, tracking_uri=tracking_uri)
    y = None if labels is None else _labels(labels, label_columns)
    if _is_path(labels):
        context["labels_file"] = str(labels)
    return AuditReport.of(run_check(head, y, context=context, config=rules))


def compare(
    y: Any,
    predictions: Any,
    *,
    head: Any = None,
    reported: Mapping[str, Any] | Iterable[Any] | None = None,
    reported_on: str = "this",
    reported_n: int | None = None,
    from_logits: bool = False,
    activation: str | None = None,
    loss: str | None = None,
    metrics: Sequence[str] = (),
    keras_family: str = "keras3",
    label_columns: Sequence[str] = (),
    prediction_columns: Sequence[str] = (),
    config: ConfigArg = None,
    select: Iterable[str] | str | None = None,
    ignore: Iterable[str] | str | None = None,
    fail_on: str | None = None,
) -> AuditReport:
    """Recompute metrics from labels and predictions and attribute each reported number
    (``lossaudit compare``).

    ``y`` and ``predictions`` are arrays or files. ``head`` is what :func:`check` takes; without
    it the head is implied by the predictions, as on the command line (their width;
    ``from_logits``, ``activation``, ``loss``, ``metrics`` and ``keras_family`` say the rest).
    """
    from lossaudit.core.audit import audit_predictions, head_for_predictions
    from lossaudit.core.labels import LabelEncoding, detect_labels

    rules = rule_config(config, select=select, ignore=ignore, fail_on=fail_on)
    parsed = reported_metrics(reported, reported_on=reported_on, reported_n=reported_n)
    labels = _labels(y, label_columns)
    context: dict[str, Any] = {}
    if _is_path(y):
        context["labels_file"] = str(y)
    if _is_path(predictions):
        from lossaudit.sources.files import load_predictions

        context["predictions_file"] = str(predictions)
        predictions = load_predictions(Path(predictions), prediction_columns)
    if head is not None:
        spec, head_context = head_of(head)
        context.update(head_context)
    else:
        import numpy as np

        preds = np.asarray(predictions)
        width = preds.shape[1] if preds.ndim == 2 else 1
        multi = detect_labels(labels).encoding is LabelEncoding.MULTI_HOT
        spec = head_for_predictions(
            width,
            from_logits=from_logits,
            multi_label=multi,
            activation=activation,
            loss=loss,
            metrics=tuple(metrics),
            keras_family=keras_family,
        )
    return AuditReport.of(audit_predictions(spec, labels, predictions, parsed, context=context, config=rules))
