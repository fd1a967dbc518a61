"""Transfer learning: a pretrained base, pooling, a new softmax head, images from folders."""

import keras

base = keras.applications.MobileNetV2(input_shape=(160, 160, 3), include_top=False, weights="imagenet")
base.trainable = False
inputs = keras.Input(shape=(160, 160, 3))
x = base(inputs, training=False)
x = keras.layers.GlobalAveragePooling2D()(x)
x = keras.layers.Dropout(0.2)(x)
outputs = keras.layers.Dense(5, activation="softmax")(x)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
train_ds = keras.utils.image_dataset_from_directory("flowers/", image_size=(160, 160))
model.fit(train_ds, epochs=5)
