"""Reuters newswires: 46 topics as indices, a 46-way softmax."""

import keras

(x_train, y_train), (x_test, y_test) = keras.datasets.reuters.load_data(num_words=10000)
model = keras.Sequential(
    [keras.layers.Dense(64, activation="relu"), keras.layers.Dense(46, activation="softmax")]
)
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=9)
