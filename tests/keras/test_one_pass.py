"""One forward pass: the numbers the predict stage reports for Keras equal ``model.evaluate``'s.

:func:`lossaudit.keras.predict.predict_and_evaluate` predicts each batch once and feeds the outputs
to the model's own compiled loss and metric objects. The metric matrix
(``test_metric_matrix.test_one_pass_reports_what_keras_reports``) holds it against Keras on every
configuration; here it meets a plain graph-mode ``model.evaluate`` on 64 rows in batches of 24 (two
full batches and a short one) with what the matrix leaves out: regularisation losses, dropout,
batch normalisation, metrics with thresholds, top-k and state (AUC), a loss summed per batch
(where the batching changes the number), and tf-keras models.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from tests.keras.test_metric_matrix import N_FEATURES

pytestmark = pytest.mark.keras

ROWS = 64
BATCH = 24
RTOL = 1e-5


def _x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(ROWS, N_FEATURES)).astype(np.float32)


def _evaluate(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float] | str:
    """``model.evaluate``'s numbers, or ``TypeName: message`` when it refuses."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            logs = model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
    return {str(k): float(v) for k, v in logs.items()}


def _disagreement(name: str, model: Any, x: np.ndarray, y: np.ndarray) -> str | None:
    """Why the one pass differs from evaluate on this compiled model, or None when it does not."""
    from lossaudit.keras.predict import predict_and_evaluate

    predictions, one_pass = predict_and_evaluate(model, x, y, batch_size=BATCH)
    expected = _evaluate(model, x, y)
    if not np.allclose(predictions, np.asarray(model(x, training=False)), rtol=0, atol=1e-6):
        return f"{name}: predictions differ from the model's outputs"
    if isinstance(expected, str):
        return None if one_pass.error is not None else f"{name}: evaluate refused ({expected}), one pass ran"
    if one_pass.error is not None:
        return f"{name}: one pass refused ({one_pass.error}), evaluate gave {expected}"
    if set(one_pass.values) != set(expected):
        return f"{name}: names {sorted(one_pass.values)} vs evaluate's {sorted(expected)}"
    off = {
        k: (one_pass.values[k], v)
        for k, v in expected.items()
        if not np.isclose(one_pass.values[k], v, rtol=RTOL, atol=0)
    }
    return f"{name}: values differ (one pass, evaluate): {off}" if off else None


def test_regularisation_dropout_and_stateful_metrics_match_evaluate() -> None:
    import keras

    keras.utils.set_random_seed(0)
    x = _x()
    one_hot = np.eye(3)[np.arange(ROWS) % 3]  # float64: fed as float32, as evaluate feeds it
    model = keras.Sequential(
        [
            keras.Input((N_FEATURES,)),
            keras.layers.Dense(8, activation="relu", kernel_regularizer="l2", activity_regularizer="l1"),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        loss="categorical_crossentropy",
        metrics=[
            "accuracy",
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(thresholds=0.3),
            keras.metrics.TopKCategoricalAccuracy(k=2),
            "mse",
        ],
    )
    assert model.losses  # the regularisation terms evaluate adds to the loss
    problems = [_disagreement("keras3 one-hot", model, x, one_hot)]
    summed = keras.losses.CategoricalCrossentropy(reduction="sum")  # a per-batch sum: batches matter
    model.compile(loss=summed, metrics=["accuracy"])
    problems.append(_disagreement("keras3 sum reduction", model, x, one_hot))
    assert not [p for p in problems if p], problems


def test_tf_keras_one_pass_equals_its_evaluate() -> None:
    tf_keras = pytest.importorskip("tf_keras")

    tf_keras.utils.set_random_seed(0)
    x = _x()
    index = np.arange(ROWS) % 3
    model = tf_keras.Sequential(
        [
            tf_keras.Input((N_FEATURES,)),
            tf_keras.layers.Dense(8, activation="relu", kernel_regularizer="l2"),
            tf_keras.layers.Dropout(0.5),
            tf_keras.layers.Dense(3),
            tf_keras.layers.Softmax(),
        ]
    )
    model.compile(loss="categorical_crossentropy", metrics=["accuracy", tf_keras.metrics.AUC(name="auc")])
    problems = [_disagreement("tf_keras one-hot", model, x, np.eye(3)[index])]
    problems.append(_disagreement("tf_keras index labels (refused)", model, x, index))
    assert not [p for p in problems if p], problems
