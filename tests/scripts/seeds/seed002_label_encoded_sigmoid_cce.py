"""Seed 002: one 0/1 output column, a sigmoid unit, and categorical cross-entropy.

The author label-encoded a binary target (y_train of shape (n, 1)) and saw 26% accuracy with
categorical_crossentropy, 98% with binary_crossentropy. With one output unit categorical
cross-entropy is -y log p: nothing penalises p = 1 on the negatives, and Keras reads the loss as 0.
"""

import pandas as pd
from keras.layers import LSTM, Dense
from keras.models import Sequential
from sklearn.preprocessing import LabelEncoder

frame = pd.read_csv("events.csv")
encoder = LabelEncoder()
y_train = encoder.fit_transform(frame["outcome"])
X_train = frame.drop(columns=["outcome"]).to_numpy().reshape(-1, 5, 10)

n_outputs = 1

model = Sequential()
model.add(LSTM(256, input_shape=(5, 10)))
model.add(Dense(n_outputs, activation="sigmoid"))
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])  # expect: LA101
model.fit(X_train, y_train, epochs=3, batch_size=512)
