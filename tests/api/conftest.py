"""What the Python API's tests share: one tiny Keras classifier trained once (iris, 2 epochs), saved
with its eval data, and an MLflow store per test module copied from the migrated empty database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.mlflow.conftest import copy_store, migrated_empty_db  # noqa: F401  (a fixture)


@dataclass(frozen=True)
class IrisCase:
    """A trained ``Dense(3, softmax)`` model in memory, the same model saved, and its eval data."""

    model: Any
    path: Path
    data: Path
    x: np.ndarray
    y: np.ndarray


@pytest.fixture(scope="session")
def iris_case(tmp_path_factory: pytest.TempPathFactory) -> IrisCase:
    from sklearn.datasets import load_iris

    import keras

    x, y = load_iris(return_X_y=True)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")], name="iris")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("api_models")
    model.save(folder / "iris.keras")
    np.savez(folder / "iris.npz", x=x, y=y.astype(np.int64))
    return IrisCase(model, folder / "iris.keras", folder / "iris.npz", x, y.astype(np.int64))


@pytest.fixture(scope="module")
def mlflow_store(migrated_empty_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    """This module's own SQLite store, as MLFLOW_TRACKING_URI and mlflow's tracking URI."""
    import mlflow

    uri = copy_store(migrated_empty_db, tmp_path_factory.mktemp("api_store"))
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        mlflow.set_tracking_uri(None)
