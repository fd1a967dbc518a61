"""A Lambda layer makes the output: what it computes is unknown."""

import keras
from keras import ops

model = keras.Sequential(
    [
        keras.layers.Dense(10),
        keras.layers.Lambda(lambda z: ops.exp(z) / ops.sum(ops.exp(z), axis=-1, keepdims=True)),
    ]
)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
