"""The activation, loss and metric names Keras knows, and how any spelling of one is normalised.

Keras writes a name in many ways, depending on its version and on how the user gave it:

* a string as typed (``"softmax"``, ``"acc"``, ``"mse"``) or a class name (``"CategoricalCrossentropy"``,
  ``"AUC"``, ``"LeakyReLU"``);
* a function object's ``__name__``: TensorFlow's ``tf.nn.softmax`` is ``softmax_v2``,
  ``tf.nn.log_softmax`` is ``log_softmax_v2``; Keras 3 saves either as
  ``{"module": "builtins", "class_name": "function", "config": "softmax_v2"}``;
* a module-qualified name: ``tf.nn.softmax``, ``tf.math.sigmoid``, ``tensorflow.nn.softmax``,
  ``keras.activations.softmax``, ``keras.src.activations.activations.softmax``, or a tf-keras
  ``TFOpLambda`` layer's function, ``nn.softmax``.

:func:`normalise_activation`, :func:`normalise_loss_name` and :func:`normalise_metric_name` turn all
of these into one canonical snake_case name (``softmax``, ``categorical_crossentropy``, ``auc``).
:data:`ACTIVATIONS`, :data:`LOSSES` and :data:`METRICS` are the canonical names of every Keras 3 and
tf-keras built-in (aliases Keras accepts as they are, like the metric ``mse``, included), and
:func:`unknown_name` says, in one line, when a name is none of them.

A custom object is kept as it was written, never guessed at: a registered name
(``"Custom>my_loss"``, Keras's ``package>name``) or a module-qualified name from a module outside
Keras and TensorFlow (``"my_project.losses.focal"``, ``"__main__.MyLoss"``). :func:`is_custom` tells
them apart, so a caller can skip them: :func:`unknown_name` says they are custom (not built-ins),
and :func:`nearest_known` suggests nothing for them.

Standard library only: the static reader imports this module and must stay free of TensorFlow.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

KINDS = ("activation", "loss", "metric")
"""The kinds of name this module knows."""

REGISTERED_SEPARATOR = ">"
"""Keras writes a registered custom object as ``package>name`` (the default package is ``Custom``)."""

# Roots of module paths whose objects are Keras or TensorFlow built-ins. ``builtins`` is what
# Keras 3 writes as the module of every serialised function; ``nn`` and ``math`` are the
# namespaces a tf-keras TFOpLambda layer names its function in ("nn.softmax", "math.sigmoid").
_FRAMEWORK_ROOTS = frozenset({"keras", "tf_keras", "tensorflow", "tf", "builtins", "nn", "math"})

_VERSION_SUFFIX = re.compile(r"_v\d+$")
"""TensorFlow's versioned function names: ``softmax_v2``, ``log_softmax_v2``."""


def snake_case(name: str) -> str:
    """``"CategoricalCrossentropy"`` -> ``"categorical_crossentropy"``; snake names pass through."""
    name = name.strip()
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return name.replace("-", "_").replace(" ", "_").lower()


def _squash(key: str) -> str:
    return key.replace("_", "")


# --- the names ----------------------------------------------------------------------------------

_ACTIVATION_NAMES = (
    # Keras 3 (keras.activations) and tf-keras (a subset).
    "celu",
    "elu",
    "exponential",
    "gelu",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
    "threshold",
    # Activations only a layer applies (PReLU, ThresholdedReLU).
    "prelu",
    "thresholded_relu",
)
# Squashed spelling -> canonical name. silu is Keras 3's name for swish (tf-keras has only swish).
_ACTIVATION_ALIASES: dict[str, str] = {
    "": "linear",
    "none": "linear",
    "identity": "linear",
    "silu": "swish",
    "exp": "exponential",  # tf.math.exp
}

_LOSS_NAMES = (
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy",
    "categorical_hinge",
    "circle",
    "cosine_similarity",
    "ctc",
    "dice",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "sparse_categorical_crossentropy",
    "squared_hinge",
    "tversky",
)
_LOSS_ALIASES: dict[str, str] = {
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "scce": "sparse_categorical_crossentropy",
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence",
    "kullbackleiblerdivergence": "kl_divergence",
    "logcosh": "log_cosh",
    "huberloss": "huber",
    "cosineproximity": "cosine_similarity",  # Keras <= 2.2
    "cosine": "cosine_similarity",  # Keras <= 2.2 alias of cosine_proximity
}

_METRIC_NAMES = (
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "auc",
    "precision",
    "recall",
    "precision_at_recall",
    "recall_at_precision",
    "sensitivity_at_specificity",
    "specificity_at_sensitivity",
    "true_positives",
    "true_negatives",
    "false_positives",
    "false_negatives",
    "f1_score",
    "f_beta_score",
    "r2_score",
    "io_u",
    "binary_io_u",
    "mean_io_u",
    "one_hot_io_u",
    "one_hot_mean_io_u",
    "mean",
    "sum",
    "mean_metric_wrapper",
    "mean_tensor",  # tf-keras
    "mean_relative_error",  # tf-keras
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "sparse_categorical_crossentropy",
    "categorical_hinge",
    "hinge",
    "squared_hinge",
    "cosine_similarity",
    "kl_divergence",
    "log_cosh",
    "log_cosh_error",
    "huber",
    "poisson",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "root_mean_squared_error",
    "pearson_correlation",
    "concordance_correlation",
)
# Metric strings Keras accepts and that are kept as written: the metric keeps that name in the
# logs (``mse``), and compile resolves ``crossentropy``/``ce`` from shapes like ``accuracy``.
_METRIC_KEPT_ALIASES = (
    "crossentropy",
    "ce",
    "bce",
    "mse",
    "mae",
    "mape",
    "msle",
    "kld",
    "kullback_leibler_divergence",
    "logcosh",
    "cosine",
    "cosine_proximity",
)
_METRIC_ALIASES: dict[str, str] = {
    "acc": "accuracy",
    "topkaccuracy": "top_k_categorical_accuracy",
    "sparsetopkaccuracy": "sparse_top_k_categorical_accuracy",
    "auroc": "auc",
}


@dataclass(frozen=True)
class _Table:
    kind: str
    known: frozenset[str]
    by_squash: Mapping[str, str]
    aliases: Mapping[str, str]


def _table(kind: str, canonical: Iterable[str], kept: Iterable[str], aliases: Mapping[str, str]) -> _Table:
    canonical = tuple(canonical)
    by_squash: dict[str, str] = {}
    for name in canonical:
        if by_squash.setdefault(_squash(name), name) != name:
            raise AssertionError(f"two {kind} names squash to {_squash(name)!r}")
    return _Table(kind, frozenset((*canonical, *kept)), by_squash, dict(aliases))


_TABLES: dict[str, _Table] = {
    "activation": _table("activation", _ACTIVATION_NAMES, (), _ACTIVATION_ALIASES),
    "loss": _table("loss", _LOSS_NAMES, (), _LOSS_ALIASES),
    "metric": _table("metric", _METRIC_NAMES, _METRIC_KEPT_ALIASES, _METRIC_ALIASES),
}

ACTIVATIONS: frozenset[str] = _TABLES["activation"].known
"""Canonical names of the activations Keras 3 and tf-keras know (``linear`` included)."""
LOSSES: frozenset[str] = _TABLES["loss"].known
"""Canonical names of the losses Keras 3 and tf-keras know."""
METRICS: frozenset[str] = _TABLES["metric"].known
"""Canonical names of the metrics Keras 3 and tf-keras know, with the aliases kept as written."""


def known_names(kind: str) -> frozenset[str]:
    """The canonical names of one kind (``"activation"``, ``"loss"`` or ``"metric"``)."""
    return _get_table(kind).known


def _get_table(kind: str) -> _Table:
    try:
        return _TABLES[kind]
    except KeyError:
        raise ValueError(f"unknown kind of name {kind!r}; use one of {', '.join(KINDS)}") from None


# --- custom objects and qualified names ---------------------------------------------------------


def is_custom(name: str) -> bool:
    """True for a custom object's name: registered (``"Custom>my_loss"``) or qualified by a module
    outside Keras and TensorFlow (``"my_project.losses.focal"``, ``"__main__.MyLoss"``)."""
    text = name.strip()
    if REGISTERED_SEPARATOR in text:
        return True
    if "." in text:
        return text.split(".", 1)[0] not in _FRAMEWORK_ROOTS
    return False


def qualified_name(name: str, module: str | None = None) -> str:
    """The name a reader hands to the normalisers for an object called ``name`` from ``module``.

    Keras and TensorFlow objects (and Keras 3's ``"builtins"``) keep their bare name; an object from
    any other module is qualified by it, so that :func:`is_custom` recognises it. A registered
    name (``package>name``) is already unambiguous and is kept.
    """
    text = name.strip()
    if not module or REGISTERED_SEPARATOR in text or "." in text:
        return text
    if module.split(".", 1)[0] in _FRAMEWORK_ROOTS:
        return text
    return f"{module}.{text}"


def bare_name(name: str) -> str:
    """``"tf.nn.softmax"`` -> ``"softmax"``: a Keras or TensorFlow module path is dropped; a custom
    object's name is kept whole."""
    text = name.strip()
    if is_custom(text) or "." not in text:
        return text
    return text.rsplit(".", 1)[-1]


# --- normalisation -------------------------------------------------------------------------------


def normalise(kind: str, name: str | None) -> str:
    """The canonical name for any spelling of a ``kind`` name; custom objects are kept as written.

    Unknown names come back snake_cased (``"MyLoss"`` -> ``"my_loss"``): :func:`unknown_name` tells
    them apart from built-ins.
    """
    table = _get_table(kind)
    if name is None:
        name = "linear" if kind == "activation" else ""
    text = name.strip()
    if is_custom(text):
        return text
    key = snake_case(bare_name(text))
    unversioned = _VERSION_SUFFIX.sub("", key)
    for candidate in (key, unversioned) if unversioned != key else (key,):
        squashed = _squash(candidate)
        if squashed in table.aliases:
            return table.aliases[squashed]
        if candidate in table.known:
            return candidate
        if squashed in table.by_squash:
            return table.by_squash[squashed]
    return key


def normalise_activation(name: str | None) -> str:
    """``"tf.nn.softmax"``, ``"softmax_v2"``, ``"Softmax"`` -> ``"softmax"``; None -> ``"linear"``."""
    return normalise("activation", name)


def normalise_loss_name(name: str) -> str:
    """``"CategoricalCrossentropy"``, ``"cce"``, ``"keras.losses.categorical_crossentropy"`` ->
    ``"categorical_crossentropy"``."""
    return normalise("loss", name)


def normalise_metric_name(name: str) -> str:
    """``"acc"`` -> ``"accuracy"``, ``"AUC"`` -> ``"auc"``, ``"MeanIoU"`` -> ``"mean_io_u"``."""
    return normalise("metric", name)


# --- unknown names -------------------------------------------------------------------------------


def nearest_known(kind: str, name: str) -> str | None:
    """The known ``kind`` name closest to ``name`` (itself, normalised, when it is known); None when
    nothing is close or ``name`` is a custom object's."""
    table = _get_table(kind)
    canonical = normalise(kind, name)
    if is_custom(canonical):
        return None
    if canonical in table.known:
        return canonical
    if not canonical:
        return None
    matches = difflib.get_close_matches(canonical, sorted(table.known), n=1, cutoff=0.6)
    if matches:
        return matches[0]
    squashed = {_squash(known): known for known in sorted(table.known)}
    matches = difflib.get_close_matches(_squash(canonical), sorted(squashed), n=1, cutoff=0.6)
    if matches:
        return squashed[matches[0]]
    # A known name's first word(s): "f1" -> f1_score, "top_k" -> top_k_categorical_accuracy.
    extended = sorted((k for k in table.known if k.startswith(f"{canonical}_")), key=len)
    return extended[0] if extended else None


def unknown_name(kind: str, name: str) -> str | None:
    """None when ``name`` is a Keras built-in ``kind`` (in any spelling); else one line saying so,
    with the nearest known name. A custom object's name (:func:`is_custom`) is not a built-in
    either: its line says it is custom, and a caller that trusts custom objects skips it.

    >>> unknown_name("activation", "softmx")
    "unknown activation 'softmx' (did you mean softmax?)"
    >>> unknown_name("loss", "Custom>focal")
    "custom loss 'Custom>focal': not a Keras built-in, so what it computes is unknown"
    """
    table = _get_table(kind)
    canonical = normalise(kind, name)
    if is_custom(canonical):
        return f"custom {kind} {name!r}: not a Keras built-in, so what it computes is unknown"
    if canonical in table.known:
        return None
    nearest = nearest_known(kind, name)
    if nearest is not None:
        return f"unknown {kind} {name!r} (did you mean {nearest}?)"
    return f"unknown {kind} {name!r}: not the name of a Keras {kind}"
