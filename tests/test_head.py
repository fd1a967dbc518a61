"""The head spec: built from flags, a dict, a YAML or JSON file; names normalised once."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from lossaudit.core.head import (
    HeadFix,
    HeadSpec,
    KerasFamily,
    LossKind,
    LossSpec,
    normalise_activation,
    normalise_loss_name,
    normalise_metric_name,
)
from lossaudit.errors import BadInputError
from lossaudit.sources.files import load_spec


@pytest.mark.parametrize(
    ("given", "canonical", "kind"),
    [
        ("CategoricalCrossentropy", "categorical_crossentropy", LossKind.CATEGORICAL_CE),
        ("cce", "categorical_crossentropy", LossKind.CATEGORICAL_CE),
        ("categorical_crossentropy", "categorical_crossentropy", LossKind.CATEGORICAL_CE),
        ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy", LossKind.SPARSE_CE),
        ("scce", "sparse_categorical_crossentropy", LossKind.SPARSE_CE),
        ("BinaryCrossentropy", "binary_crossentropy", LossKind.BINARY_CE),
        ("bce", "binary_crossentropy", LossKind.BINARY_CE),
        ("BinaryFocalCrossentropy", "binary_focal_crossentropy", LossKind.BINARY_CE),
        ("mse", "mean_squared_error", LossKind.REGRESSION),
        ("MeanAbsoluteError", "mean_absolute_error", LossKind.REGRESSION),
        ("Huber", "huber", LossKind.REGRESSION),
        ("squared_hinge", "squared_hinge", LossKind.HINGE),
        ("KLDivergence", "kl_divergence", LossKind.OTHER),
        ("my_custom_loss", "my_custom_loss", LossKind.OTHER),
    ],
)
def test_loss_names_normalise(given: str, canonical: str, kind: LossKind) -> None:
    assert normalise_loss_name(given) == canonical
    assert LossSpec(given).name == canonical
    assert LossSpec(given).kind is kind


def test_cross_entropy_kinds() -> None:
    assert LossSpec("bce").is_cross_entropy
    assert LossSpec("scce").is_cross_entropy
    assert not LossSpec("mse").is_cross_entropy


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (None, "linear"),
        ("", "linear"),
        ("None", "linear"),
        ("Softmax", "softmax"),
        ("LeakyReLU", "leaky_relu"),
        ("ReLU", "relu"),
        ("tf.nn.softmax", "softmax"),
        ("softmax_v2", "softmax"),
        ("tf.math.sigmoid", "sigmoid"),
        ("keras.activations.softmax", "softmax"),
    ],
)
def test_activation_names_normalise(given: str | None, canonical: str) -> None:
    assert normalise_activation(given) == canonical


def test_a_tf_function_name_is_the_activation_it_applies() -> None:
    """tf.nn.softmax on one unit is a 1-unit softmax (LA102), not "another activation" (LA304)."""
    head = HeadSpec.from_values(units=1, activation="softmax_v2", loss="binary_crossentropy")
    assert head.activation == "softmax" and head.outputs_probabilities
    chain = HeadSpec.from_values(units=1, activation_chain=["linear", "tf.nn.softmax"])
    assert chain.activation_chain == ("linear", "softmax") and chain.softmax_count == 1
    assert LossSpec("keras.losses.binary_crossentropy").kind is LossKind.BINARY_CE
    custom = HeadSpec.from_values(units=3, activation="Custom>my_act", loss="__main__.MyLoss")
    assert custom.activation == "Custom>my_act"
    assert custom.loss is not None and custom.loss.name == "__main__.MyLoss"
    assert custom.loss.kind is LossKind.OTHER


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("acc", "accuracy"),
        ("Accuracy", "accuracy"),
        ("BinaryAccuracy", "binary_accuracy"),
        ("SparseCategoricalAccuracy", "sparse_categorical_accuracy"),
        ("TopKCategoricalAccuracy", "top_k_categorical_accuracy"),
        ("top_k_accuracy", "top_k_categorical_accuracy"),
        ("AUC", "auc"),
        ("MeanIoU", "mean_io_u"),
        ("keras.metrics.F1Score", "f1_score"),
    ],
)
def test_metric_names_normalise(given: str, canonical: str) -> None:
    assert normalise_metric_name(given) == canonical


def test_from_values_flags() -> None:
    head = HeadSpec.from_values(
        units=10,
        activation="Softmax",
        loss="CategoricalCrossentropy",
        metrics=["acc", "AUC"],
        keras_family="legacy",
    )
    assert head.units == 10
    assert head.activation_chain == ("softmax",)
    assert head.activation == "softmax"
    assert head.loss == LossSpec("categorical_crossentropy", False, 0.0)
    assert head.metrics == ("accuracy", "auc")
    assert head.keras_family is KerasFamily.LEGACY
    assert head.outputs_probabilities and not head.from_logits
    assert head.source == "flags"


def test_head_is_frozen_and_hashable() -> None:
    head = HeadSpec.from_values(units=3, activation="softmax", loss="cce")
    with pytest.raises(dataclasses.FrozenInstanceError):
        head.units = 4  # type: ignore[misc]
    assert hash(head) == hash(HeadSpec.from_values(units=3, activation="softmax", loss="cce"))
    assert head.with_changes(units=4).units == 4 and head.units == 3


def test_activation_chain_names_the_last_nonlinear_activation() -> None:
    head = HeadSpec.from_values(units=10, activation_chain=["linear", "Softmax", "linear"], loss="cce")
    assert head.activation_chain == ("linear", "softmax", "linear")
    assert head.activation == "softmax"
    assert head.softmax_count == 1
    assert HeadSpec(units=3).activation == "linear"
    assert HeadSpec.from_values(units=3, activation_chain=["softmax", "softmax"]).softmax_count == 2


@pytest.mark.parametrize("units", [0, -1, True, 2.5])
def test_units_must_be_a_positive_integer(units: Any) -> None:
    with pytest.raises(BadInputError, match="output units must be a positive integer"):
        HeadSpec(units=units)


def test_unknown_family_and_bad_smoothing_are_bad_input() -> None:
    with pytest.raises(
        BadInputError, match="unknown Keras family 'keras2'; use one of keras3, tf_keras, legacy"
    ):
        HeadSpec.from_values(units=2, keras_family="keras2")
    with pytest.raises(BadInputError, match=r"label_smoothing must be in \[0, 1\), got 1.5"):
        HeadSpec.from_values(units=2, loss="cce", label_smoothing=1.5)


def test_from_mapping_full() -> None:
    head = HeadSpec.from_mapping(
        {
            "units": 5,
            "activation": "linear",
            "loss": {"name": "SparseCategoricalCrossentropy", "from_logits": True, "label_smoothing": 0.1},
            "metrics": "accuracy",
            "keras_family": "tf_keras",
        },
        source="test",
    )
    assert head.loss == LossSpec("sparse_categorical_crossentropy", True, 0.1)
    assert head.from_logits
    assert head.metrics == ("accuracy",)
    assert head.keras_family is KerasFamily.TF_KERAS
    assert head.source == "test"


def test_from_mapping_chain_given_as_one_name() -> None:
    head = HeadSpec.from_mapping({"units": 3, "activation_chain": "softmax"})
    assert head.activation_chain == ("softmax",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "a head spec must be a mapping"),
        ({"activation": "softmax"}, "the head spec has no 'units'"),
        ({"units": "10"}, "'units' must be an integer, got '10'"),
        ({"units": 10.0}, "'units' must be an integer, got 10.0"),
        ({"units": 10, "colour": "red"}, "unknown head spec key(s): colour"),
        ({"units": 10, "loss": 3}, "'loss' must be a name or a mapping with 'name', got 3"),
        ({"units": 10, "from_logits": "false"}, "'from_logits' must be true or false, got 'false'"),
        (
            {"units": 10, "loss": {"name": "cce", "from_logits": 1}},
            "'loss.from_logits' must be true or false",
        ),
        ({"units": 10, "label_smoothing": "lots"}, "'label_smoothing' must be a number, got 'lots'"),
        ({"units": 10, "metrics": [1, 2]}, "'metrics' must be a name or a list of names"),
        ({"units": 10, "activation": ["softmax"]}, "'activation' must be a name"),
    ],
)
def test_from_mapping_rejects_bad_values_in_one_line(data: Any, message: str) -> None:
    with pytest.raises(BadInputError) as info:
        HeadSpec.from_mapping(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_to_dict_is_plain_json() -> None:
    head = HeadSpec.from_values(units=2, activation="sigmoid", loss="bce", from_logits=False, metrics=["acc"])
    doc = json.loads(json.dumps(head.to_dict()))
    assert doc == {
        "units": 2,
        "activation": "sigmoid",
        "activation_chain": ["sigmoid"],
        "loss": {"name": "binary_crossentropy", "from_logits": False, "label_smoothing": 0.0},
        "metrics": ["accuracy"],
        "keras_family": "keras3",
        "source": "flags",
    }
    assert HeadSpec.from_mapping(doc, source="flags") == head  # the round trip
    assert HeadSpec.from_mapping(doc | {"activation_chain": None}).loss == head.loss


def test_yaml_and_json_spec_files(tmp_path: Path) -> None:
    yaml_file = tmp_path / "head.yaml"
    yaml_file.write_text(
        "head:\n"
        "  units: 10\n"
        "  activation: softmax\n"
        "  loss: {name: categorical_crossentropy, from_logits: false}\n"
        "  metrics: [accuracy]\n"
    )
    json_file = tmp_path / "head.json"
    json_file.write_text(
        json.dumps(
            {
                "units": 10,
                "activation": "softmax",
                "loss": "categorical_crossentropy",
                "metrics": ["accuracy"],
            }
        )
    )
    from_yaml = load_spec(yaml_file)
    from_json = load_spec(json_file)
    assert from_yaml.source == str(yaml_file)
    assert from_yaml.with_changes(source="") == from_json.with_changes(source="")
    assert from_yaml.loss == LossSpec("categorical_crossentropy")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", "{units: 10", "is not valid .json"),
        ("bad.yaml", "units: [10\n", "is not valid .yaml"),
        ("list.yaml", "- 1\n- 2\n", "a head spec must be a mapping"),
        ("empty.yaml", "", "spec file is empty"),
    ],
)
def test_bad_spec_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        load_spec(path)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_head_fix_apply() -> None:
    head = HeadSpec.from_values(units=1, activation="softmax", loss="cce", metrics=["accuracy"])
    fix = HeadFix(activation="sigmoid", loss="binary_crossentropy", from_logits=False)
    fixed = fix.apply(head)
    assert fixed.activation_chain == ("sigmoid",)
    assert fixed.loss == LossSpec("binary_crossentropy", False)
    assert fixed.metrics == ("accuracy",)
    assert not fix.is_empty()
    assert HeadFix().is_empty()
    assert HeadFix(label_transform="one_hot").apply(head) == head
    logits = HeadFix(from_logits=True).apply(HeadSpec(units=4, loss=LossSpec("scce", label_smoothing=0.2)))
    assert logits.loss == LossSpec("sparse_categorical_crossentropy", True, 0.2)
    widened = HeadFix(units=3, metrics=("categorical_accuracy",)).apply(head)
    assert widened.units == 3 and widened.metrics == ("categorical_accuracy",)
