"""A constant for the classes, an activation given as a function, label smoothing."""

import numpy as np
import tensorflow as tf

NUM_CLASSES = 4
y = np.load("y.npy")
y_onehot = tf.keras.utils.to_categorical(y, NUM_CLASSES)

model = tf.keras.Sequential(
    [
        tf.keras.layers.Dense(64, activation=tf.nn.relu),
        tf.keras.layers.Dense(NUM_CLASSES, activation=tf.nn.softmax),
    ]
)
model.compile(
    optimizer="adam",
    loss=tf.keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
    metrics=["accuracy"],
)
model.fit(np.load("x.npy"), y_onehot, epochs=10)
