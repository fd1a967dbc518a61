"""Everything in main(), run under the main guard."""

import argparse

import keras


def train(epochs):
    (x_train, y_train), _ = keras.datasets.fashion_mnist.load_data()
    model = keras.Sequential(
        [
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs)
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    train(args.epochs)


if __name__ == "__main__":
    main()
