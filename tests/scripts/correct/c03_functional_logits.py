"""Functional API, a linear head and a loss that takes logits."""

import keras

num_classes = 5
inputs = keras.Input(shape=(32,))
x = keras.layers.Dense(64, activation="relu")(inputs)
x = keras.layers.BatchNormalization()(x)
logits = keras.layers.Dense(num_classes)(x)
model = keras.Model(inputs=inputs, outputs=logits)
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=[keras.metrics.SparseCategoricalAccuracy()],
)
