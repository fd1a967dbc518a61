"""tf_keras (Keras 2 as a package), iris class indices, sparse loss."""

import tf_keras as keras
from sklearn.datasets import load_iris

X, y = load_iris(return_X_y=True)
model = keras.Sequential(
    [keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3, activation="softmax")]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(X, y, epochs=50)
