"""tf.one_hot labels, a linear head, categorical cross-entropy from logits."""

import tensorflow as tf

labels = tf.one_hot(tf.constant([0, 3, 9]), depth=10)
model = tf.keras.Sequential([tf.keras.layers.Dense(10)])
model.compile(
    optimizer="adam", loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
)
model.fit(tf.random.normal((3, 4)), labels)
