"""Two outputs with a loss each: lossaudit judges single-output heads only."""

import keras

inputs = keras.Input(shape=(16,))
hidden = keras.layers.Dense(32, activation="relu")(inputs)
kind = keras.layers.Dense(1, activation="softmax", name="kind")(hidden)
size = keras.layers.Dense(1, name="size")(hidden)
model = keras.Model(inputs, [kind, size])
model.compile(optimizer="adam", loss={"kind": "binary_crossentropy", "size": "mse"})
