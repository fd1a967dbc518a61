"""The loss depends on a flag."""

import sys

import keras

multilabel = "--multilabel" in sys.argv
if multilabel:  # noqa: SIM108
    loss = "binary_crossentropy"
else:
    loss = "categorical_crossentropy"
model = keras.Sequential([keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
