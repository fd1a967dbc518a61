"""A helper from another module adds the head."""

from heads import add_classifier_head

import keras

model = keras.Sequential([keras.layers.Dense(64, activation="relu")])
add_classifier_head(model, classes=10)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
