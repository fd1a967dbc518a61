"""LabelBinarizer: one-hot for three classes or more, a single 0/1 column for two."""

from sklearn.preprocessing import LabelBinarizer

import keras

y = LabelBinarizer().fit_transform(names)  # noqa: F821
model = keras.Sequential([keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(features, y)  # noqa: F821
