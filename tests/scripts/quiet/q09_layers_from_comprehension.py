"""The layers come from a comprehension."""

import keras

sizes = [128, 64]
model = keras.Sequential(
    [keras.layers.Dense(s, activation="relu") for s in sizes] + [keras.layers.Dense(1, activation="softmax")]
)
model.compile(optimizer="adam", loss="binary_crossentropy")
