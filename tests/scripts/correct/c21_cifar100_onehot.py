"""CIFAR-100 fine labels, one-hot, categorical cross-entropy."""

import keras

(x_train, y_train), (x_test, y_test) = keras.datasets.cifar100.load_data(label_mode="fine")
y_train = keras.utils.to_categorical(y_train)
model = keras.Sequential(
    [
        keras.layers.Flatten(),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dense(100, activation="softmax"),
    ]
)
model.compile(
    optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy", "top_k_categorical_accuracy"]
)
model.fit(x_train, y_train, epochs=2)
