"""A fully convolutional head: no Dense layer gives the units."""

import keras

model = keras.Sequential(
    [keras.layers.Conv2D(10, 1), keras.layers.GlobalAveragePooling2D(), keras.layers.Softmax()]
)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
