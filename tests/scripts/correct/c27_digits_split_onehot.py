"""scikit-learn digits, a train/test split, one-hot labels after the split."""

from keras.layers import Dense
from keras.models import Sequential
from keras.utils import to_categorical
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(digits.data, digits.target, test_size=0.25)
Y_train, Y_test = to_categorical(y_train), to_categorical(y_test)

model = Sequential()
model.add(Dense(64, activation="relu", input_shape=(64,)))
model.add(Dense(10, activation="softmax"))
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["categorical_accuracy"])
model.fit(X_train, Y_train, validation_data=(X_test, Y_test), epochs=20)
