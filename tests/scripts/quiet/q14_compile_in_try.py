"""Compiled inside try/except, with a fallback."""

import keras

model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
try:
    model.compile(optimizer="adam", loss=keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True))
except TypeError:
    model.compile(optimizer="adam", loss="categorical_crossentropy")
