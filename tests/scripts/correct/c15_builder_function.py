"""A builder function called with the number of classes; compiled at the top level."""

import keras


def build_model(num_classes, hidden=64):
    model = keras.Sequential()
    model.add(keras.layers.Dense(hidden, activation="relu"))
    model.add(keras.layers.Dense(num_classes, activation="softmax"))
    return model


model = build_model(10)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
