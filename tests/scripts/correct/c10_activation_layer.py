"""A linear Dense followed by an Activation layer, one-hot labels from pandas."""

import pandas as pd
from keras.layers import Activation, Dense
from keras.models import Sequential

frame = pd.read_csv("flowers.csv")
targets = pd.get_dummies(frame["species"]).values

model = Sequential()
model.add(Dense(32, input_dim=4))
model.add(Activation("relu"))
model.add(Dense(3))
model.add(Activation("softmax"))
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(frame.drop(columns=["species"]).values, targets, epochs=100)
