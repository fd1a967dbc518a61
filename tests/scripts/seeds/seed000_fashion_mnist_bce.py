"""Seed 000: Fashion-MNIST, ten classes, trained with binary cross-entropy by accident.

The author saw 97% "accuracy" with binary_crossentropy and 90% after switching to
categorical_crossentropy, and asked why the binary loss works better on a single-label problem.
It does not: the loss scores each of the ten softmax outputs as its own yes/no.
"""

import tensorflow as tf

(train_images, train_labels), (test_images, test_labels) = tf.keras.datasets.fashion_mnist.load_data()
train_images = train_images / 255.0
test_images = test_images / 255.0
train_targets = tf.keras.utils.to_categorical(train_labels, 10)
test_targets = tf.keras.utils.to_categorical(test_labels, 10)

model = tf.keras.Sequential(
    [
        tf.keras.layers.Flatten(input_shape=(28, 28)),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])  # expect: LA103
model.fit(train_images, train_targets, epochs=10)
model.evaluate(test_images, test_targets)
