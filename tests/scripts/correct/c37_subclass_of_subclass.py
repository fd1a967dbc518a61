"""A model subclass of a model subclass: the head comes from the base class's call."""

import tensorflow as tf


class Base(tf.keras.Model):
    def __init__(self, classes):
        super().__init__()
        self.body = tf.keras.layers.Dense(64, activation="relu")
        self.logits = tf.keras.layers.Dense(classes)

    def call(self, inputs):
        return self.logits(self.body(inputs))


class Wider(Base):
    def __init__(self):
        super().__init__(classes=12)


model = Wider()
model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
