"""An autoencoder: sigmoid reconstructions with mean squared error (not a classifier)."""

from tensorflow import keras

inputs = keras.Input(shape=(784,))
encoded = keras.layers.Dense(32, activation="relu")(inputs)
decoded = keras.layers.Dense(784, activation="sigmoid")(encoded)
autoencoder = keras.Model(inputs, decoded)
autoencoder.compile(optimizer="adam", loss="mse")
