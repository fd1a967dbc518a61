"""A custom loss function: its meaning is unknown, and only the layers are judged."""

import keras
from keras import ops


def focal(y_true, y_pred, gamma=2.0):
    p = ops.sum(y_true * y_pred, axis=-1)
    return -ops.power(1.0 - p, gamma) * ops.log(p)


model = keras.Sequential(
    [keras.layers.Dense(32, activation="relu"), keras.layers.Dense(8, activation="softmax")]
)
model.compile(optimizer="adam", loss=focal, metrics=["accuracy"])
