"""The MLflow evaluator plugin: ``mlflow.models.evaluate(..., evaluators=["lossaudit"])``.

Registered under the ``mlflow.model_evaluator`` entry point (``pyproject.toml``)::

    [project.entry-points."mlflow.model_evaluator"]
    lossaudit = "lossaudit.api.evaluator:LossauditEvaluator"

For ``model_type="classifier"`` it takes the Keras model behind the pyfunc (``get_raw_model()``
of a model logged with ``mlflow.keras`` or ``mlflow.tensorflow``) and the evaluation data
(features and ``targets``), runs the audit of ``lossaudit audit`` on them, logs it into the
evaluation's run (metrics against the logged model, tags, the eval data as a dataset input, the
report files under ``lossaudit/``) and returns an ``EvaluationResult`` whose metrics and artifacts
are the audit's. Alongside ``"default"`` both run, into the same run.

A model that is not Keras gets a warning that says so, and lossaudit steps aside (its
``evaluate`` returns None): ``evaluators=None`` runs every installed evaluator, so installing
lossaudit must never break the evaluation of a scikit-learn model. Alone
(``evaluators=["lossaudit"]``), MLflow then raises that no evaluator could evaluate the model,
after the warning that says why.

``evaluator_config={"lossaudit": {...}}`` takes the keys of :func:`lossaudit.audit`: ``gx``
(default True), ``fail_on``, ``select``, ``ignore``, ``config``, ``reported``, ``reported_on``,
``thresholds``, ``batch_size``, ``data_name``, and ``raise_on_fail`` (raise
:class:`~lossaudit.errors.AuditFailedError` after logging a failing audit; default False).

This module imports MLflow's evaluation base (MLflow loads it when it reads the entry point) and
nothing heavy: Keras, numpy and the pipeline are imported when an evaluation runs.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.models.evaluation import base as _evaluation
from mlflow.models.evaluation.base import ModelEvaluator

from lossaudit.errors import BadInputError

EVALUATOR_NAME = "lossaudit"
MODEL_TYPES = ("classifier",)
ARTIFACT_PATH = "lossaudit"
"""Where the report files go in the evaluation's run."""
CONFIG_KEYS = (
    "gx",
    "fail_on",
    "select",
    "ignore",
    "config",
    "reported",
    "reported_on",
    "reported_n",
    "thresholds",
    "batch_size",
    "data_name",
    "raise_on_fail",
)


class NotAKerasModelError(BadInputError):
    """The model behind the pyfunc is not a Keras model: lossaudit has nothing to audit."""


class LossauditEvaluator(ModelEvaluator):
    """``mlflow.models.evaluate(model_uri, data, targets=..., model_type="classifier",
    evaluators=["lossaudit"])``: the audit of a Keras classifier, logged into the evaluation run."""

    name = EVALUATOR_NAME

    @classmethod
    def can_evaluate(cls, *, model_type: Any, evaluator_config: Any, **kwargs: Any) -> bool:
        return model_type in MODEL_TYPES

    def evaluate(
        self,
        *,
        model_type: Any,
        dataset: Any,
        run_id: str,
        evaluator_config: Mapping[str, Any] | None,
        model: Any = None,
        extra_metrics: Any = None,
        custom_artifacts: Any = None,
        predictions: Any = None,
        **kwargs: Any,
    ) -> Any:
        try:
            keras_model_of(model)
        except NotAKerasModelError as exc:
            # Other evaluators may still evaluate this model (evaluators=None runs them all):
            # lossaudit says why it has nothing to add and steps aside.
            warnings.warn(str(exc), stacklevel=2)
            return None
        return evaluate(
            model=model,
            dataset=dataset,
            run_id=run_id,
            evaluator_config=evaluator_config or {},
            model_id=kwargs.get("model_id"),
        )


def keras_model_of(model: Any) -> Any:
    """The Keras model behind an MLflow pyfunc model: the model of the ``keras`` or ``tensorflow``
    flavour (``get_raw_model()``), or the one Keras model a ``mlflow.pyfunc.PythonModel`` holds in
    an attribute (a wrapper that predicts labels, as the ``default`` evaluator needs).
    :class:`NotAKerasModelError` otherwise."""
    from lossaudit.sources.memory import is_keras_model

    if model is None:
        raise BadInputError(
            "the lossaudit evaluator runs the model: pass a model URI or a pyfunc model to "
            "mlflow.models.evaluate, not static predictions"
        )
    if is_keras_model(model):
        return model
    raw: Any = None
    for unwrap in ("get_raw_model", "unwrap_python_model"):
        try:
            raw = getattr(model, unwrap)()
            break
        except (AttributeError, NotImplementedError, MlflowException):
            raw = None
    if raw is not None and is_keras_model(raw):
        return raw
    attributes = vars(raw).values() if hasattr(raw, "__dict__") else ()
    held = [value for value in attributes if is_keras_model(value)]
    if len(held) == 1:
        return held[0]
    metadata = getattr(model, "metadata", None)
    flavors = ", ".join(sorted(getattr(metadata, "flavors", None) or {})) or "unknown"
    what = type(raw if raw is not None else model)
    raise NotAKerasModelError(
        f"lossaudit audits Keras classifiers, and this model is not one (flavours: {flavors}; "
        f"the model is a {what.__module__}.{what.__name__}): log a Keras model with "
        "mlflow.keras.log_model or mlflow.tensorflow.log_model, or evaluate this one with "
        "evaluators=['default']"
    )


def _provenance(model: Any, model_id: str | None, run_id: str) -> tuple[str, dict[str, Any], tuple[Any, ...]]:
    """(model URI, report context, reported numbers of the model's training run)."""
    import mlflow

    from lossaudit.sources.mlflow import attributable_metrics, held_out_size, run_reported_metrics
    from lossaudit.tracking import CONTEXT_KEY

    metadata = getattr(model, "metadata", None)
    flavors = sorted(getattr(metadata, "flavors", None) or {})
    source_run = getattr(metadata, "run_id", None) or None
    artifact_path = getattr(metadata, "artifact_path", None) or None
    model_id = model_id or getattr(metadata, "model_id", None) or None
    client = mlflow.MlflowClient()
    if model_id is not None and source_run is None:
        source_run = client.get_logged_model(model_id).source_run_id or None
    if model_id is not None:
        uri = f"models:/{model_id}"
    elif source_run is not None and artifact_path is not None:
        uri = f"runs:/{source_run}/{artifact_path}"
    else:
        uri = "mlflow-pyfunc"
    name, version = _registry_version(client, model_id)
    reported: dict[str, float] = {}
    found: tuple[Any, ...] = ()
    # The evaluation's own run holds what other evaluators logged on this very data: only another
    # run (the training run) states numbers to check.
    if source_run is not None and source_run != run_id:
        run = client.get_run(source_run)
        reported = attributable_metrics(run.data.metrics)
        found = run_reported_metrics(reported, held_out_size(run))
    context = {
        CONTEXT_KEY: {
            "model_uri": uri,
            "tracking_uri": mlflow.get_tracking_uri(),
            "source_run_id": source_run,
            "model_name": name,
            "model_version": version,
            "logged_model_id": model_id,
            "flavors": flavors,
            "reported_from_source_run": reported,
        }
    }
    return uri, context, found


def _registry_version(client: Any, model_id: str | None) -> tuple[str | None, str | None]:
    """The registry version of a logged model (MLflow 3 registers it with source
    ``models:/<model id>``), when exactly one version points to it."""
    if model_id is None:
        return None, None
    try:
        versions = list(client.search_model_versions(f"source_path = 'models:/{model_id}'"))
    except MlflowException:  # a registry that cannot search by source: no version page to tag
        return None, None
    if len(versions) != 1:
        return None, None
    return str(versions[0].name), str(versions[0].version)


def evaluate(
    *,
    model: Any,
    dataset: Any,
    run_id: str,
    evaluator_config: Mapping[str, Any],
    model_id: str | None = None,
) -> Any:
    """The audit of ``model`` on ``dataset`` (an MLflow ``EvaluationDataset``), logged into run
    ``run_id``; an ``EvaluationResult`` with the audit's metrics and report files."""
    from lossaudit.api.audit import reported_metrics, rule_config, run_request
    from lossaudit.errors import AuditFailedError
    from lossaudit.pipeline.stages import AuditRequest
    from lossaudit.sources.memory import InMemoryModelSource

    unknown = sorted(set(evaluator_config) - set(CONFIG_KEYS))
    if unknown:
        raise BadInputError(
            f"evaluator_config for lossaudit: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(CONFIG_KEYS)})"
        )
    cfg = dict(evaluator_config)
    keras_model = keras_model_of(model)
    if not getattr(dataset, "has_targets", True):
        raise BadInputError(
            "the lossaudit evaluator needs the labels: pass targets= to mlflow.models.evaluate"
        )
    uri, context, from_run = _provenance(model, model_id, run_id)
    source = InMemoryModelSource(keras_model, uri=uri, context=context, reported=from_run)
    rules = rule_config(
        cfg.get("config"), select=cfg.get("select"), ignore=cfg.get("ignore"), fail_on=cfg.get("fail_on")
    )
    data = (dataset.features_data, dataset.labels_data)
    with tempfile.TemporaryDirectory(prefix="lossaudit-evaluate-") as tmp:
        request = AuditRequest(
            model=uri,
            data=str(cfg.get("data_name") or getattr(dataset, "name", None) or "eval"),
            reported=reported_metrics(
                cfg.get("reported"),
                reported_on=cfg.get("reported_on", "this"),
                reported_n=cfg.get("reported_n"),
            ),
            out_dir=tmp,
            config=rules,
            batch_size=int(cfg.get("batch_size", 256)),
            gx=bool(cfg.get("gx", True)),
            thresholds=dict(cfg.get("thresholds") or {}),
        )
        report = run_request(request, source, data=data, into_run=run_id)
        result = evaluation_result(report, run_id, Path(tmp))
    if cfg.get("raise_on_fail") and report.verdict == "fail":
        from lossaudit.api.report import failure_line

        raise AuditFailedError(failure_line(report), report=report)
    return result


def evaluation_result(report: Any, run_id: str, folder: Path) -> Any:
    """The ``EvaluationResult`` of an audit logged into run ``run_id``: the metric names and values
    logged there, and each file of the report folder as an artifact (``lossaudit_report_json``,
    ``lossaudit_report_html``, ``lossaudit_confusion_matrix_png``, ...) at its URI in the run."""
    import json

    import mlflow
    from mlflow.models.evaluation import artifacts as kinds

    from lossaudit.sinks.mlflow import run_metrics

    # MLflow's artifact and result classes carry no annotations: called through Any.
    json_artifact: Any = kinds.JsonEvaluationArtifact
    image_artifact: Any = kinds.ImageEvaluationArtifact
    text_artifact: Any = kinds.TextEvaluationArtifact
    result: Any = _evaluation.EvaluationResult

    base = mlflow.MlflowClient().get_run(run_id).info.artifact_uri.rstrip("/")
    artifacts: dict[str, Any] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        key = "lossaudit_" + path.name.replace(".", "_")
        uri = f"{base}/{ARTIFACT_PATH}/{path.name}"
        if path.suffix == ".json":
            artifacts[key] = json_artifact(uri=uri, content=json.loads(path.read_text("utf-8")))
        elif path.suffix == ".png":
            artifacts[key] = image_artifact(uri=uri)  # loaded from the run when read
        else:
            artifacts[key] = text_artifact(uri=uri, content=path.read_text("utf-8"))
    return result(metrics=run_metrics(report.to_dict()), artifacts=artifacts, run_id=run_id)
