"""The number of units from len(classes); the activation as the second positional argument."""

from keras.layers import Dense
from keras.models import Sequential

classes = ["cat", "dog", "bird"]
model = Sequential([Dense(32, "relu"), Dense(len(classes), "softmax")])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
