"""The head is added in a loop: lossaudit does not follow loops."""

import keras

model = keras.Sequential()
for units, activation in [(64, "relu"), (1, "softmax")]:
    model.add(keras.layers.Dense(units, activation=activation))
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
