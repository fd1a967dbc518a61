"""Two models in one file: a binary one and a multiclass one."""

import keras

binary = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
binary.compile(
    optimizer="adam", loss=keras.losses.binary_crossentropy, metrics=[keras.metrics.binary_accuracy]
)

multi = keras.Sequential([keras.layers.Dense(12, activation="softmax")])
multi.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["acc"])
