"""What a qualified name in a training script is: a Keras layer, loss, metric, activation, a dataset.

Names come from the script's imports (:mod:`.interp` resolves ``tf.keras.layers.Dense`` through
``import tensorflow as tf`` to ``tensorflow.keras.layers.Dense``). :func:`keras_name` tells which
Keras package a name belongs to (``keras``, ``tf.keras`` or ``tf_keras``) and its path inside it;
the tables say what each layer does to a classifier head.
"""

from __future__ import annotations

from dataclasses import dataclass

from lossaudit.core.names import ACTIVATIONS, normalise_activation

KERAS = "keras"
TF_KERAS = "tf.keras"
TF_KERAS_PACKAGE = "tf_keras"
PACKAGES = (KERAS, TF_KERAS, TF_KERAS_PACKAGE)

# Longest prefix first: the package a qualified name lives in.
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("tensorflow.compat.v1.keras", TF_KERAS),
    ("tensorflow.compat.v2.keras", TF_KERAS),
    ("tensorflow.python.keras", TF_KERAS),
    ("tensorflow.keras", TF_KERAS),
    ("tf_keras.src", TF_KERAS_PACKAGE),
    ("tf_keras", TF_KERAS_PACKAGE),
    ("keras.src", KERAS),
    ("keras", KERAS),
)


@dataclass(frozen=True)
class KerasName:
    package: str
    """``keras``, ``tf.keras`` or ``tf_keras``."""
    parts: tuple[str, ...]
    """The path inside the package: ``("layers", "Dense")``, ``("Sequential",)``, ``()`` for the
    package itself."""

    @property
    def last(self) -> str:
        return self.parts[-1] if self.parts else ""

    def within(self, namespace: str) -> bool:
        """True when the name is under ``namespace`` (``layers``, ``losses``, ...)."""
        return namespace in self.parts[:-1]


def keras_name(qualified: str) -> KerasName | None:
    """The Keras package and path of a qualified name; None when it is not Keras."""
    for prefix, package in _PREFIXES:
        if qualified == prefix:
            return KerasName(package, ())
        if qualified.startswith(prefix + "."):
            return KerasName(package, tuple(qualified[len(prefix) + 1 :].split(".")))
    return None


def tensorflow_name(qualified: str) -> str | None:
    """``tensorflow.nn.softmax`` -> ``nn.softmax`` (``compat.v1``/``compat.v2`` dropped); None
    when the name is not TensorFlow's (or is its Keras)."""
    if not qualified.startswith("tensorflow.") or keras_name(qualified) is not None:
        return None
    rest = qualified[len("tensorflow.") :]
    for compat in ("compat.v1.", "compat.v2."):
        if rest.startswith(compat):
            return rest[len(compat) :]
    return rest


ACTIVATION_LAYERS: dict[str, str] = {
    "Softmax": "softmax",
    "ReLU": "relu",
    "LeakyReLU": "leaky_relu",
    "ELU": "elu",
    "PReLU": "prelu",
    "ThresholdedReLU": "thresholded_relu",
}
"""Layers that only apply an activation (``Activation`` takes its activation as an argument)."""

PASSTHROUGH_LAYERS = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "Identity",
        "InputLayer",
        "Masking",
    }
)
"""Layers that leave a head's units and activation as they are (at inference)."""

NORMALIZATION_LAYERS = frozenset(
    {
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "RMSNormalization",
    }
)
"""Affine layers: after a linear head they keep it linear; after a softmax, outputs are no longer
probabilities (the head becomes unknown)."""

OPAQUE_LAYERS = frozenset({"Lambda", "TFOpLambda", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})
"""Layers running arbitrary code: what comes out of them is unknown."""

KERAS1_ARGUMENTS = frozenset(
    {
        "init",
        "output_dim",
        "border_mode",
        "nb_epoch",
        "nb_filter",
        "nb_row",
        "nb_col",
        "subsample",
        "W_regularizer",
        "b_regularizer",
        "W_constraint",
        "b_constraint",
        "dim_ordering",
        "samples_per_epoch",
        "nb_val_samples",
    }
)
"""Keyword arguments of the Keras 1 API. Keras up to 2.3 accepted them (with a warning); tf.keras
and Keras 3 refuse them, so a script using them runs only under a legacy Keras."""

LOSS_CLASSES_WITH_LOGITS_FIRST = frozenset(
    {"BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy"}
)
"""Loss classes whose first positional argument is ``from_logits`` (the second, for the first
two, ``label_smoothing``)."""

LOSS_CLASS_NAMES: dict[str, str] = {
    "binary_crossentropy": "BinaryCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
}
"""Canonical loss name -> the Keras class that takes ``from_logits``."""

# (labels encoding, K, labels a (n, 1) column): what each dataset's load_data() gives as y.
KERAS_DATASETS: dict[str, tuple[str, int, bool]] = {
    "mnist": ("index", 10, False),
    "fashion_mnist": ("index", 10, False),
    "cifar10": ("index", 10, True),
    "cifar100": ("index", 100, True),
    "reuters": ("index", 46, False),
    "imdb": ("binary", 2, False),
}
SKLEARN_LOADERS: dict[str, tuple[str, int]] = {
    "load_iris": ("index", 3),
    "load_wine": ("index", 3),
    "load_digits": ("index", 10),
    "load_breast_cancer": ("binary", 2),
}

BENIGN_PREFIXES = (
    "builtins.",
    "mlflow.",
    "logging.",
    "wandb.",
    "numpy.",
    "json.",
    "pickle.",
    "tensorflow.saved_model.",
    "tensorflow.print",
)
"""Callees that may be given a model without changing its head or its compile."""
BENIGN_KERAS = frozenset({"plot_model", "model_to_dot", "save_model", "print_summary"})

READ_ONLY_MODEL_METHODS = frozenset(
    {
        "summary",
        "predict",
        "predict_on_batch",
        "predict_generator",
        "predict_step",
        "save",
        "save_weights",
        "load_weights",
        "get_config",
        "to_json",
        "to_yaml",
        "count_params",
        "get_layer",
        "get_weights",
        "set_weights",
        "export",
        "build",
        "reset_states",
        "reset_metrics",
        "make_predict_function",
        "__call__",
    }
)
FIT_METHODS = frozenset(
    {"fit", "evaluate", "fit_generator", "evaluate_generator", "train_on_batch", "test_on_batch"}
)


def activation_of_name(qualified: str) -> str | None:
    """The activation a referenced function is (``tf.nn.softmax``, ``keras.activations.sigmoid``,
    ``keras.ops.softmax``); None when it is none Keras knows."""
    keras = keras_name(qualified)
    if keras is not None:
        if keras.within("activations") or keras.within("ops") or keras.within("backend"):
            return _known_activation(keras.last)
        return None
    tf = tensorflow_name(qualified)
    if tf is None:
        return None
    parts = tf.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[0] in ("nn", "math")):
        return _known_activation(parts[-1])
    return None


def _known_activation(name: str) -> str | None:
    canonical = normalise_activation(name)
    return canonical if canonical in ACTIVATIONS and canonical != "linear" else None
