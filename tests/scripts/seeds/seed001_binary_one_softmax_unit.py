"""Seed 001: a binary classifier whose single output unit goes through softmax.

With binary_crossentropy the author got close-to-random accuracy; with two outputs and
categorical_crossentropy, 90% after one epoch. A softmax over one unit is exp(z)/exp(z) = 1.0 for
every input: the prediction never changes.
"""

import numpy as np
from tensorflow import keras
from tensorflow.keras import layers

features = np.load("features.npy")
labels = np.load("labels.npy")  # 0 or 1 per sample

model = keras.Sequential()
model.add(layers.Dense(64, activation="relu", input_shape=(features.shape[1],)))
model.add(layers.Dense(32, activation="relu"))
model.add(layers.Dense(1, activation="softmax"))  # expect: LA102
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(features, labels, epochs=5, batch_size=32, validation_split=0.2)
