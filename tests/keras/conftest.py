"""Tiny Keras models saved to a session temp folder, with the eval data they are audited on.

Each fixture trains a one-layer Dense model for a few epochs on scikit-learn's breast_cancer (569
samples, 30 features) or digits (1797 samples, 64 features) with a fixed seed, saves it as
``.keras`` and the data as ``.npz`` (arrays ``x`` and ``y``). They are session-scoped: a model is
trained once however many tests audit it. Keras is imported inside the fixtures, so tests in this
folder that need no Keras (the static reader's) never pay for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SEED = 0


@dataclass(frozen=True)
class SavedCase:
    """A saved model and the eval data file to audit it on (the same arrays as ``x`` and ``y``)."""

    model: Path
    data: Path
    x: np.ndarray
    y: np.ndarray


def _cancer(scaled: bool) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    if scaled:
        x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x.astype(np.float32), y.astype(np.int64)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y.astype(np.int64)


def train_and_save(
    folder: Path,
    name: str,
    layers: Callable[[Any], list[Any]],
    *,
    loss: Any,
    metrics: list[Any],
    optimizer: str,
    x: np.ndarray,
    y_fit: np.ndarray,
    y_eval: np.ndarray,
    epochs: int,
    learning_rate: float | None = None,
) -> SavedCase:
    """Build ``keras.Sequential(layers(keras))`` with a fixed seed, fit, save model and eval data."""
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(layers(keras))
    opt = keras.optimizers.get(optimizer)
    if learning_rate is not None:
        opt.learning_rate = learning_rate
    model.compile(optimizer=opt, loss=loss, metrics=metrics)
    model.fit(x, y_fit, epochs=epochs, batch_size=32, verbose=0)
    model_path = folder / f"{name}.keras"
    data_path = folder / f"{name}.npz"
    model.save(model_path)
    np.savez(data_path, x=x, y=y_eval)
    return SavedCase(model_path, data_path, x, y_eval)


@pytest.fixture(scope="session")
def keras_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keras_models")


@pytest.fixture(scope="session")
def one_unit_cce_case(keras_models_dir: Path) -> SavedCase:
    """Dense(1, sigmoid) + categorical_crossentropy on raw breast_cancer features (LA101).

    Keras divides the single output by its sum (p / p = 1), so the loss carries no information;
    with SGD on the unscaled features the model ends up predicting class 0 for every sample (LA501).
    """
    x, y = _cancer(scaled=False)
    return train_and_save(
        keras_models_dir,
        "one_unit_cce",
        lambda k: [k.Input((30,)), k.layers.Dense(1, activation="sigmoid")],
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        optimizer="sgd",
        x=x,
        y_fit=y.reshape(-1, 1).astype(np.float32),
        y_eval=y,
        epochs=3,
    )


@pytest.fixture(scope="session")
def one_unit_bce_case(keras_models_dir: Path) -> SavedCase:
    """Dense(1, sigmoid) + binary_crossentropy + 'accuracy' on standardised breast_cancer: correct."""
    x, y = _cancer(scaled=True)
    return train_and_save(
        keras_models_dir,
        "one_unit_bce",
        lambda k: [k.Input((30,)), k.layers.Dense(1, activation="sigmoid")],
        loss="binary_crossentropy",
        metrics=["accuracy"],
        optimizer="adam",
        x=x,
        y_fit=y.astype(np.float32),
        y_eval=y,
        epochs=5,
        learning_rate=0.02,
    )


@pytest.fixture(scope="session")
def softmax_bce_digits_case(keras_models_dir: Path) -> SavedCase:
    """Dense(10, softmax) + binary_crossentropy + 'accuracy' on one-hot digits (LA103, the seed)."""
    x, y = _digits()
    onehot = np.eye(10, dtype=np.float32)[y]
    return train_and_save(
        keras_models_dir,
        "softmax_bce_digits",
        lambda k: [k.Input((64,)), k.layers.Dense(10, activation="softmax")],
        loss="binary_crossentropy",
        metrics=["accuracy"],
        optimizer="adam",
        x=x,
        y_fit=onehot,
        y_eval=onehot,
        epochs=3,
    )


@pytest.fixture(scope="session")
def softmax_cce_index_labels_case(keras_models_dir: Path) -> SavedCase:
    """Dense(10, softmax) + categorical_crossentropy trained on one-hot digits, audited on the
    integer labels: Keras 3's evaluate refuses them ("must have the same rank"), LA201 explains."""
    x, y = _digits()
    return train_and_save(
        keras_models_dir,
        "softmax_cce_index_labels",
        lambda k: [k.Input((64,)), k.layers.Dense(10, activation="softmax")],
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        optimizer="adam",
        x=x,
        y_fit=np.eye(10, dtype=np.float32)[y],
        y_eval=y,
        epochs=2,
    )


@pytest.fixture(scope="session")
def lambda_case(keras_models_dir: Path) -> SavedCase:
    """A correct binary model with a ``Lambda(lambda t: t * 0.5)`` layer before its Dense head."""
    x, y = _cancer(scaled=True)
    return train_and_save(
        keras_models_dir,
        "with_lambda",
        lambda k: [
            k.Input((30,)),
            k.layers.Lambda(lambda t: t * 0.5, name="halve"),
            k.layers.Dense(1, activation="sigmoid"),
        ],
        loss="binary_crossentropy",
        metrics=["accuracy"],
        optimizer="adam",
        x=x,
        y_fit=y.astype(np.float32),
        y_eval=y,
        epochs=3,
        learning_rate=0.02,
    )


@pytest.fixture(scope="session")
def truncated_model(keras_models_dir: Path, one_unit_bce_case: SavedCase) -> Path:
    """The first half of a valid ``.keras`` file."""
    data = one_unit_bce_case.model.read_bytes()
    path = keras_models_dir / "truncated.keras"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture(scope="session")
def own_predictions() -> Callable[[SavedCase], np.ndarray]:
    """The saved model's own outputs on its eval data, computed with Keras alone (no lossaudit)."""

    def predict(case: SavedCase) -> np.ndarray:
        import keras

        model = keras.saving.load_model(case.model, safe_mode=False)
        return np.asarray(model.predict(case.x, batch_size=256, verbose=0), dtype=np.float64)

    return predict
