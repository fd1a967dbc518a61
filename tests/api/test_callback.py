"""``lossaudit.keras.AuditCallback`` on the seeds' 1-unit categorical cross-entropy (breast_cancer,
raw features, SGD): stopped before its first step; with LA101 ignored, its loss of 0.0 in every
epoch flagged (LA802); a NaN loss (LA801); the audit logged into an autologging run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lossaudit.errors import EXIT_FINDINGS, AuditFailedError

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return x.astype(np.float32), y.astype(np.int64)


def one_unit_cce() -> Any:
    """Dense(1, sigmoid) + categorical_crossentropy, the seeds' model (LA101)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def step_counter() -> Any:
    """A callback counting the training steps Keras began (``.batches``)."""
    import keras

    class Counter(keras.callbacks.Callback):  # type: ignore[misc]
        batches = 0

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self.batches += 1

    return Counter()


def test_one_unit_cce_is_stopped_before_its_first_step(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    from lossaudit.keras import AuditCallback

    x, y = cancer
    model, steps = one_unit_cce(), step_counter()
    with pytest.raises(AuditFailedError, match="before the first step: LA101 error") as stopped:
        model.fit(x, y, epochs=2, verbose=0, callbacks=[AuditCallback(labels=y, log=False), steps])
    assert steps.batches == 0 and int(model.optimizer.iterations) == 0
    assert stopped.value.exit_code == EXIT_FINDINGS
    assert stopped.value.report.codes == ("LA101",)
    assert "Dense(1, activation='sigmoid')" in str(stopped.value)


def test_stop_option_ends_the_fit_without_a_step(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    from lossaudit.keras import AuditCallback

    x, y = cancer
    model = one_unit_cce()
    callback = AuditCallback(labels=y, log=False, on_fail="stop", verbose=False)
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    assert callback.stopped == "before the first step" and history.history == {}
    assert int(model.optimizer.iterations) == 0
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0)  # the model trains again after
    assert int(model.optimizer.iterations) == 2


def test_a_loss_of_zero_in_every_epoch_is_flagged(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    from lossaudit.keras import AuditCallback

    x, y = cancer
    model = one_unit_cce()
    callback = AuditCallback(labels=y, log=False, ignore=["LA101"], patience=2, verbose=False)
    flagged = r"after epoch 2: LA802 error: the training loss read exactly 0\.0"
    with pytest.raises(AuditFailedError, match=flagged):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[callback])
    assert callback.report is not None and "LA802" in callback.report.codes
    assert callback.report.context["training_loss"] == [0.0, 0.0]


def test_a_nan_loss_is_flagged(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    import keras
    from lossaudit.keras import AuditCallback

    x, y = cancer
    x = x.copy()
    x[7, 3] = np.nan
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    with pytest.raises(AuditFailedError, match="after epoch 1: LA801 error: the training loss read nan"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[AuditCallback(labels=y, log=False)])


def test_a_probe_predicted_as_one_class_is_flagged() -> None:
    """A softmax stuck on class 0 (zero kernel, bias towards 0, learning rate 0): the probe batch's
    predictions are one class for every sample after the first epoch (LA501)."""
    from sklearn.datasets import load_iris

    import keras
    from lossaudit.keras import AuditCallback

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    keras.utils.set_random_seed(0)
    stuck = keras.layers.Dense(
        3,
        activation="softmax",
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant([5.0, 0.0, 0.0]),
    )
    model = keras.Sequential([keras.Input((4,)), stuck])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy")
    callback = AuditCallback(labels=y, probe=(x[::5], y[::5]), log=False, verbose=False)
    flagged = "after epoch 1: LA501 error: the model predicts class 0 for all 30 samples"
    with pytest.raises(AuditFailedError, match=flagged):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[callback])
    assert callback.stopped == "after epoch 1" and callback.report is not None
    assert callback.report.codes == ("LA501",)
    # Without the probe the same fit is judged on its history alone: nothing flags epoch 1.
    quiet = AuditCallback(labels=y, log=False, verbose=False, patience=3)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[quiet])
    assert quiet.stopped is None and quiet.report is not None and "LA501" not in quiet.report.codes


@pytest.mark.parametrize("flavour", ["keras", "tensorflow"])
def test_the_audit_is_logged_into_the_autologging_run(
    cancer: tuple[np.ndarray, np.ndarray], mlflow_store: str, flavour: str
) -> None:
    import mlflow

    from lossaudit.keras import AuditCallback

    x, y = cancer
    model = one_unit_cce()
    mlflow.set_experiment("callback")
    autolog = getattr(mlflow, flavour).autolog
    autolog(log_models=False, log_datasets=False, silent=True)
    try:
        callback = AuditCallback(labels=y, on_fail="stop", verbose=False)
        model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    finally:
        autolog(disable=True)
    assert callback.mlflow_run is not None and int(model.optimizer.iterations) == 0
    client = mlflow.MlflowClient()
    run = client.get_run(callback.mlflow_run["run_id"])
    assert run.data.params["epochs"] == "2"  # autologging's own run, which the audit joined
    assert run.data.tags["lossaudit.verdict"] == "fail" and run.data.tags["lossaudit.codes"] == "LA101"
    assert run.data.metrics["findings.error"] == 1.0
    assert "lossaudit/report.json" in [a.path for a in client.list_artifacts(run.info.run_id, "lossaudit")]
