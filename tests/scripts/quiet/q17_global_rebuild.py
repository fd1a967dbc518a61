"""A function rebinds the module's model through `global`: the compile is the new model's."""

import keras

model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])  # a placeholder


def rebuild(classes):
    global model
    model = keras.Sequential([keras.layers.Dense(classes, activation="softmax")])


rebuild(3)
model.compile(optimizer="adam", loss="categorical_crossentropy")
