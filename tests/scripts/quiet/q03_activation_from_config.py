"""The activation comes from a configuration file."""

import json

import keras

with open("config.json") as handle:
    config = json.load(handle)
model = keras.Sequential([keras.layers.Dense(1, activation=config["activation"])])
model.compile(optimizer="adam", loss="categorical_crossentropy")
