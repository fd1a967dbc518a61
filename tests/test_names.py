"""The names Keras knows, and every spelling Keras versions write them in (lossaudit.core.names)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lossaudit.core import names
from lossaudit.core.head import _LOSS_KINDS, PROBABILITY_ACTIVATIONS, LossSpec
from lossaudit.core.names import (
    ACTIVATIONS,
    KINDS,
    LOSSES,
    METRICS,
    bare_name,
    is_custom,
    known_names,
    nearest_known,
    normalise,
    normalise_activation,
    normalise_loss_name,
    normalise_metric_name,
    qualified_name,
    unknown_name,
)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        # Module-qualified, as a user or a reader writes a function's full name.
        ("tf.nn.softmax", "softmax"),
        ("tensorflow.nn.softmax", "softmax"),
        ("tf.math.sigmoid", "sigmoid"),
        ("tf.compat.v1.nn.softmax", "softmax"),
        ("keras.activations.softmax", "softmax"),
        ("keras.src.activations.activations.softmax", "softmax"),
        ("tf_keras.activations.sigmoid", "sigmoid"),
        ("tf.keras.activations.relu", "relu"),
        ("builtins.softmax", "softmax"),
        # TensorFlow's versioned function names (tf.nn.softmax.__name__ == "softmax_v2").
        ("softmax_v2", "softmax"),
        ("log_softmax_v2", "log_softmax"),
        ("tensorflow.python.ops.nn_ops.softmax_v2", "softmax"),
        # A tf-keras TFOpLambda layer's function.
        ("nn.softmax", "softmax"),
        ("math.sigmoid", "sigmoid"),
        ("nn.log_softmax", "log_softmax"),
        # Layer and class spellings.
        ("Softmax", "softmax"),
        ("ReLU", "relu"),
        ("LeakyReLU", "leaky_relu"),
        ("PReLU", "prelu"),
        ("ThresholdedReLU", "thresholded_relu"),
        ("HardSigmoid", "hard_sigmoid"),
        ("silu", "swish"),
        ("tf.math.exp", "exponential"),
        ("tf.identity", "linear"),
        (None, "linear"),
        ("", "linear"),
        ("None", "linear"),
    ],
)
def test_activation_spellings(given: str | None, canonical: str) -> None:
    assert normalise_activation(given) == canonical
    assert canonical in ACTIVATIONS
    if given is not None:
        assert unknown_name("activation", given) is None


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("keras.losses.CategoricalCrossentropy", "categorical_crossentropy"),
        ("keras.losses.categorical_crossentropy", "categorical_crossentropy"),
        ("keras.src.losses.losses.binary_crossentropy", "binary_crossentropy"),
        ("tf.keras.losses.SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"),
        ("tf_keras.losses.BinaryFocalCrossentropy", "binary_focal_crossentropy"),
        ("BCE", "binary_crossentropy"),
        ("MSE", "mean_squared_error"),
        ("KLD", "kl_divergence"),
        ("kullback_leibler_divergence", "kl_divergence"),
        ("logcosh", "log_cosh"),
        ("LogCosh", "log_cosh"),
        ("huber_loss", "huber"),
        ("cosine_proximity", "cosine_similarity"),
        ("CTC", "ctc"),
        ("CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy"),
        ("Tversky", "tversky"),
    ],
)
def test_loss_spellings(given: str, canonical: str) -> None:
    assert normalise_loss_name(given) == canonical
    assert LossSpec(given).name == canonical
    assert unknown_name("loss", given) is None


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("acc", "accuracy"),
        ("AUC", "auc"),
        ("auroc", "auc"),
        ("keras.metrics.AUC", "auc"),
        ("top_k_accuracy", "top_k_categorical_accuracy"),
        ("TopKCategoricalAccuracy", "top_k_categorical_accuracy"),
        ("sparse_top_k_accuracy", "sparse_top_k_categorical_accuracy"),
        ("F1Score", "f1_score"),
        ("FBetaScore", "f_beta_score"),
        ("fbeta_score", "f_beta_score"),
        ("R2Score", "r2_score"),
        ("MeanIoU", "mean_io_u"),
        ("mean_iou", "mean_io_u"),
        ("OneHotMeanIoU", "one_hot_mean_io_u"),
        ("RootMeanSquaredError", "root_mean_squared_error"),
        ("tf_keras.metrics.binary_accuracy", "binary_accuracy"),
        # Strings compile accepts and that keep their name in the logs.
        ("mse", "mse"),
        ("crossentropy", "crossentropy"),
        ("ce", "ce"),
        ("logcosh", "logcosh"),
    ],
)
def test_metric_spellings(given: str, canonical: str) -> None:
    assert normalise_metric_name(given) == canonical
    assert unknown_name("metric", given) is None


@pytest.mark.parametrize("kind", KINDS)
def test_every_known_name_is_canonical(kind: str) -> None:
    for name in known_names(kind):
        assert normalise(kind, name) == name, name
        assert not is_custom(name)
        assert unknown_name(kind, name) is None
        assert nearest_known(kind, name) == name


def test_the_sets_cover_what_the_rest_of_lossaudit_names() -> None:
    assert set(_LOSS_KINDS) <= LOSSES
    assert PROBABILITY_ACTIVATIONS <= ACTIVATIONS
    assert {"accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"} <= METRICS
    for alias in ("acc", "mse", "AUC", "top_k_categorical_accuracy", "f1_score", "F1Score"):
        assert normalise_metric_name(alias) in METRICS
    assert known_names("activation") is ACTIVATIONS
    assert known_names("loss") is LOSSES
    assert known_names("metric") is METRICS


@pytest.mark.parametrize(
    ("kind", "name", "message", "nearest"),
    [
        ("activation", "softmx", "unknown activation 'softmx' (did you mean softmax?)", "softmax"),
        ("activation", "sigmod", "unknown activation 'sigmod' (did you mean sigmoid?)", "sigmoid"),
        (
            "loss",
            "categorical_crosentropy",
            "unknown loss 'categorical_crosentropy' (did you mean categorical_crossentropy?)",
            "categorical_crossentropy",
        ),
        (
            "loss",
            "CategoricalCrossEntropyLoss",
            "unknown loss 'CategoricalCrossEntropyLoss' (did you mean categorical_crossentropy?)",
            "categorical_crossentropy",
        ),
        ("metric", "acuracy", "unknown metric 'acuracy' (did you mean accuracy?)", "accuracy"),
        ("metric", "f1", "unknown metric 'f1' (did you mean f1_score?)", "f1_score"),
        (
            "activation",
            "tf.nn.sofmax",
            "unknown activation 'tf.nn.sofmax' (did you mean softmax?)",
            "softmax",
        ),
        ("loss", "zzz", "unknown loss 'zzz': not the name of a Keras loss", None),
    ],
)
def test_unknown_names_say_the_nearest_known_one(
    kind: str, name: str, message: str, nearest: str | None
) -> None:
    assert unknown_name(kind, name) == message
    assert nearest_known(kind, name) == nearest


@pytest.mark.parametrize(
    ("name", "custom"),
    [
        ("Custom>my_loss", True),
        ("my_package>FocalLoss", True),
        ("__main__.MyLoss", True),
        ("my_project.losses.focal", True),
        ("tf.nn.softmax", False),
        ("keras.losses.focal", False),  # a Keras path: an unknown Keras name, not a custom object
        ("nn.softmax", False),
        ("softmax", False),
        ("my_loss", False),  # nothing says it is custom: judged as a name (a typo, or unregistered)
    ],
)
def test_custom_objects_are_recognised_and_kept_as_written(name: str, custom: bool) -> None:
    assert is_custom(name) is custom
    if custom:
        for kind in KINDS:
            assert normalise(kind, name) == name  # never snake_cased or guessed at
            assert nearest_known(kind, name) is None
            assert unknown_name(kind, name) == (
                f"custom {kind} {name!r}: not a Keras built-in, so what it computes is unknown"
            )
        assert LossSpec(name).name == name


@pytest.mark.parametrize(
    ("name", "module", "qualified"),
    [
        ("softmax_v2", "tensorflow.python.ops.nn_ops", "softmax_v2"),
        ("softmax", "keras.src.activations.activations", "softmax"),
        ("binary_crossentropy", "tf_keras.src.losses", "binary_crossentropy"),
        ("softmax_v2", "builtins", "softmax_v2"),  # what Keras 3 writes as any function's module
        ("my_act", "__main__", "__main__.my_act"),
        ("MyLoss", "my_project.losses", "my_project.losses.MyLoss"),
        ("Custom>my_act", "my_project.acts", "Custom>my_act"),
        ("my_act", None, "my_act"),
    ],
)
def test_qualified_name(name: str, module: str | None, qualified: str) -> None:
    assert qualified_name(name, module) == qualified


def test_bare_name() -> None:
    assert bare_name(" tf.nn.softmax ") == "softmax"
    assert bare_name("softmax") == "softmax"
    assert bare_name("my_project.acts.my_act") == "my_project.acts.my_act"
    assert bare_name("Custom>my.act") == "Custom>my.act"


def test_a_wrong_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown kind of name 'optimizer'"):
        unknown_name("optimizer", "adam")
    with pytest.raises(ValueError):
        nearest_known("layer", "Dense")


def test_names_imports_only_the_standard_library() -> None:
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import lossaudit.core.names\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'lossaudit'}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert names.__name__ == "lossaudit.core.names"


# --- against the installed Keras: every name it exports is known -------------------------------


def _exported(module: object, *, functions: bool) -> set[str]:
    skip = {"get", "serialize", "deserialize", "Loss", "Metric", "Reduction", "LossFunctionWrapper"}
    found = set()
    for name in dir(module):
        if name.startswith("_") or name in skip:
            continue
        value = getattr(module, name)
        if callable(value) and (not functions or not isinstance(value, type)):
            found.add(name)
    return found


@pytest.mark.keras
@pytest.mark.parametrize("library", ["keras", "tf_keras"])
def test_every_name_the_installed_keras_exports_is_known(library: str) -> None:
    lib = pytest.importorskip(library)
    for name in _exported(lib.activations, functions=True):
        assert unknown_name("activation", name) is None, name
    for name in _exported(lib.losses, functions=False):
        assert unknown_name("loss", name) is None, name
    for name in _exported(lib.metrics, functions=False):
        assert unknown_name("metric", name) is None, name
