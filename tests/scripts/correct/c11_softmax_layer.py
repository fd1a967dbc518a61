"""A Softmax layer after a linear head, integer labels from a LabelEncoder."""

from sklearn.preprocessing import LabelEncoder

import keras

names = ["a", "b", "c", "d", "e"] * 20
y = LabelEncoder().fit_transform(names)
model = keras.Sequential(
    [keras.layers.Dense(8, activation="relu"), keras.layers.Dense(5), keras.layers.Softmax()]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(features, y)  # noqa: F821
