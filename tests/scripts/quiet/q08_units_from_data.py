"""The number of classes is counted in the data: two classes are possible, so is ten."""

import numpy as np
from tensorflow import keras

y = np.load("y.npy")
model = keras.Sequential([keras.layers.Dense(len(np.unique(y)), activation="softmax")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
