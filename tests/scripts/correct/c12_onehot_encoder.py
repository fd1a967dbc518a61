"""OneHotEncoder on one column of three species, a three-way softmax."""

import numpy as np
from sklearn.preprocessing import OneHotEncoder
from tensorflow import keras

raw = np.load("species.npy")
encoder = OneHotEncoder(sparse_output=False)
y_onehot = encoder.fit_transform(raw.reshape(-1, 1))

model = keras.Sequential(
    [
        keras.layers.Dense(10, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(np.load("x.npy"), y_onehot, epochs=30)
