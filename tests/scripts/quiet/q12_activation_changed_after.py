"""The last layer's activation is set after the model is built."""

import keras

model = keras.Sequential([keras.layers.Dense(10)])
model.layers[-1].activation = keras.activations.softmax
model.compile(optimizer="adam", loss="categorical_crossentropy")
