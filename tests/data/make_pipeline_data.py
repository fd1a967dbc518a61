"""Regenerate tests/data/pipelines/: the small correct model pipelines/ci.yaml audits by default.

    python tests/data/make_pipeline_data.py

An iris classifier (4 features, 3 classes): Dense(8, relu) -> Dense(3, softmax), trained with
sparse_categorical_crossentropy and metrics=['accuracy'] on a stratified 70 % split, seed 0; the
other 30 % is saved as the eval set (x float32, y int64 class indices).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import keras

OUT = Path(__file__).resolve().parent / "pipelines"


def main() -> None:
    x, y = load_iris(return_X_y=True)
    x_train, x_eval, y_train, y_eval = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    scaler = StandardScaler().fit(x_train)
    x_train = scaler.transform(x_train).astype("float32")
    x_eval = scaler.transform(x_eval).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=30, batch_size=16, verbose=0)
    OUT.mkdir(exist_ok=True)
    model.save(OUT / "iris_softmax_sparse.keras")
    np.savez(OUT / "iris_eval.npz", x=x_eval, y=y_eval.astype("int64"))
    accuracy = float((model.predict(x_eval, verbose=0).argmax(axis=1) == y_eval).mean())
    print(f"eval accuracy {accuracy:.4f} on {len(y_eval)} samples; files in {OUT}")


if __name__ == "__main__":
    main()
