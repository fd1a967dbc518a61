"""Multi-label tags: MultiLabelBinarizer, independent sigmoids, binary cross-entropy."""

from sklearn.preprocessing import MultiLabelBinarizer

import keras

tags = [["news", "sport"], ["sport"], ["tech", "news"]]
binarizer = MultiLabelBinarizer()
y = binarizer.fit_transform(tags)

model = keras.Sequential(
    [
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(3, activation="sigmoid"),
    ]
)
model.compile(
    optimizer="adam",
    loss="binary_crossentropy",
    metrics=[keras.metrics.BinaryAccuracy(), keras.metrics.AUC(multi_label=True)],
)
model.fit(features, y, epochs=10)  # noqa: F821
