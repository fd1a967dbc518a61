"""A layer list built with append, then handed to Sequential."""

import keras

stack = [keras.layers.Dense(64, activation="relu")]
stack.append(keras.layers.Dense(32, activation="relu"))
stack.append(keras.layers.Dense(3, activation="softmax"))
model = keras.Sequential(stack)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["categorical_accuracy"])
