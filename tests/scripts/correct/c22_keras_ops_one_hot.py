"""Keras 3: keras.ops.one_hot for the labels."""

import numpy as np

import keras

y = keras.ops.one_hot(np.load("y.npy"), 3)
model = keras.Sequential([keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["categorical_accuracy"])
model.fit(np.load("x.npy"), y)
