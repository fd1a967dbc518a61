"""The loss comes from the command line."""

import argparse

from tensorflow import keras

parser = argparse.ArgumentParser()
parser.add_argument("--loss", default="categorical_crossentropy")
args = parser.parse_args()
model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss=args.loss, metrics=["accuracy"])
