"""Keras 1 API, done right: categorical cross-entropy, so 'accuracy' is categorical accuracy."""

from keras.layers import Dense
from keras.models import Sequential
from keras.utils import np_utils

Y = np_utils.to_categorical(labels, 10)  # noqa: F821
model = Sequential()
model.add(Dense(512, input_dim=784, init="uniform", activation="relu"))
model.add(Dense(10, init="uniform", activation="softmax"))
model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
model.fit(images, Y, nb_epoch=20)  # noqa: F821
