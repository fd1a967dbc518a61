"""A hyper-parameter loop over losses."""

from tensorflow import keras

model = keras.Sequential([keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="categorical_crossentropy")
for loss in ["categorical_crossentropy", "binary_crossentropy"]:
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    model.fit(x, y)  # noqa: F821
