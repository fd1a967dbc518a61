"""Seed 003: MNIST with Keras 1, binary cross-entropy and metrics=['accuracy'].

binary_crossentropy "consistently outperformed" categorical_crossentropy on Kaggle: 99.8% against
97%. Old Keras picked the accuracy function from the loss, so 'accuracy' was elementwise binary
accuracy over the ten outputs; computed by hand (argmax), the accuracy was 99.0%.
"""

from keras.datasets import mnist
from keras.layers import Convolution2D, Dense, Dropout, Flatten, MaxPooling2D
from keras.models import Sequential
from keras.utils import np_utils

(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255
x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255
Y_train = np_utils.to_categorical(y_train, 10)
Y_test = np_utils.to_categorical(y_test, 10)

model = Sequential()
model.add(
    Convolution2D(
        100, 5, 5, border_mode="valid", input_shape=(28, 28, 1), init="glorot_uniform", activation="relu"
    )
)
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Convolution2D(100, 3, 3, init="glorot_uniform", activation="relu"))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Dropout(0.3))
model.add(Flatten())
model.add(Dense(100, init="glorot_uniform", activation="relu"))
model.add(Dropout(0.3))
model.add(Dense(100, init="glorot_uniform", activation="relu"))
model.add(Dropout(0.3))
model.add(Dense(10, init="glorot_uniform", activation="softmax"))
model.compile(loss="binary_crossentropy", optimizer="adamax", metrics=["accuracy"])  # expect: LA103 LA401
model.fit(x_train, Y_train, nb_epoch=10, batch_size=128)
score = model.evaluate(x_test, Y_test, verbose=0)
print("reported accuracy", score[1])
