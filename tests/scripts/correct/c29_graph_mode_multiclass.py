"""TF1 graph mode, a softmax head and categorical cross-entropy: the legacy rule is right here."""

import tensorflow as tf

tf.compat.v1.disable_eager_execution()
model = tf.keras.Sequential([tf.keras.layers.Dense(10, activation="softmax", input_shape=(64,))])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
