"""The same two models, right: lossaudit check passes this file."""

import keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)

digits = keras.Sequential(
    [
        keras.Input(shape=(64,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ]
)
digits.compile(
    optimizer="adam",
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
digits.fit(X_train, y_train, epochs=20, validation_data=(X_test, y_test))

is_zero = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(1, activation="sigmoid")])
is_zero.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
is_zero.fit(X_train, (y_train == 0).astype("float32"), epochs=20)
