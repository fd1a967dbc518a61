"""Seed 004: the same LSTM, built once per loss the author tried.

n_outputs is 1 and the output a sigmoid. binary_crossentropy gave 98%; categorical_crossentropy
gave 26% and a model that predicts one class. The loss is passed to the builder: the finding is on
the compile inside it, for the call that passes categorical_crossentropy.
"""

import numpy as np
from tensorflow.keras.layers import LSTM, Dense
from tensorflow.keras.models import Sequential

X_train = np.load("x_train.npy")  # (430000, 5, 10)
y_train = np.load("y_train.npy")  # (430000, 1), 0 or 1
n_timesteps, n_features, n_outputs = X_train.shape[1], X_train.shape[2], 1


def build_model(loss):
    model = Sequential()
    model.add(LSTM(256, input_shape=(n_timesteps, n_features), recurrent_activation="hard_sigmoid"))
    model.add(Dense(16))
    model.add(Dense(n_outputs, activation="sigmoid"))
    model.compile(loss=loss, optimizer="adam", metrics=["accuracy"])  # expect: LA101
    return model


working = build_model("binary_crossentropy")
working.fit(X_train, y_train, epochs=3)
broken = build_model("categorical_crossentropy")
broken.fit(X_train, y_train, epochs=3)
