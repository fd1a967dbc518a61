"""The MLflow evaluator plugin end to end: ``mlflow.models.evaluate`` on logged models in a SQLite
store, with ``evaluators=["lossaudit"]`` and ``["default", "lossaudit"]``; a non-Keras model's
message; the ``mlflow.model_evaluator`` entry point declared in pyproject.toml.

The shared virtualenv may hold an older install of lossaudit without the entry point: the
``lossaudit_evaluator`` fixture then registers the class the way the entry point would.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lossaudit
from lossaudit.api.evaluator import LossauditEvaluator, NotAKerasModelError, keras_model_of
from tests.api.conftest import IrisCase

pytestmark = [pytest.mark.keras, pytest.mark.mlflow]

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
NO_GX = {"lossaudit": {"gx": False}}


@pytest.fixture(scope="module", autouse=True)
def lossaudit_evaluator() -> Iterator[None]:
    from mlflow.models.evaluation.evaluator_registry import _model_evaluation_registry as registry

    installed = registry.is_registered("lossaudit")
    if not installed:  # no reinstall since the entry point was added
        registry.register("lossaudit", LossauditEvaluator)
    yield
    if not installed:
        registry._registry.pop("lossaudit", None)


@dataclass(frozen=True)
class Logged:
    keras_uri: str
    """``models:/iris/1``: the Keras model, registered."""
    keras_model_id: str
    labels_uri: str
    """A pyfunc wrapper around the same Keras model that predicts class labels (the default
    classifier evaluator needs labels, a Keras model gives probabilities)."""
    sklearn_uri: str
    data: Any


@pytest.fixture(scope="module")
def logged(iris_case: IrisCase, mlflow_store: str) -> Logged:
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import keras

    class Labels(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def load_context(self, context: Any) -> None:
            self.model = keras.saving.load_model(context.artifacts["keras"])

        def predict(self, context, model_input):  # type: ignore[no-untyped-def]  # no hints: MLflow reads them
            return self.model.predict(np.asarray(model_input, dtype=np.float32), verbose=0).argmax(axis=1)

    mlflow.set_experiment("training")
    with mlflow.start_run():
        mlflow.log_metric("accuracy", 0.99)  # what the training run claims
        keras_info = mlflow.keras.log_model(
            iris_case.model, name="model", registered_model_name="iris", pip_requirements=["keras"]
        )
        labels_info = mlflow.pyfunc.log_model(
            name="labels",
            python_model=Labels(),
            artifacts={"keras": str(iris_case.path)},
            pip_requirements=["keras"],
        )
        sklearn_info = mlflow.sklearn.log_model(
            LogisticRegression(max_iter=200).fit(iris_case.x, iris_case.y),
            name="sklearn",
            pip_requirements=["scikit-learn"],
        )
    frame = pd.DataFrame(iris_case.x, columns=["f0", "f1", "f2", "f3"]).assign(label=iris_case.y)
    return Logged(
        "models:/iris/1", str(keras_info.model_id), labels_info.model_uri, sklearn_info.model_uri, frame
    )


def test_lossaudit_alone_logs_the_audit_into_the_evaluation_run(logged: Logged) -> None:
    import mlflow

    mlflow.set_experiment("evaluation")
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            logged.keras_uri,
            logged.data,
            targets="label",
            model_type="classifier",
            evaluators=["lossaudit"],
            evaluator_config=NO_GX,
        )
    client = mlflow.MlflowClient()
    logged_run = client.get_run(run.info.run_id)
    # The returned metrics are the audit's, as logged into the run.
    assert result.run_id == run.info.run_id
    assert 0.0 < result.metrics["recomputed.accuracy"] <= 1.0
    assert {k: logged_run.data.metrics[k] for k in result.metrics} == result.metrics
    # The training run said 0.99 on its own data: checked against sampling error.
    tags = logged_run.data.tags
    assert tags["lossaudit.verdict"] in ("pass", "fail")
    assert tags["lossaudit.logged_model_id"] == logged.keras_model_id
    assert "lossaudit.comparison.source_run.accuracy" in tags
    report = result.artifacts["lossaudit_report_json"].content
    assert report["verdict"] == tags["lossaudit.verdict"]
    expected = {"lossaudit_report_html", "lossaudit_report_md", "lossaudit_confusion_matrix_png"}
    assert expected <= set(result.artifacts)
    files = {a.path for a in client.list_artifacts(run.info.run_id, "lossaudit")}
    assert {"lossaudit/report.json", "lossaudit/report.html"} <= files
    # Tied to MLflow's objects: the eval data, the logged model's metrics, the version's page.
    contexts = {
        item.dataset.digest: [t.value for t in item.tags] for item in logged_run.inputs.dataset_inputs
    }
    assert contexts[report["context"]["dataset"]["digest"]] == ["eval"]
    model_metrics = {m.key: m.value for m in client.get_logged_model(logged.keras_model_id).metrics}
    assert model_metrics["recomputed.accuracy"] == result.metrics["recomputed.accuracy"]
    version = client.get_model_version("iris", "1")
    assert version.tags["lossaudit.verdict"] == tags["lossaudit.verdict"]
    assert version.tags["lossaudit.audit_run"] == run.info.run_id


def test_default_and_lossaudit_both_run(logged: Logged) -> None:
    import mlflow

    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            logged.labels_uri,
            logged.data,
            targets="label",
            model_type="classifier",
            evaluators=["default", "lossaudit"],
            evaluator_config=NO_GX,
        )
    assert {"accuracy_score", "f1_score"} <= set(result.metrics)  # the default classifier evaluator
    assert {"recomputed.accuracy", "findings.error"} <= set(result.metrics)  # lossaudit
    # Both read the same model and data: the same accuracy.
    assert result.metrics["recomputed.accuracy"] == pytest.approx(result.metrics["accuracy_score"])
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["lossaudit.verdict"] in ("pass", "fail")
    assert result.artifacts["lossaudit_report_json"].content["command"] == "audit"


def test_a_model_that_is_not_keras_gets_a_clear_message(logged: Logged) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    message = "lossaudit audits Keras classifiers, and this model is not one"
    with pytest.raises(NotAKerasModelError, match=message):
        keras_model_of(mlflow.pyfunc.load_model(logged.sklearn_uri))
    # Alone: the warning says why, then MLflow says that no evaluator could evaluate the model.
    with (
        mlflow.start_run(),
        pytest.warns(UserWarning, match=message),
        pytest.raises(MlflowException, match="could not be evaluated by any of the registered evaluators"),
    ):
        mlflow.models.evaluate(
            logged.sklearn_uri,
            logged.data,
            targets="label",
            model_type="classifier",
            evaluators=["lossaudit"],
            evaluator_config=NO_GX,
        )
    # Beside the default evaluator, the message is a warning and the default one still runs.
    with mlflow.start_run(), pytest.warns(UserWarning, match=message):
        result = mlflow.models.evaluate(
            logged.sklearn_uri,
            logged.data,
            targets="label",
            model_type="classifier",
            evaluators=["default", "lossaudit"],
            evaluator_config=NO_GX,
        )
    assert "accuracy_score" in result.metrics and "recomputed.accuracy" not in result.metrics


def test_pyproject_declares_the_entry_point() -> None:
    doc = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    target = doc["project"]["entry-points"]["mlflow.model_evaluator"]["lossaudit"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is LossauditEvaluator
    assert LossauditEvaluator.can_evaluate(model_type="classifier", evaluator_config={})
    assert not LossauditEvaluator.can_evaluate(model_type="regressor", evaluator_config={})


def test_a_model_logged_with_mlflow_tensorflow_is_audited(iris_case: IrisCase, logged: Logged) -> None:
    import mlflow

    mlflow.set_experiment("training")
    with mlflow.start_run():
        info = mlflow.tensorflow.log_model(iris_case.model, name="tf_model", pip_requirements=["keras"])
    assert keras_model_of(mlflow.pyfunc.load_model(info.model_uri)).name == iris_case.model.name
    mlflow.set_experiment("evaluation")
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            info.model_uri,
            logged.data,
            targets="label",
            model_type="classifier",
            evaluators=["lossaudit"],
            evaluator_config=NO_GX,
        )
    client = mlflow.MlflowClient()
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["lossaudit.logged_model_id"] == info.model_id
    assert result.artifacts["lossaudit_report_json"].content["context"]["mlflow_source"]["flavors"] == [
        "python_function",
        "tensorflow",
    ]
    # The same model as the mlflow.keras one: the same recomputed numbers, on its own page.
    expected = lossaudit.audit(iris_case.model, iris_case.x, iris_case.y, gx=False).metrics
    assert expected is not None
    assert result.metrics["recomputed.accuracy"] == pytest.approx(expected.values["accuracy"])
    model_metrics = {m.key: m.value for m in client.get_logged_model(info.model_id).metrics}
    assert model_metrics["recomputed.accuracy"] == result.metrics["recomputed.accuracy"]
