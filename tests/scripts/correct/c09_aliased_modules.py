"""Module aliases: layers as L, models as M, losses imported by name."""

from tensorflow.keras import layers as L
from tensorflow.keras import models as M
from tensorflow.keras.losses import CategoricalCrossentropy

net = M.Sequential()
net.add(L.Dense(32, activation="tanh"))
net.add(L.Dense(4, activation="softmax"))
net.compile(loss=CategoricalCrossentropy(), optimizer="rmsprop", metrics=["categorical_accuracy"])
