"""A digits classifier with two mistakes lossaudit finds before anything is trained.

    lossaudit check examples/scripts/

flags the compile (a linear head, yet the loss expects probabilities) and the binary model's
single softmax unit; each finding prints the line rewritten with the fix. Lines ending with
``# expect:`` say what lossaudit reports there (the test suite holds it to them).
"""

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
digits.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])  # expect: LA302
digits.fit(X_train, y_train, epochs=20, validation_data=(X_test, y_test))

# Is it a zero? One output unit, but a softmax over one unit is always 1.0.
is_zero = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(1, activation="softmax")])  # expect: LA102
is_zero.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
is_zero.fit(X_train, (y_train == 0).astype("float32"), epochs=20)
