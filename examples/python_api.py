"""The three ways into lossaudit from Python, offline, on scikit-learn's bundled data (~30 s on CPU).

    python examples/python_api.py [--store DIR]

1. a notebook or a script: ``lossaudit.audit(model, x, y)`` on a ``keras.Model`` in memory;
2. ``mlflow.models.evaluate(..., evaluators=["lossaudit"])`` on a logged Keras model;
3. ``lossaudit.keras.AuditCallback`` stopping the seeds' 1-unit categorical cross-entropy before
   its first step.

MLflow goes to a SQLite store in a temporary folder (``--store DIR`` keeps it; browse it with
``mlflow ui --backend-store-uri sqlite:///DIR/mlflow.db``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

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


def with_mlflow_evaluate(model: keras.Model, x: np.ndarray, y: np.ndarray, trained: float) -> None:
    print("\n== 2. mlflow.models.evaluate(..., evaluators=['lossaudit'])")
    from mlflow.models.evaluation.evaluator_registry import _model_evaluation_registry as registry

    if not registry.is_registered("lossaudit"):  # an install without the entry point
        from lossaudit.api.evaluator import LossauditEvaluator

        registry.register("lossaudit", LossauditEvaluator)
    mlflow.set_experiment("python-api-example")
    with mlflow.start_run(run_name="train"):
        mlflow.log_metric("accuracy", trained)  # what training said: compared by the audit
        info = mlflow.keras.log_model(
            model, name="model", registered_model_name="iris", pip_requirements=["keras"]
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
    print({k: round(result.metrics[k], 4) for k in shown})
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    print("run tags:", {k: v for k, v in tags.items() if k.startswith("lossaudit.") and "." in k[10:]})
    print("verdict:", tags["lossaudit.verdict"], "| logged model:", tags["lossaudit.logged_model_id"])
    print("artifacts:", sorted(result.artifacts))
    version = mlflow.MlflowClient().get_model_version("iris", "1")
    print("model version 1 tags:", dict(version.tags))


def with_the_callback() -> None:
    print("\n== 3. lossaudit.keras.AuditCallback")
    x, y = load_breast_cancer(return_X_y=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    try:
        model.fit(x, y, epochs=5, verbose=0, callbacks=[AuditCallback(labels=y, log=False)])
    except lossaudit.AuditFailedError as exc:
        print(f"{type(exc).__name__} (exit code {exc.exit_code}): {exc}")
        print("training steps run:", int(model.optimizer.iterations))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="folder for the MLflow SQLite store (default: temporary)")
    args = parser.parse_args()
    folder = args.store or Path(tempfile.mkdtemp(prefix="lossaudit-example-"))
    folder.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{folder.resolve() / 'mlflow.db'}")
    model, x, y, trained = iris_model()
    in_a_notebook(model, x, y)
    with_mlflow_evaluate(model, x, y, trained)
    with_the_callback()


if __name__ == "__main__":
    main()
