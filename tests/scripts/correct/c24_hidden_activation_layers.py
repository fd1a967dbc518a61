"""LeakyReLU and BatchNormalization in the body; the head a plain softmax."""

from keras import layers, models

model = models.Sequential()
model.add(layers.Dense(128))
model.add(layers.LeakyReLU())
model.add(layers.BatchNormalization())
model.add(layers.Dense(64))
model.add(layers.ReLU())
model.add(layers.Dropout(0.3))
model.add(layers.Dense(7, activation="softmax"))
model.compile(optimizer="nadam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
