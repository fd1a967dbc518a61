"""The three ways into lossaudit from Python, offline, on scikit-learn's bundled data (~1 min on CPU).

    python examples/python_api.py [--store DIR]

1. a notebook or a script: ``lossaudit.audit(model, x, y)`` on a ``keras.Model`` in memory;
2. ``mlflow.models.evaluate(..., evaluators=["lossaudit"])`` on a logged Keras model, then
   ``evaluators=["default", "lossaudit"]`` on a pyfunc wrapper of it that predicts labels;
3. ``lossaudit.keras.AuditCallback`` stopping the seeds' 1-unit categorical cross-entropy before
   its first step, and, with that rule ignored, after the epochs whose loss reads 0.0.

MLflow goes to a SQLite store and its artifacts to ``mlruns/`` in a temporary folder (``--store
DIR`` keeps them; browse with ``mlflow ui --backend-store-uri sqlite:///DIR/mlflow.db``). The
README's outputs under "From Python" are this script's (tests/api/test_example.py checks them).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_iris

import keras
import lossaudit
from lossaudit.keras import AuditCallback

EXPERIMENT = "python-api-example"


def iris_model() -> tuple[keras.Model, np.ndarray, np.ndarray, float]:
    """A softmax classifier on iris, and the accuracy its training reported."""
    x, y = load_iris(return_X_y=True)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")], name="iris")
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    history = model.fit(x, y, epochs=40, verbose=0)
    return model, x, y, float(history.history["accuracy"][-1])


def in_a_notebook(model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
    print("== 1. lossaudit.audit on a model in memory")
    # Someone reported 0.99 for this model: the audit recomputes and attributes it.
    report = lossaudit.audit(model, x, y, reported={"accuracy": 0.99}, gx=False)
    print(repr(report))
    for finding in report.findings:
        print(f"{finding.code} {finding.severity.value}: {finding.message}")
    print("recomputed accuracy:", round(report.metrics.values["accuracy"], 4) if report.metrics else None)
    # In a notebook, `report` alone shows the report.html page inline (report._repr_html_()).
    print("notebook view:", report._repr_html_()[:33], "...")


class PredictLabels(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A pyfunc that predicts class labels with the Keras model it holds: what MLflow's ``default``
    classifier evaluator needs (a Keras model gives probabilities). lossaudit audits the Keras
    model it holds."""

    def load_context(self, context: Any) -> None:
        self.model = keras.saving.load_model(context.artifacts["keras"])

    def predict(self, context, model_input):  # type: ignore[no-untyped-def]  # no hints: MLflow reads them
        return self.model.predict(np.asarray(model_input, dtype=np.float32), verbose=0).argmax(axis=1)


def with_mlflow_evaluate(
    model: keras.Model, x: np.ndarray, y: np.ndarray, trained: float, folder: Path
) -> None:
    print("\n== 2. mlflow.models.evaluate(..., evaluators=['lossaudit'])")
    from mlflow.models.evaluation.evaluator_registry import _model_evaluation_registry as registry

    if not registry.is_registered("lossaudit"):  # an install without the entry point
        from lossaudit.api.evaluator import LossauditEvaluator

        registry.register("lossaudit", LossauditEvaluator)
    client = mlflow.MlflowClient()
    if client.get_experiment_by_name(EXPERIMENT) is None:  # artifacts beside the store, not in ./mlruns
        client.create_experiment(EXPERIMENT, artifact_location=(folder / "mlruns").resolve().as_uri())
    mlflow.set_experiment(EXPERIMENT)
    model.save(folder / "iris.keras")
    with mlflow.start_run(run_name="train"):
        mlflow.log_metric("accuracy", trained)  # what training said: compared by the audit
        info = mlflow.keras.log_model(
            model, name="model", registered_model_name="iris", pip_requirements=["keras"]
        )
        labels = mlflow.pyfunc.log_model(
            name="labels",
            python_model=PredictLabels(),
            artifacts={"keras": str(folder / "iris.keras")},
            pip_requirements=["keras"],
        )
    data = pd.DataFrame(x, columns=["f0", "f1", "f2", "f3"]).assign(label=y)
    with mlflow.start_run(run_name="evaluate") as run:
        result = mlflow.models.evaluate(
            info.model_uri,
            data,
            targets="label",
            model_type="classifier",
            evaluators=["lossaudit"],
            evaluator_config={"lossaudit": {"gx": False}},
        )
    shown = ("recomputed.accuracy", "recomputed.majority_baseline", "findings.error", "findings.warning")
    print("result.metrics:", {k: round(result.metrics[k], 4) for k in shown})
    print("result.artifacts:", sorted(result.artifacts))
    logged = client.get_run(run.info.run_id)
    tags = logged.data.tags
    print("run tags:", {k: v for k, v in sorted(tags.items()) if k.startswith("lossaudit.comparison.")})
    print("verdict:", tags["lossaudit.verdict"], "| logged model:", tags["lossaudit.logged_model_id"])
    for item in logged.inputs.dataset_inputs:
        context = [tag.value for tag in item.tags if tag.key == "mlflow.data.context"]
        if context == ["eval"]:  # lossaudit's (MLflow's own evaluation dataset has no context)
            dataset = item.dataset
            print(f"dataset input: {dataset.name} digest {dataset.digest} profile {dataset.profile}")
    on_model = {m.key: round(m.value, 4) for m in mlflow.get_logged_model(info.model_id).metrics}
    print("logged model metrics:", {k: on_model[k] for k in shown[:3]})
    version = client.get_model_version("iris", str(info.registered_model_version))
    print(f"model version {version.version} tags:", dict(sorted(version.tags.items())))

    with mlflow.start_run(run_name="evaluate default+lossaudit"):
        both = mlflow.models.evaluate(
            labels.model_uri,
            data,
            targets="label",
            model_type="classifier",
            evaluators=["default", "lossaudit"],
            evaluator_config={"lossaudit": {"gx": False}},
        )
    print(
        "evaluators=['default', 'lossaudit']:",
        {k: round(both.metrics[k], 4) for k in ("accuracy_score", "f1_score", "recomputed.accuracy")},
    )


def with_the_callback() -> None:
    print("\n== 3. lossaudit.keras.AuditCallback")
    x, y = load_breast_cancer(return_X_y=True)

    def one_unit_cce() -> keras.Model:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    model = one_unit_cce()
    try:
        model.fit(x, y, epochs=5, verbose=0, callbacks=[AuditCallback(labels=y, log=False)])
    except lossaudit.AuditFailedError as exc:
        print(f"{type(exc).__name__} (exit code {exc.exit_code}): {exc}")
        print("training steps run:", int(model.optimizer.iterations))
    # The same fit with LA101 ignored: the history shows it (the callback prints warnings on stderr).
    model = one_unit_cce()
    callback = AuditCallback(labels=y, ignore=["LA101"], log=False)
    try:
        model.fit(x, y, epochs=5, verbose=0, callbacks=[callback])
    except lossaudit.AuditFailedError as exc:
        print(f"{type(exc).__name__}: {exc}")
        print("training losses:", callback.report.context["training_loss"] if callback.report else None)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--store", type=Path, help="folder for the MLflow store and artifacts (default: temporary)"
    )
    args = parser.parse_args(argv)
    folder = args.store or Path(tempfile.mkdtemp(prefix="lossaudit-example-"))
    folder.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{folder.resolve() / 'mlflow.db'}")
    model, x, y, trained = iris_model()
    in_a_notebook(model, x, y)
    with_mlflow_evaluate(model, x, y, trained, folder)
    with_the_callback()


if __name__ == "__main__":
    main()
