"""The head spec: what a classifier's output layer, loss and metrics are, framework-neutral.

A :class:`HeadSpec` is built from plain values (CLI flags, a dict, a YAML or JSON file) or, by the
Keras adapter, from a saved or live model. Names are normalised here once (by
:mod:`lossaudit.core.names`), so rules compare canonical strings: ``"CategoricalCrossentropy"``,
``"cce"``, ``"keras.losses.categorical_crossentropy"`` and ``"categorical_crossentropy"`` are one
loss; ``"tf.nn.softmax"``, ``"softmax_v2"`` and ``"softmax"`` one activation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

# The name normalisers live in lossaudit.core.names (with the names Keras knows); re-exported here.
from lossaudit.core.names import normalise_activation as normalise_activation
from lossaudit.core.names import normalise_loss_name as normalise_loss_name
from lossaudit.core.names import normalise_metric_name as normalise_metric_name
from lossaudit.core.names import snake_case as snake_case
from lossaudit.errors import BadInputError


class KerasFamily(StrEnum):
    """Which Keras compiled the model; it decides what ``metrics=['accuracy']`` means."""

    KERAS3 = "keras3"
    """Keras 3 (any backend): accuracy is resolved from shapes."""
    TF_KERAS = "tf_keras"
    """tf.keras >= 2.2 / tf-keras in eager mode: the same shape rule as Keras 3."""
    LEGACY = "legacy"
    """Keras <= 2.3, tf.keras <= 2.1, TF1 graph mode: accuracy is resolved from the loss."""


class LossKind(StrEnum):
    BINARY_CE = "binary_ce"
    CATEGORICAL_CE = "categorical_ce"
    SPARSE_CE = "sparse_ce"
    REGRESSION = "regression"
    HINGE = "hinge"
    OTHER = "other"


# Canonical loss name -> kind. Keras class names and short aliases are mapped to these names.
_LOSS_KINDS: dict[str, LossKind] = {
    "binary_crossentropy": LossKind.BINARY_CE,
    "binary_focal_crossentropy": LossKind.BINARY_CE,
    "categorical_crossentropy": LossKind.CATEGORICAL_CE,
    "categorical_focal_crossentropy": LossKind.CATEGORICAL_CE,
    "sparse_categorical_crossentropy": LossKind.SPARSE_CE,
    "mean_squared_error": LossKind.REGRESSION,
    "mean_absolute_error": LossKind.REGRESSION,
    "mean_absolute_percentage_error": LossKind.REGRESSION,
    "mean_squared_logarithmic_error": LossKind.REGRESSION,
    "huber": LossKind.REGRESSION,
    "log_cosh": LossKind.REGRESSION,
    "hinge": LossKind.HINGE,
    "squared_hinge": LossKind.HINGE,
    "categorical_hinge": LossKind.HINGE,
    "kl_divergence": LossKind.OTHER,
    "poisson": LossKind.OTHER,
    "cosine_similarity": LossKind.OTHER,
}

MAX_UNITS = 100_000
"""The most output units (classes) a head may have. Larger heads are refused as bad input (exit 2):
per-class counts, confusion matrices and one-hot labels grow with K, and beyond this K the values
are ids rather than classes. :data:`lossaudit.core.labels.MAX_INFERRED_CLASSES` is the same cap
for K inferred from index labels."""

PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid"})
"""Activations whose output is a probability (softmax over classes, sigmoid per unit)."""


@dataclass(frozen=True)
class LossSpec:
    """A loss as compiled: its canonical name and the arguments that change its meaning."""

    name: str
    from_logits: bool = False
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normalise_loss_name(self.name))

    @property
    def kind(self) -> LossKind:
        return _LOSS_KINDS.get(self.name, LossKind.OTHER)

    @property
    def is_cross_entropy(self) -> bool:
        return self.kind in (LossKind.BINARY_CE, LossKind.CATEGORICAL_CE, LossKind.SPARSE_CE)


@dataclass(frozen=True)
class HeadSpec:
    """A classifier head: output units, what turns the last Dense into outputs, loss and metrics.

    ``activation_chain`` lists every activation from the last Dense layer to the model output, in
    order (``("softmax",)`` for ``Dense(10, activation="softmax")``; ``("linear", "softmax")`` for a
    linear Dense followed by a ``Softmax`` layer; ``("softmax", "softmax")`` for a double softmax).
    ``activation`` is the one that produced the output: the last non-linear entry of the chain.
    """

    units: int
    activation_chain: tuple[str, ...] = ("linear",)
    loss: LossSpec | None = None
    metrics: tuple[str, ...] = ()
    keras_family: KerasFamily = KerasFamily.KERAS3
    source: str = "flags"

    def __post_init__(self) -> None:
        if not isinstance(self.units, int) or isinstance(self.units, bool) or self.units < 1:
            raise BadInputError(f"output units must be a positive integer, got {self.units!r}")
        if self.units > MAX_UNITS:
            raise BadInputError(
                f"output units must be at most {MAX_UNITS} (classes), got {_int_text(self.units)}"
            )
        chain = tuple(normalise_activation(a) for a in self.activation_chain) or ("linear",)
        object.__setattr__(self, "activation_chain", chain)
        object.__setattr__(self, "metrics", tuple(normalise_metric_name(m) for m in self.metrics))
        object.__setattr__(self, "keras_family", KerasFamily(self.keras_family))

    @property
    def activation(self) -> str:
        """The activation that produced the output (linear if none did)."""
        for name in reversed(self.activation_chain):
            if name != "linear":
                return name
        return "linear"

    @property
    def from_logits(self) -> bool:
        return bool(self.loss and self.loss.from_logits)

    @property
    def outputs_probabilities(self) -> bool:
        """True when the model's outputs are probabilities rather than logits or scores."""
        return self.activation in PROBABILITY_ACTIVATIONS

    @property
    def from_model(self) -> bool:
        """Read from a saved or live model (not given as flags or a spec): a missing loss then
        means the model was never compiled."""
        return self.source.startswith(("static:", "live:"))

    @property
    def softmax_count(self) -> int:
        return sum(1 for a in self.activation_chain if a == "softmax")

    def with_changes(self, **changes: Any) -> HeadSpec:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "activation": self.activation,
            "activation_chain": list(self.activation_chain),
            "loss": None
            if self.loss is None
            else {
                "name": self.loss.name,
                "from_logits": self.loss.from_logits,
                "label_smoothing": self.loss.label_smoothing,
            },
            "metrics": list(self.metrics),
            "keras_family": self.keras_family.value,
            "source": self.source,
        }

    @classmethod
    def from_values(
        cls,
        *,
        units: int,
        activation: str | None = None,
        loss: str | None = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        metrics: tuple[str, ...] | list[str] = (),
        keras_family: str | KerasFamily = KerasFamily.KERAS3,
        activation_chain: tuple[str, ...] | list[str] | None = None,
        source: str = "flags",
    ) -> HeadSpec:
        chain = tuple(activation_chain) if activation_chain else (normalise_activation(activation),)
        try:
            family = KerasFamily(keras_family)
        except ValueError:
            choices = ", ".join(f.value for f in KerasFamily)
            raise BadInputError(f"unknown Keras family {keras_family!r}; use one of {choices}") from None
        if not 0.0 <= label_smoothing < 1.0:
            raise BadInputError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        return cls(
            units=units,
            activation_chain=chain,
            loss=None if loss is None else LossSpec(loss, from_logits, float(label_smoothing)),
            metrics=tuple(metrics),
            keras_family=family,
            source=source,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "mapping") -> HeadSpec:
        """Build from a dict as found in a spec file.

        Accepted keys: ``units`` (required), ``activation`` or ``activation_chain``, ``loss`` (a name
        or a mapping with ``name``, ``from_logits``, ``label_smoothing``), ``from_logits``,
        ``label_smoothing``, ``metrics`` (a name or a list), ``keras_family``. A ``source`` key (as
        :meth:`to_dict` writes it) is accepted and ignored: the new spec's source is ``source``.
        """
        if not isinstance(data, Mapping):
            raise BadInputError("a head spec must be a mapping with at least 'units'")
        known = {"units", "activation", "activation_chain", "loss", "from_logits", "label_smoothing"}
        known |= {"metrics", "keras_family", "source"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadInputError(f"unknown head spec key(s): {', '.join(unknown)}")
        if "units" not in data:
            raise BadInputError("the head spec has no 'units'")
        units = data["units"]
        if isinstance(units, bool) or not isinstance(units, int):
            raise BadInputError(f"'units' must be an integer, got {units!r}")
        loss = data.get("loss")
        from_logits = _flag(data.get("from_logits", False), "from_logits")
        smoothing = _number(data.get("label_smoothing", 0.0), "label_smoothing")
        if isinstance(loss, Mapping):
            from_logits = _flag(loss.get("from_logits", from_logits), "loss.from_logits")
            smoothing = _number(loss.get("label_smoothing", smoothing), "loss.label_smoothing")
            loss = loss.get("name")
        if loss is not None and not isinstance(loss, str):
            raise BadInputError(f"'loss' must be a name or a mapping with 'name', got {loss!r}")
        activation = data.get("activation")
        if activation is not None and not isinstance(activation, str):
            raise BadInputError(f"'activation' must be a name, got {activation!r}")
        return cls.from_values(
            units=units,
            activation=activation,
            loss=loss,
            from_logits=from_logits,
            label_smoothing=smoothing,
            metrics=_names(data.get("metrics", ()), "metrics"),
            keras_family=data.get("keras_family", KerasFamily.KERAS3),
            activation_chain=_names(data.get("activation_chain", ()), "activation_chain") or None,
            source=source,
        )


def _int_text(value: int) -> str:
    """An integer for a message; one too long for ``str`` (4300 digits) is given by magnitude."""
    return str(value) if value.bit_length() <= 1000 else f"about 10^{int(value.bit_length() * 0.30103)}"


def _flag(value: Any, key: str) -> bool:
    # bool("false") is True: a quoted YAML/JSON string must not silently switch from_logits on.
    if not isinstance(value, bool):
        raise BadInputError(f"'{key}' must be true or false, got {value!r}")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInputError(f"'{key}' must be a number, got {value!r}")
    return float(value)


def _names(value: Any, key: str) -> tuple[str, ...]:
    """A name or a list of names (a bare string is one name, not its characters); null is none."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise BadInputError(f"'{key}' must be a name or a list of names, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class HeadFix:
    """A change to a head that a finding proposes; the retrainer applies it to prove the fix."""

    units: int | None = None
    activation: str | None = None
    loss: str | None = None
    from_logits: bool | None = None
    metrics: tuple[str, ...] | None = None
    label_transform: str | None = None
    """``"one_hot"`` (index -> one-hot) or ``"index"`` (one-hot -> argmax), or None."""
    notes: tuple[str, ...] = field(default=())

    def is_empty(self) -> bool:
        return (
            all(v is None for v in (self.units, self.activation, self.loss, self.from_logits, self.metrics))
            and self.label_transform is None
        )

    def apply(self, head: HeadSpec) -> HeadSpec:
        loss = head.loss
        if self.loss is not None or self.from_logits is not None:
            base = loss or LossSpec("categorical_crossentropy")
            loss = LossSpec(
                self.loss if self.loss is not None else base.name,
                self.from_logits if self.from_logits is not None else base.from_logits,
                base.label_smoothing,
            )
        chain = head.activation_chain
        if self.activation is not None:
            chain = (normalise_activation(self.activation),)
        return replace(
            head,
            units=self.units if self.units is not None else head.units,
            activation_chain=chain,
            loss=loss,
            metrics=self.metrics if self.metrics is not None else head.metrics,
        )
