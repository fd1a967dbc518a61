"""Regenerate the saved-model fixtures in tests/data/models/ (read by tests/keras/test_static.py and
tests/keras/test_hdf5.py).

Run from the repository root, in the project's venv (Keras 3 and tf-keras installed; run.sh setup
installs tf-keras with ``pip install --no-deps "tf-keras>=2.20,<2.22"``)::

    python tests/data/make_models.py            # every fixture
    python tests/data/make_models.py tf_nn      # only some groups: keras3, tf_keras, keras224, tf_nn

What it writes (every model takes 4 input features; each file is 7-25 KB, most of
it HDF5 bookkeeping; weights are untrained, from a fixed seed: the static reader only reads
configs):

=================================  ===========================================================
sigmoid1_cce.keras                 Dense(1, sigmoid) + categorical_crossentropy (LA101)
softmax10_cce_accuracy.keras       Dense(10, softmax) + categorical_crossentropy + 'accuracy'
softmax10_bce_accuracy.keras       Dense(10, softmax) + binary_crossentropy + 'accuracy' (the seed)
double_softmax.keras               Dense(10, softmax) + Softmax() layer
nested_sequential.keras            Sequential[Sequential[Dense(8, relu), Dense(10, softmax)],
                                   Dropout] + CategoricalCrossentropy(label_smoothing=0.1)
functional_activation.keras        Functional: Dense(10) -> Activation('softmax')
linear_sparse_logits.keras         Dense(10) + SparseCategoricalCrossentropy(from_logits=True)
                                   + SparseCategoricalAccuracy()
lambda_head.keras                  Dense(3, softmax) -> Lambda (see below)
uncompiled.keras                   Dense(3, sigmoid), never compiled
multi_output.keras                 Functional with two outputs (read as "not supported yet")
truncated.keras                    the first half of softmax10_cce_accuracy.keras
keras3_functional.h5               Keras 3 legacy-format .h5: Dense(10) -> Activation('softmax')
                                   + categorical_crossentropy + 'accuracy'
tf_keras_bce_softmax.h5            tf-keras 2.21 .h5: Dense(10, softmax) + binary_crossentropy
                                   + 'accuracy'
tf_keras_functional.h5             tf-keras 2.21 .h5, Keras 2 functional config format:
                                   Dense(10) -> Activation('softmax') + categorical_crossentropy
tf_keras_tfop_softmax.h5           tf-keras 2.21 .h5: Dense(10) -> tf.nn.softmax (a TFOpLambda layer)
keras224_bce_softmax.h5            tf_keras_bce_softmax.h5 relabelled as standalone Keras 2.2.4
=================================  ===========================================================

The ``tf_nn`` group: TensorFlow functions as activations (``activation=tf.nn.softmax``), saved as
each Keras serialises them (read by tests/keras/test_static.py and tests/keras/test_live.py):

=================================  ===========================================================
tf_keras_tfnn_softmax1.h5          tf-keras: Dense(1, activation=tf.nn.softmax)
                                   + binary_crossentropy (a function object) + 'accuracy' (LA102);
                                   tf-keras writes the activation as "softmax"
tf_keras_tfnn_softmax1.keras       the same, in tf-keras's .keras format
tf_keras_tfnn_softmax10.h5         tf-keras: Dense(10, activation=tf.nn.softmax)
                                   + categorical_crossentropy + 'accuracy' (a correct head)
tf_keras_tfnn_softmax10.keras      the same, in tf-keras's .keras format
tf_keras_tfop_softmax1.h5          tf-keras functional: Dense(1) -> tf.nn.softmax (a TFOpLambda
                                   "nn.softmax") + binary_crossentropy + 'accuracy' (LA102).
                                   Keras 3 cannot load it ("Unknown layer: 'TFOpLambda'"); tf_keras can
tf_keras_tfop_softmax1.keras       the same, in tf-keras's .keras format (Keras 3: "Could not locate
                                   class 'Functional'"); tf_keras loads it
tf_keras_log_softmax_v2.h5         tf-keras: Dense(3, activation=tf.nn.log_softmax), saved as the
                                   function "log_softmax_v2" + categorical_crossentropy. Neither
                                   Keras 3 nor tf_keras can load it back
keras3_tfnn_softmax1.keras         Keras 3: Dense(1, activation=tf.nn.softmax) + binary_crossentropy
                                   and binary_accuracy as function objects (LA102); saved as
                                   {"module": "builtins", "class_name": "function", "config":
                                   "softmax_v2"}, which Keras 3 cannot load back
keras3_tfnn_softmax1.h5            the same, in Keras 3's legacy .h5 format
keras3_tfnn_softmax10.keras        Keras 3: Dense(10, activation=tf.nn.softmax)
                                   + categorical_crossentropy + 'accuracy' (a correct head)
=================================  ===========================================================

keras224_bce_softmax.h5 is not written by Keras 2.2.4 (it does not install on Python 3.11): it is
a copy of tf_keras_bce_softmax.h5 whose root attributes are rewritten with h5py to what Keras 2.2.4
stored: ``keras_version`` b"2.2.4" as fixed-length bytes (as h5py 2.x wrote it) and a
``training_config`` in the 2.2.4 layout (``"metrics": ["accuracy"]``, ``sample_weight_mode``), so
the reader's legacy path and bytes attributes are exercised.

lambda_head.keras: the Lambda's function touches the file named by the environment variable
LOSSAUDIT_LAMBDA_SENTINEL when it runs (and does nothing else). The tests set that variable and
check that the static read leaves no file, while a live ``keras.saving.load_model(...,
safe_mode=False)``, which rebuilds the model and so calls the function, creates it. The function is
stored as marshalled Python 3.11 bytecode, so the live half of that test needs Python 3.11.

Regenerating changes the bytes (metadata.json holds the save date) but not what the tests read.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

OUT = Path(__file__).resolve().parent / "models"
N_FEATURES = 4
SEED = 0

# Keras 2.2.4's own training_config layout (keras/engine/saving.py, _serialize_model).
KERAS_224_TRAINING_CONFIG = {
    "optimizer_config": {
        "class_name": "Adam",
        "config": {
            "lr": 0.001,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "decay": 0.0,
            "epsilon": 1e-07,
            "amsgrad": False,
        },
    },
    "loss": "binary_crossentropy",
    "metrics": ["accuracy"],
    "weighted_metrics": None,
    "sample_weight_mode": None,
    "loss_weights": None,
}


def make_keras3() -> None:
    import keras
    from keras import layers

    def sequential(*stack: object) -> keras.Sequential:
        return keras.Sequential([keras.Input((N_FEATURES,)), *stack])

    def save(model: keras.Model, name: str) -> None:
        model.save(OUT / name)
        print(f"wrote {name} ({(OUT / name).stat().st_size} bytes)")

    keras.utils.set_random_seed(SEED)

    model = sequential(layers.Dense(1, activation="sigmoid"))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    save(model, "sigmoid1_cce.keras")

    model = sequential(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    save(model, "softmax10_cce_accuracy.keras")

    model = sequential(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    save(model, "softmax10_bce_accuracy.keras")

    model = sequential(layers.Dense(10, activation="softmax"), layers.Softmax())
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    save(model, "double_softmax.keras")

    inner = keras.Sequential(
        [
            keras.Input((N_FEATURES,)),
            layers.Dense(8, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="inner_classifier",
    )
    model = sequential(inner, layers.Dropout(0.1))
    model.compile(
        optimizer="adam",
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        metrics=["accuracy"],
    )
    save(model, "nested_sequential.keras")

    inputs = keras.Input((N_FEATURES,))
    logits = layers.Dense(10, name="logits")(inputs)
    outputs = layers.Activation("softmax", name="probabilities")(logits)
    functional = keras.Model(inputs, outputs)
    functional.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    save(functional, "functional_activation.keras")
    save(functional, "keras3_functional.h5")

    model = sequential(layers.Dense(10))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    save(model, "linear_sparse_logits.keras")

    # A lambda (not a def) so that Keras marshals its bytecode into config.json, as it does for
    # user lambdas. It imports what it uses itself: marshalled code gets no module globals.
    touch_sentinel = layers.Lambda(
        lambda t: (
            (
                __import__("pathlib").Path(__import__("os").environ["LOSSAUDIT_LAMBDA_SENTINEL"]).touch()
                if "LOSSAUDIT_LAMBDA_SENTINEL" in __import__("os").environ
                else None
            )
            or t
        ),
        name="rescale",
    )
    model = sequential(layers.Dense(3, activation="softmax"), touch_sentinel)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    save(model, "lambda_head.keras")

    save(sequential(layers.Dense(3, activation="sigmoid")), "uncompiled.keras")

    inputs = keras.Input((N_FEATURES,))
    is_spam = layers.Dense(1, activation="sigmoid", name="is_spam")(inputs)
    topic = layers.Dense(5, activation="softmax", name="topic")(inputs)
    two_heads = keras.Model(inputs, [is_spam, topic])
    two_heads.compile(optimizer="adam", loss=["binary_crossentropy", "categorical_crossentropy"])
    save(two_heads, "multi_output.keras")

    whole = (OUT / "softmax10_cce_accuracy.keras").read_bytes()
    (OUT / "truncated.keras").write_bytes(whole[: len(whole) // 2])
    print(f"wrote truncated.keras ({len(whole) // 2} of {len(whole)} bytes)")


def make_tf_keras() -> None:
    import tf_keras
    from tf_keras import layers

    tf_keras.utils.set_random_seed(SEED)
    model = tf_keras.Sequential([tf_keras.Input((N_FEATURES,)), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.save(OUT / "tf_keras_bce_softmax.h5")
    print("wrote tf_keras_bce_softmax.h5")

    inputs = tf_keras.Input((N_FEATURES,))
    logits = layers.Dense(10, name="logits")(inputs)
    outputs = layers.Activation("softmax", name="probabilities")(logits)
    functional = tf_keras.Model(inputs, outputs)
    functional.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    functional.save(OUT / "tf_keras_functional.h5")
    print("wrote tf_keras_functional.h5")

    import tensorflow as tf

    # A raw TF call on a Keras tensor: tf.keras records it as a TFOpLambda layer ("nn.softmax").
    logits = layers.Dense(10, name="logits")(inputs)
    functional = tf_keras.Model(inputs, tf.nn.softmax(logits))
    functional.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    functional.save(OUT / "tf_keras_tfop_softmax.h5")
    print("wrote tf_keras_tfop_softmax.h5")


def make_tf_nn() -> None:
    """TensorFlow functions as activations, as tf-keras and Keras 3 save them."""
    import tensorflow as tf
    import tf_keras

    import keras

    def tf_keras_save(model: tf_keras.Model, stem: str, *suffixes: str) -> None:
        for suffix in suffixes:
            model.save(OUT / f"{stem}{suffix}")
            print(f"wrote {stem}{suffix} ({(OUT / f'{stem}{suffix}').stat().st_size} bytes)")

    tf_keras.utils.set_random_seed(SEED)
    model = tf_keras.Sequential(
        [tf_keras.Input((N_FEATURES,)), tf_keras.layers.Dense(1, activation=tf.nn.softmax)]
    )
    model.compile(optimizer="adam", loss=tf_keras.losses.binary_crossentropy, metrics=["accuracy"])
    tf_keras_save(model, "tf_keras_tfnn_softmax1", ".h5", ".keras")

    model = tf_keras.Sequential(
        [tf_keras.Input((N_FEATURES,)), tf_keras.layers.Dense(10, activation=tf.nn.softmax)]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    tf_keras_save(model, "tf_keras_tfnn_softmax10", ".h5", ".keras")

    inputs = tf_keras.Input((N_FEATURES,))
    logit = tf_keras.layers.Dense(1, name="logit")(inputs)
    model = tf_keras.Model(inputs, tf.nn.softmax(logit))  # a TFOpLambda layer, "nn.softmax"
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    tf_keras_save(model, "tf_keras_tfop_softmax1", ".h5", ".keras")

    model = tf_keras.Sequential(
        [tf_keras.Input((N_FEATURES,)), tf_keras.layers.Dense(3, activation=tf.nn.log_softmax)]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    tf_keras_save(model, "tf_keras_log_softmax_v2", ".h5")

    keras.utils.set_random_seed(SEED)
    k3 = keras.Sequential([keras.Input((N_FEATURES,)), keras.layers.Dense(1, activation=tf.nn.softmax)])
    k3.compile(
        optimizer="adam", loss=keras.losses.binary_crossentropy, metrics=[keras.metrics.binary_accuracy]
    )
    for name in ("keras3_tfnn_softmax1.keras", "keras3_tfnn_softmax1.h5"):
        k3.save(OUT / name)
        print(f"wrote {name} ({(OUT / name).stat().st_size} bytes)")
    k3 = keras.Sequential([keras.Input((N_FEATURES,)), keras.layers.Dense(10, activation=tf.nn.softmax)])
    k3.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    k3.save(OUT / "keras3_tfnn_softmax10.keras")
    print(f"wrote keras3_tfnn_softmax10.keras ({(OUT / 'keras3_tfnn_softmax10.keras').stat().st_size} bytes)")


def make_keras224_copy() -> None:
    import h5py
    import numpy as np

    target = OUT / "keras224_bce_softmax.h5"
    shutil.copyfile(OUT / "tf_keras_bce_softmax.h5", target)
    with h5py.File(target, "r+") as h5:
        h5.attrs["keras_version"] = np.bytes_("2.2.4")
        h5.attrs["training_config"] = np.bytes_(json.dumps(KERAS_224_TRAINING_CONFIG))
    print("wrote keras224_bce_softmax.h5 (tf_keras_bce_softmax.h5 relabelled as Keras 2.2.4)")


GROUPS = {
    "keras3": make_keras3,
    "tf_keras": make_tf_keras,
    "keras224": make_keras224_copy,
    "tf_nn": make_tf_nn,
}


def main(argv: list[str] | None = None) -> None:
    groups = list(sys.argv[1:] if argv is None else argv) or list(GROUPS)
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise SystemExit(f"unknown group(s) {', '.join(unknown)}; use {', '.join(GROUPS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    for group in GROUPS:  # keras224 copies a tf_keras fixture: keep the order
        if group in groups:
            GROUPS[group]()


if __name__ == "__main__":
    main()
