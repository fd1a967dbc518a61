"""The static model reader: saved files -> head spec and Keras family, with no TensorFlow.

The fixtures in tests/data/models/ were saved by Keras 3 and tf-keras (tests/data/make_models.py
says how); the tests here read them without Keras. Tests marked ``keras`` cross-check against a
live Keras load and build SavedModels, which only Keras can write.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lossaudit.cli import app
from lossaudit.core.head import KerasFamily, LossSpec, normalise_loss_name
from lossaudit.errors import BadInputError
from lossaudit.keras import static
from lossaudit.keras.static import StaticModel, keras_family_for_version, read_model_file

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
SENTINEL_VAR = "LOSSAUDIT_LAMBDA_SENTINEL"
CCE = LossSpec("categorical_crossentropy")
BCE = LossSpec("binary_crossentropy")
TF1_NOTE = "TF1 graph mode"

# file -> (format, units, activation chain, loss, metrics, family, head layers)
EXPECTED: dict[
    str, tuple[str, int, tuple[str, ...], LossSpec | None, tuple[str, ...], KerasFamily, tuple[str, ...]]
] = {
    "sigmoid1_cce.keras": ("keras_zip", 1, ("sigmoid",), CCE, (), KerasFamily.KERAS3, ("Dense",)),
    "softmax10_cce_accuracy.keras": (
        "keras_zip",
        10,
        ("softmax",),
        CCE,
        ("accuracy",),
        KerasFamily.KERAS3,
        ("Dense",),
    ),
    "softmax10_bce_accuracy.keras": (
        "keras_zip",
        10,
        ("softmax",),
        BCE,
        ("accuracy",),
        KerasFamily.KERAS3,
        ("Dense",),
    ),
    "double_softmax.keras": (
        "keras_zip",
        10,
        ("softmax", "softmax"),
        CCE,
        ("accuracy",),
        KerasFamily.KERAS3,
        ("Dense", "Softmax"),
    ),
    "nested_sequential.keras": (
        "keras_zip",
        10,
        ("softmax",),
        LossSpec("categorical_crossentropy", label_smoothing=0.1),
        ("accuracy",),
        KerasFamily.KERAS3,
        ("Dense", "Dropout"),
    ),
    "functional_activation.keras": (
        "keras_zip",
        10,
        ("linear", "softmax"),
        CCE,
        ("accuracy",),
        KerasFamily.KERAS3,
        ("Dense", "Activation"),
    ),
    "linear_sparse_logits.keras": (
        "keras_zip",
        10,
        ("linear",),
        LossSpec("sparse_categorical_crossentropy", from_logits=True),
        ("sparse_categorical_accuracy",),
        KerasFamily.KERAS3,
        ("Dense",),
    ),
    "lambda_head.keras": (
        "keras_zip",
        3,
        ("softmax",),
        CCE,
        ("accuracy",),
        KerasFamily.KERAS3,
        ("Dense", "Lambda"),
    ),
    "uncompiled.keras": ("keras_zip", 3, ("sigmoid",), None, (), KerasFamily.KERAS3, ("Dense",)),
    "keras3_functional.h5": (
        "h5",
        10,
        ("linear", "softmax"),
        CCE,
        ("accuracy",),
        KerasFamily.KERAS3,
        ("Dense", "Activation"),
    ),
    "tf_keras_bce_softmax.h5": (
        "h5",
        10,
        ("softmax",),
        BCE,
        ("accuracy",),
        KerasFamily.TF_KERAS,
        ("Dense",),
    ),
    "tf_keras_functional.h5": (
        "h5",
        10,
        ("linear", "softmax"),
        CCE,
        ("accuracy",),
        KerasFamily.TF_KERAS,
        ("Dense", "Activation"),
    ),
    "tf_keras_tfop_softmax.h5": (
        "h5",
        10,
        ("linear", "softmax"),
        CCE,
        ("accuracy",),
        KerasFamily.TF_KERAS,
        ("Dense", "TFOpLambda"),
    ),
    "keras224_bce_softmax.h5": (
        "h5",
        10,
        ("softmax",),
        BCE,
        ("accuracy",),
        KerasFamily.LEGACY,
        ("Dense",),
    ),
    # activation=tf.nn.softmax (and tf.nn.log_softmax), as tf-keras and Keras 3 save it.
    "tf_keras_tfnn_softmax1.h5": (
        "h5",
        1,
        ("softmax",),
        BCE,
        ("accuracy",),
        KerasFamily.TF_KERAS,
        ("Dense",),
    ),
    "tf_keras_tfnn_softmax1.keras": (
        "keras_zip",
        1,
        ("softmax",),
        BCE,
        ("accuracy",),
        KerasFamily.TF_KERAS,
        ("Dense",),
    ),
    "tf_keras_tfnn_softmax10.h5": (
        "h5",
        10,
        ("softmax",),
        CCE,
        ("accuracy",),
        KerasFamily.TF_KERAS,
        ("Dense",),
    ),
    "tf_keras_tfnn_softmax10.keras": (
        "keras_zip",
        10,
        ("softmax",),
        CCE,
        ("accuracy",),
        KerasFamily.TF_KERAS,
        ("Dense",),
    ),
    "tf_keras_tfop_softmax1.h5": (
        "h5",
        1,
        ("linear", "softmax"),
        BCE,
        ("accuracy",),
        KerasFamily.TF_KERAS,
        ("Dense", "TFOpLambda"),
    ),
    "tf_keras_tfop_softmax1.keras": (
        "keras_zip",
        1,
        ("linear", "softmax"),
        BCE,
        ("accuracy",),
        KerasFamily.TF_KERAS,
        ("Dense", "TFOpLambda"),
    ),
    "tf_keras_log_softmax_v2.h5": ("h5", 3, ("log_softmax",), CCE, (), KerasFamily.TF_KERAS, ("Dense",)),
    "keras3_tfnn_softmax1.keras": (
        "keras_zip",
        1,
        ("softmax",),
        BCE,
        ("binary_accuracy",),
        KerasFamily.KERAS3,
        ("Dense",),
    ),
    "keras3_tfnn_softmax1.h5": (
        "h5",
        1,
        ("softmax",),
        BCE,
        ("binary_accuracy",),
        KerasFamily.KERAS3,
        ("Dense",),
    ),
    "keras3_tfnn_softmax10.keras": (
        "keras_zip",
        10,
        ("softmax",),
        CCE,
        ("accuracy",),
        KerasFamily.KERAS3,
        ("Dense",),
    ),
}
# Keras 3 wrote these (activation=tf.nn.softmax, saved as the function "softmax_v2") and cannot
# load them back: only the static read can audit them.
KERAS3_CANNOT_LOAD = frozenset(
    {"keras3_tfnn_softmax1.keras", "keras3_tfnn_softmax1.h5", "keras3_tfnn_softmax10.keras"}
)
VERSION_PREFIX = {KerasFamily.KERAS3: "3.", KerasFamily.TF_KERAS: "2.", KerasFamily.LEGACY: "2.2.4"}


def console_script() -> list[str]:
    script = Path(sys.executable).with_name("lossaudit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lossaudit"]


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*console_script(), *args], capture_output=True, text=True, timeout=120, env=env or os.environ.copy()
    )


def bad_input(path: Path) -> str:
    with pytest.raises(BadInputError) as caught:
        read_model_file(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def write_keras_zip(path: Path, config: Any, *, version: str | None = "3.15.1") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        if version is not None:
            archive.writestr("metadata.json", json.dumps({"keras_version": version}))
        archive.writestr("config.json", config if isinstance(config, str | bytes) else json.dumps(config))
        archive.writestr("model.weights.h5", b"")
    return path


def fixture_config(name: str) -> dict[str, Any]:
    with zipfile.ZipFile(MODELS / name) as archive:
        config: dict[str, Any] = json.loads(archive.read("config.json"))
    return config


def k3_tensor(layer: str) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "keras_history": [layer, 0, 0]}}


def k3_layer(class_name: str, name: str, config: dict[str, Any], inputs: list[str]) -> dict[str, Any]:
    """A layer entry of a Keras 3 functional config (the layout Keras 3.15 writes)."""
    args: list[Any] = []
    if len(inputs) == 1:
        args = [k3_tensor(inputs[0])]
    elif inputs:
        args = [[k3_tensor(i) for i in inputs]]
    return {
        "module": "keras.layers",
        "class_name": class_name,
        "config": {"name": name, **config},
        "registered_name": None,
        "name": name,
        "inbound_nodes": [{"args": args, "kwargs": {}}] if inputs else [],
    }


def k3_functional(layers: list[dict[str, Any]], output: str, compile_config: Any = None) -> dict[str, Any]:
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "functional",
            "layers": layers,
            "input_layers": ["input", 0, 0],
            "output_layers": [output, 0, 0],
        },
        "compile_config": compile_config,
    }


INPUT = k3_layer("InputLayer", "input", {"batch_shape": [None, 4]}, [])


# --- every fixture -> exact head fields and family -----------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_head(name: str) -> None:
    file_format, units, chain, loss, metrics, family, layers = EXPECTED[name]
    model = read_model_file(MODELS / name)
    assert model.read_mode == "static"
    assert model.format == file_format
    assert model.head is not None
    assert model.head.units == units
    assert model.head.activation_chain == chain
    assert model.head.loss == loss
    assert model.head.metrics == metrics
    assert model.head.keras_family is family
    assert model.keras_family is family
    assert model.head.source == f"static:{MODELS / name}"
    assert model.output_layers == layers
    assert model.keras_version is not None and model.keras_version.startswith(VERSION_PREFIX[family])
    assert model.lambda_layers == (("rescale",) if name == "lambda_head.keras" else ())
    assert (TF1_NOTE in " ".join(model.notes)) == (family is KerasFamily.TF_KERAS)


def test_the_double_softmax_fixture_counts_two_softmaxes() -> None:
    head = read_model_file(MODELS / "double_softmax.keras").require_head()
    assert head.softmax_count == 2
    assert head.activation == "softmax"


def test_nested_model_is_named_in_the_notes() -> None:
    model = read_model_file(MODELS / "nested_sequential.keras")
    assert "the head is inside the nested model 'inner_classifier'" in model.notes


def test_uncompiled_model_is_checkable_with_a_note() -> None:
    model = read_model_file(MODELS / "uncompiled.keras")
    assert model.head is not None and model.head.loss is None
    assert "the model was saved uncompiled: no loss or metrics to check" in model.notes


def test_tf_keras_h5_notes_what_accuracy_was_saved_as() -> None:
    model = read_model_file(MODELS / "tf_keras_bce_softmax.h5")
    assert any(
        note.startswith("metric 'accuracy' was saved as categorical_accuracy") for note in model.notes
    ), model.notes


def test_context_is_plain_json() -> None:
    model = read_model_file(MODELS / "lambda_head.keras")
    context = model.context()
    assert json.loads(json.dumps(context)) == context
    assert context["model"] == str(MODELS / "lambda_head.keras")
    assert context["model_format"] == "keras_zip"
    assert context["keras_family"] == "keras3"
    assert context["read_mode"] == "static"
    assert context["head_layers"] == "Dense -> Lambda"
    assert context["lambda_layers"] == ["rescale"]
    assert context["keras_version"] == model.keras_version
    assert any("Lambda layer 'rescale'" in note for note in context["model_notes"])


# --- Keras family from the saved version -----------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "family"),
    [
        ("3.15.1", KerasFamily.KERAS3),
        ("3.0.0", KerasFamily.KERAS3),
        ("3.1.0.dev2024010203", KerasFamily.KERAS3),
        ("2.21.0", KerasFamily.TF_KERAS),
        ("2.15.0", KerasFamily.TF_KERAS),
        ("2.4.0", KerasFamily.TF_KERAS),
        ("2.3.0-tf", KerasFamily.TF_KERAS),
        ("2.4.0-tf", KerasFamily.TF_KERAS),
        ("2.3.1", KerasFamily.LEGACY),
        ("2.2.4", KerasFamily.LEGACY),
        ("2.2.4-tf", KerasFamily.LEGACY),
        ("2.1.6-tf", KerasFamily.LEGACY),
        ("1.2.2", KerasFamily.LEGACY),
    ],
)
def test_family_for_version(version: str, family: KerasFamily) -> None:
    found, notes = keras_family_for_version(version)
    assert found is family
    assert (TF1_NOTE in " ".join(notes)) == (family is KerasFamily.TF_KERAS)


@pytest.mark.parametrize("version", [None, "banana", ""])
def test_unknown_version_assumes_keras3_with_a_note(version: str | None) -> None:
    found, notes = keras_family_for_version(version)
    assert found is KerasFamily.KERAS3
    assert len(notes) == 1 and "assuming Keras 3" in notes[0]


def test_zip_without_metadata_is_keras3_with_a_note(tmp_path: Path) -> None:
    path = write_keras_zip(tmp_path / "m.keras", fixture_config("sigmoid1_cce.keras"), version=None)
    model = read_model_file(path)
    assert model.keras_version is None and model.keras_family is KerasFamily.KERAS3
    assert "the archive has no metadata.json: the Keras version is unknown" in model.notes
    assert "unknown Keras version: assuming Keras 3" in model.notes


# --- activation, loss and metric names as every Keras version serialises them ----------------------


@pytest.mark.parametrize(
    ("activation", "expected"),
    [
        ("softmax_v2", "softmax"),  # tf.nn.softmax.__name__
        ("tf.nn.softmax", "softmax"),
        ("tensorflow.nn.softmax", "softmax"),
        ("tf.math.sigmoid", "sigmoid"),
        ("keras.activations.softmax", "softmax"),
        ("keras.src.activations.activations.softmax", "softmax"),
        # Keras 3 and tf-keras .keras: a function object.
        (
            {
                "module": "builtins",
                "class_name": "function",
                "config": "softmax_v2",
                "registered_name": "function",
            },
            "softmax",
        ),
        (
            {
                "module": "keras.activations",
                "class_name": "function",
                "config": "softmax",
                "registered_name": "function",
            },
            "softmax",
        ),
        (
            {
                "module": "keras.src.activations.activations",
                "class_name": "function",
                "config": "softmax",
                "registered_name": "softmax",
            },
            "softmax",
        ),
        (
            {
                "module": "tensorflow.python.ops.nn_ops",
                "class_name": "function",
                "config": "softmax_v2",
                "registered_name": None,
            },
            "softmax",
        ),
        (
            {
                "module": "builtins",
                "class_name": "function",
                "config": "log_softmax_v2",
                "registered_name": "function",
            },
            "log_softmax",
        ),
        ({"module": "keras.layers", "class_name": "ReLU", "config": {}, "registered_name": None}, "relu"),
        # Custom functions keep their registered name or their module.
        (
            {
                "module": "builtins",
                "class_name": "function",
                "config": "Custom>my_act",
                "registered_name": "function",
            },
            "Custom>my_act",
        ),
        (
            {
                "module": "my_project.acts",
                "class_name": "function",
                "config": "my_act",
                "registered_name": "my_act",
            },
            "my_project.acts.my_act",
        ),
    ],
)
def test_activation_as_every_keras_saves_it(activation: Any, expected: str, tmp_path: Path) -> None:
    config = fixture_config("sigmoid1_cce.keras")
    config["config"]["layers"][-1]["config"]["activation"] = activation
    head = read_model_file(write_keras_zip(tmp_path / "m.keras", config)).require_head()
    assert head.activation_chain == (expected,)


@pytest.mark.parametrize(
    ("function", "chain"),
    [
        ("nn.softmax", ("linear", "softmax")),
        ("math.softmax", ("linear", "softmax")),
        ("math.sigmoid", ("linear", "sigmoid")),
        ("nn.sigmoid", ("linear", "sigmoid")),
        ("nn.log_softmax", ("linear", "log_softmax")),
        ("nn.relu", ("linear", "relu")),
        ("math.exp", ("linear", "exponential")),
    ],
)
def test_tf_op_lambda_activations(function: str, chain: tuple[str, ...], tmp_path: Path) -> None:
    config = fixture_config("tf_keras_tfop_softmax1.keras")
    config["config"]["layers"][-1]["config"]["function"] = function
    model = read_model_file(write_keras_zip(tmp_path / "m.keras", config, version="2.21.0"))
    assert model.require_head().activation_chain == chain
    assert model.output_layers == ("Dense", "TFOpLambda")


def test_a_tf_op_lambda_that_is_no_activation_is_not_read_as_one(tmp_path: Path) -> None:
    config = fixture_config("tf_keras_tfop_softmax1.keras")
    config["config"]["layers"][-1]["config"]["function"] = "math.multiply"
    path = write_keras_zip(tmp_path / "m.keras", config, version="2.21.0")
    assert "cannot interpret the output layer 'tf.nn.softmax' (TFOpLambda)" in bad_input(path)


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        (
            {
                "module": "keras.losses",
                "class_name": "function",
                "config": "binary_crossentropy",
                "registered_name": "binary_crossentropy",
            },
            "binary_crossentropy",
        ),
        (
            {
                "module": "builtins",
                "class_name": "function",
                "config": "categorical_crossentropy",
                "registered_name": "function",
            },
            "categorical_crossentropy",
        ),
        ("keras.losses.categorical_crossentropy", "categorical_crossentropy"),
        (
            {
                "module": "keras.losses",
                "class_name": "LossFunctionWrapper",
                "config": {
                    "fn": {
                        "module": "builtins",
                        "class_name": "function",
                        "config": "binary_crossentropy",
                        "registered_name": "function",
                    },
                    "name": "wrapped",
                },
                "registered_name": None,
            },
            "binary_crossentropy",
        ),
        # Custom loss classes: Keras 3 writes module None for __main__, else the module.
        (
            {
                "module": None,
                "class_name": "MyLoss",
                "config": {"name": "my_loss"},
                "registered_name": "MyLoss",
            },
            "__main__.MyLoss",
        ),
        (
            {"module": "my_project.losses", "class_name": "Focal", "config": {}, "registered_name": "Focal"},
            "my_project.losses.Focal",
        ),
        (
            {
                "module": "my_project.losses",
                "class_name": "Focal",
                "config": {},
                "registered_name": "Custom>Focal",
            },
            "Custom>Focal",
        ),
        (
            {"class_name": "Custom>Focal", "config": {"reduction": "auto", "name": None}},
            "Custom>Focal",
        ),  # tf-keras .h5
    ],
)
def test_loss_as_every_keras_saves_it(loss: Any, expected: str, tmp_path: Path) -> None:
    config = fixture_config("softmax10_cce_accuracy.keras")
    config["compile_config"]["loss"] = loss
    head = read_model_file(write_keras_zip(tmp_path / "m.keras", config)).require_head()
    assert head.loss is not None and head.loss.name == expected


def test_metrics_as_every_keras_saves_them(tmp_path: Path) -> None:
    config = fixture_config("softmax10_cce_accuracy.keras")
    config["compile_config"]["metrics"] = [
        {
            "module": "keras.metrics",
            "class_name": "function",
            "config": "categorical_accuracy",
            "registered_name": "categorical_accuracy",
        },
        {
            "module": "builtins",
            "class_name": "function",
            "config": "top_k_categorical_accuracy",
            "registered_name": "function",
        },
        {"module": None, "class_name": "MyMetric", "config": {"name": "mm"}, "registered_name": "MyMetric"},
        {
            "module": "my_project.metrics",
            "class_name": "Gini",
            "config": {"name": "gini"},
            "registered_name": "Custom>Gini",
        },
        {"class_name": "Custom>Kappa", "config": {"name": "kappa"}},
        {
            "module": "keras.metrics",
            "class_name": "MeanIoU",
            "config": {"name": "miou", "num_classes": 10},
            "registered_name": None,
        },
        "keras.metrics.AUC",
    ]
    head = read_model_file(write_keras_zip(tmp_path / "m.keras", config)).require_head()
    assert head.metrics == (
        "categorical_accuracy",
        "top_k_categorical_accuracy",
        "__main__.MyMetric",
        "Custom>Gini",
        "Custom>Kappa",
        "mean_io_u",
        "auc",
    )


# --- config layouts the fixtures do not cover -----------------------------------------------------


def test_keras3_loss_function_and_metric_objects(tmp_path: Path) -> None:
    config = fixture_config("softmax10_cce_accuracy.keras")
    config["compile_config"]["loss"] = {
        "module": "builtins",
        "class_name": "function",
        "config": "binary_crossentropy",
        "registered_name": "function",
    }
    config["compile_config"]["metrics"] = [
        {"module": "builtins", "class_name": "function", "config": "binary_accuracy"},
        # The class decides what a metric computes; the name the user gave it ("acc") does not.
        {"module": "keras.metrics", "class_name": "CategoricalAccuracy", "config": {"name": "acc"}},
        {"module": "keras.metrics", "class_name": "AUC", "config": {"name": "auc_1"}},
    ]
    config["compile_config"]["weighted_metrics"] = ["acc"]
    head = read_model_file(write_keras_zip(tmp_path / "m.keras", config)).require_head()
    assert head.loss == BCE
    assert head.metrics == ("binary_accuracy", "categorical_accuracy", "auc", "accuracy")


def test_per_output_dict_of_one_loss(tmp_path: Path) -> None:
    config = fixture_config("functional_activation.keras")
    config["compile_config"]["loss"] = {"probabilities": "categorical_crossentropy"}
    config["compile_config"]["metrics"] = {"probabilities": ["accuracy"]}
    head = read_model_file(write_keras_zip(tmp_path / "m.keras", config)).require_head()
    assert head.loss == CCE and head.metrics == ("accuracy",)


def test_keras3_nested_functional_as_the_last_layer(tmp_path: Path) -> None:
    inner = k3_functional(
        [
            INPUT,
            k3_layer("Dense", "logits", {"units": 7, "activation": "linear"}, ["input"]),
            k3_layer("Softmax", "softmax", {"axis": -1}, ["logits"]),
        ],
        "softmax",
    )
    inner["name"] = "body"
    inner["inbound_nodes"] = [{"args": [k3_tensor("input")], "kwargs": {}}]
    outer = k3_functional(
        [INPUT, inner, k3_layer("Dropout", "dropout", {"rate": 0.5}, ["body"])],
        "dropout",
        {"loss": "categorical_crossentropy", "metrics": ["accuracy"]},
    )
    model = read_model_file(write_keras_zip(tmp_path / "m.keras", outer))
    assert model.head is not None
    assert (model.head.units, model.head.activation_chain) == (7, ("linear", "softmax"))
    assert model.output_layers == ("Dense", "Softmax", "Dropout")
    assert "the head is inside the nested model 'body'" in model.notes


def test_time_distributed_dense(tmp_path: Path) -> None:
    dense = {"module": "keras.layers", "class_name": "Dense", "config": {"units": 6, "activation": "sigmoid"}}
    config = k3_functional(
        [INPUT, k3_layer("TimeDistributed", "td", {"layer": dense}, ["input"])],
        "td",
        {"loss": "binary_crossentropy"},
    )
    head = read_model_file(write_keras_zip(tmp_path / "m.keras", config)).require_head()
    assert (head.units, head.activation_chain, head.loss) == (6, ("sigmoid",), BCE)


def test_keras21_h5_with_a_layer_list_config(tmp_path: Path) -> None:
    """Keras <= 2.1 wrote a Sequential's config as the bare layer list, and h5py 2 wrote bytes."""
    import h5py
    import numpy as np

    layers = [
        {"class_name": "Dense", "config": {"name": "d", "units": 5, "activation": "relu"}},
        {"class_name": "Dense", "config": {"name": "out", "units": 2, "activation": "linear"}},
        {"class_name": "Activation", "config": {"name": "act", "activation": "softmax"}},
    ]
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"] = np.bytes_("2.1.6")
        h5.attrs["model_config"] = np.bytes_(json.dumps({"class_name": "Sequential", "config": layers}))
        h5.attrs["training_config"] = np.bytes_(
            json.dumps({"loss": "categorical_crossentropy", "metrics": ["acc"]})
        )
    model = read_model_file(path)
    assert model.keras_family is KerasFamily.LEGACY and model.keras_version == "2.1.6"
    assert model.head is not None
    assert (model.head.units, model.head.activation_chain) == (2, ("linear", "softmax"))
    assert (model.head.loss, model.head.metrics) == (CCE, ("accuracy",))


# --- bad input: one line naming the file ---------------------------------------------------------


def test_truncated_keras_file() -> None:
    message = bad_input(MODELS / "truncated.keras")
    assert message == f"{MODELS / 'truncated.keras'}: corrupt or truncated .keras zip: File is not a zip file"


def test_multi_output_model() -> None:
    message = bad_input(MODELS / "multi_output.keras")
    assert message == (
        f"{MODELS / 'multi_output.keras'}: multi-output models are not supported yet: outputs is_spam, topic"
    )


def test_missing_file(tmp_path: Path) -> None:
    assert bad_input(tmp_path / "nope.keras") == f"model file not found: {tmp_path / 'nope.keras'}"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    assert bad_input(path) == f"{path}: the model file is empty"


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.keras"
    path.write_bytes(b"\x00\x01" + random.Random(1).randbytes(4000))
    assert bad_input(path).startswith(f"{path}: not a Keras model file (neither a .keras zip nor an HDF5 .h5")


def test_zip_without_config_json(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("model.weights.h5", b"")
    assert (
        bad_input(path)
        == f"{path}: the .keras archive has no config.json (it holds metadata.json, model.weights.h5)"
    )


def test_invalid_json(tmp_path: Path) -> None:
    path = write_keras_zip(tmp_path / "m.keras", '{"class_name": "Sequential", "config": ')
    assert bad_input(path).startswith(f"{path}: config.json is not valid JSON: Expecting value")


def test_oversized_config_is_refused_before_unpacking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = json.dumps(fixture_config("sigmoid1_cce.keras"))
    monkeypatch.setattr(static, "MAX_CONFIG_BYTES", len(config) - 1)
    path = write_keras_zip(tmp_path / "m.keras", config)
    assert bad_input(path).startswith(f"{path}: config.json declares {len(config)} bytes, over the")


def test_weights_only_h5(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"] = "2.21.0"
        h5.attrs["layer_names"] = ["dense"]
    assert bad_input(path) == (
        f"{path}: an HDF5 file without a model_config attribute: not a saved Keras model "
        "(a weights-only file from save_weights?)"
    )


def test_subclassed_model_config(tmp_path: Path) -> None:
    path = write_keras_zip(tmp_path / "m.keras", {"class_name": "MyClassifier", "config": {"units": 3}})
    assert bad_input(path) == (
        f"{path}: the model (MyClassifier) has no layer list in its config (a subclassed model?): "
        "its head cannot be read statically"
    )


def test_unknown_layer_after_the_dense(tmp_path: Path) -> None:
    config = fixture_config("softmax10_cce_accuracy.keras")
    config["config"]["layers"].append(
        {
            "module": None,
            "class_name": "Temperature",
            "config": {"name": "temperature"},
            "registered_name": "my>Temperature",
        }
    )
    message = bad_input(write_keras_zip(tmp_path / "m.keras", config))
    assert message.startswith(
        f"{tmp_path / 'm.keras'}: cannot interpret the output layer 'temperature' (Temperature) "
        "after the last Dense"
    )


def test_merge_after_the_dense(tmp_path: Path) -> None:
    config = k3_functional(
        [
            INPUT,
            k3_layer("Dense", "a", {"units": 3, "activation": "linear"}, ["input"]),
            k3_layer("Dense", "b", {"units": 3, "activation": "linear"}, ["input"]),
            k3_layer("Add", "sum", {}, ["a", "b"]),
            k3_layer("Softmax", "softmax", {"axis": -1}, ["sum"]),
        ],
        "softmax",
    )
    message = bad_input(write_keras_zip(tmp_path / "m.keras", config))
    assert message == (
        f"{tmp_path / 'm.keras'}: cannot interpret the output layer 'sum' (Add) after the last Dense: "
        "lossaudit follows Activation, Softmax, Dropout, Flatten, Reshape, normalisation and pooling "
        "layers and nested models"
    )


def test_cyclic_layer_graph(tmp_path: Path) -> None:
    config = k3_functional(
        [INPUT, k3_layer("Dropout", "a", {}, ["b"]), k3_layer("Dropout", "b", {}, ["a"])],
        "a",
    )
    assert bad_input(write_keras_zip(tmp_path / "m.keras", config)) == (
        f"{tmp_path / 'm.keras'}: the layer graph has a cycle through 'a'"
    )


def test_bad_from_logits_value(tmp_path: Path) -> None:
    config = fixture_config("linear_sparse_logits.keras")
    config["compile_config"]["loss"]["config"]["from_logits"] = "yes"
    assert bad_input(write_keras_zip(tmp_path / "m.keras", config)) == (
        f"{tmp_path / 'm.keras'}: the loss's from_logits is 'yes', not true or false"
    )


# --- no TensorFlow, no Keras, nothing executed ------------------------------------------------------

NO_FRAMEWORK_PROBE = """
import sys
from lossaudit.keras.static import read_model_file
model = read_model_file(sys.argv[1])
assert 'tensorflow' not in sys.modules, 'tensorflow imported'
assert 'keras' not in sys.modules, 'keras imported'
assert 'tf_keras' not in sys.modules, 'tf_keras imported'
assert 'h5py' not in sys.modules, 'h5py imported'
print(model.head.units, ','.join(model.head.activation_chain), ','.join(model.lambda_layers))
"""


@pytest.mark.parametrize(
    ("name", "printed"),
    [
        ("double_softmax.keras", "10 softmax,softmax "),
        ("keras224_bce_softmax.h5", "10 softmax "),
        ("lambda_head.keras", "3 softmax rescale"),
        ("keras3_tfnn_softmax1.keras", "1 softmax "),
        ("tf_keras_tfop_softmax1.keras", "1 linear,softmax "),
    ],
)
def test_static_read_imports_no_framework_and_runs_no_code(name: str, printed: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "lambda_ran"
    env = {**os.environ, SENTINEL_VAR: str(sentinel)}
    proc = subprocess.run(
        [sys.executable, "-c", NO_FRAMEWORK_PROBE, str(MODELS / name)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == printed.strip()
    assert not sentinel.exists()


STATIC_MODULES = ("static", "hdf5", "savedmodel")
FRAMEWORKS = {"tensorflow", "keras", "tf_keras"}


@pytest.mark.parametrize("module", STATIC_MODULES)
def test_the_static_modules_never_import_a_framework(module: str) -> None:
    """Every import of the static reader and its parsers, top level or in a function: no
    TensorFlow or Keras anywhere, and h5py (the rare-layout fallback) only inside a function."""
    import ast

    import lossaudit.keras

    path = Path(lossaudit.keras.__file__).with_name(f"{module}.py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            imported[name.split(".")[0]] = node.col_offset
    assert not FRAMEWORKS & set(imported), f"keras/{module}.py imports {FRAMEWORKS & set(imported)}"
    assert imported.get("h5py", 1) > 0, f"keras/{module}.py imports h5py at the top level"
    assert "lossaudit" in imported  # the walk saw the module's own imports


CLI_PROBE = """
import sys
from lossaudit.cli import main
sys.argv = ["lossaudit", "check", "--model", sys.argv[1], "--json"]
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in ("tensorflow", "keras", "tf_keras", "h5py") if m in sys.modules)
sys.stderr.write(f"@@{code} {loaded}\\n")
"""


@pytest.mark.parametrize("name", ["lambda_head.keras", "tf_keras_bce_softmax.h5"])
def test_check_model_imports_no_framework(name: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "lambda_ran"
    env = {**os.environ, SENTINEL_VAR: str(sentinel)}
    proc = subprocess.run(
        [sys.executable, "-c", CLI_PROBE, str(MODELS / name)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.stderr.strip().splitlines()[-1] == "@@0 []"
    assert json.loads(proc.stdout)["context"]["read_mode"] == "static"
    assert not sentinel.exists()


# --- lossaudit check --model: exit codes --------------------------------------------------------


def test_check_one_unit_cce_fails_with_la101() -> None:
    result = CliRunner().invoke(app, ["check", "--model", str(MODELS / "sigmoid1_cce.keras"), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["codes"] == ["LA101"]
    assert report["head"]["source"] == f"static:{MODELS / 'sigmoid1_cce.keras'}"
    assert report["context"]["model_format"] == "keras_zip"


def test_check_correct_model_passes() -> None:
    result = CliRunner().invoke(
        app, ["check", "--model", str(MODELS / "softmax10_cce_accuracy.keras"), "--json"]
    )
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass" and report["codes"] == []
    assert report["metric_resolutions"][0]["resolved"] == "CategoricalAccuracy"


def test_check_legacy_h5_resolves_accuracy_to_binary() -> None:
    result = CliRunner().invoke(app, ["check", "--model", str(MODELS / "keras224_bce_softmax.h5"), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["codes"] == ["LA103", "LA401"]
    assert report["metric_resolutions"][0]["resolved"] == "BinaryAccuracy"
    assert report["context"]["keras_family"] == "legacy"


@pytest.mark.parametrize(
    "name",
    [
        "keras3_tfnn_softmax1.keras",
        "keras3_tfnn_softmax1.h5",
        "tf_keras_tfnn_softmax1.h5",
        "tf_keras_tfnn_softmax1.keras",
        "tf_keras_tfop_softmax1.h5",
        "tf_keras_tfop_softmax1.keras",
    ],
)
def test_check_tf_nn_softmax_on_one_unit_fails_with_la102(name: str) -> None:
    """activation=tf.nn.softmax on Dense(1), however it was saved, is a 1-unit softmax (LA102),
    never "relu or another non-probability activation" (LA304)."""
    result = CliRunner().invoke(app, ["check", "--model", str(MODELS / name), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["codes"] == ["LA102"]
    assert report["head"]["activation"] == "softmax" and report["head"]["units"] == 1


@pytest.mark.parametrize(
    "name", ["keras3_tfnn_softmax10.keras", "tf_keras_tfnn_softmax10.h5", "tf_keras_tfnn_softmax10.keras"]
)
def test_check_tf_nn_softmax_on_ten_units_passes(name: str) -> None:
    result = CliRunner().invoke(app, ["check", "--model", str(MODELS / name), "--json"])
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["codes"] == []


@pytest.mark.parametrize("case", ["truncated", "random", "missing"])
def test_check_bad_model_file_exits_2_with_one_line(case: str, tmp_path: Path) -> None:
    if case == "truncated":
        path = MODELS / "truncated.keras"
    elif case == "random":
        path = tmp_path / "random.h5"
        path.write_bytes(random.Random(2).randbytes(5000).replace(b"PK", b"pk"))
    else:
        path = tmp_path / "missing.keras"
    proc = run_script("check", "--model", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lossaudit: error: ") and str(path) in lines[0]


# --- with Keras: the static reading agrees with a live load; SavedModels -------------------------


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # saved before any fit
@pytest.mark.parametrize(
    "name",
    sorted(
        n
        for n in EXPECTED
        if n != "lambda_head.keras"
        and n not in KERAS3_CANNOT_LOAD
        and not n.startswith(("tf_keras", "keras224"))
    ),
)
def test_static_head_agrees_with_keras_load(name: str) -> None:
    import keras

    live = keras.saving.load_model(MODELS / name)
    head = read_model_file(MODELS / name).require_head()
    assert live.output_shape[-1] == head.units
    if head.loss is None:
        assert live.loss is None
        return
    if isinstance(live.loss, str) or not hasattr(live.loss, "get_config"):
        # A name, or (loading a legacy .h5) the loss function it names.
        name = live.loss if isinstance(live.loss, str) else live.loss.__name__
        assert normalise_loss_name(name) == head.loss.name
        assert head.loss.from_logits is False
    else:
        config = live.loss.get_config()
        assert normalise_loss_name(config["name"]) == head.loss.name
        assert config.get("from_logits", False) == head.loss.from_logits
        assert config.get("label_smoothing", 0.0) == pytest.approx(head.loss.label_smoothing)


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the Lambda's bytecode was marshalled by Python 3.11"
)
def test_the_lambda_sentinel_fires_when_keras_runs_the_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The positive control for the no-execution test: a live unsafe load does run the Lambda."""
    import keras

    sentinel = tmp_path / "lambda_ran"
    monkeypatch.setenv(SENTINEL_VAR, str(sentinel))
    read_model_file(MODELS / "lambda_head.keras")
    assert not sentinel.exists()
    keras.saving.load_model(MODELS / "lambda_head.keras", safe_mode=False)
    assert sentinel.exists()


def _tiny_keras3_model() -> Any:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.keras
def test_keras3_export_needs_a_live_load(tmp_path: Path) -> None:
    folder = tmp_path / "exported"
    _tiny_keras3_model().export(str(folder), verbose=False)
    model: StaticModel = read_model_file(folder)
    assert model.format == "savedmodel" and model.read_mode == "needs_live"
    assert model.head is None and model.keras_version is None
    assert any(
        note.startswith("no keras_metadata.pb: saved by Keras 3 model.export()") for note in model.notes
    )
    assert "signature 'serving_default' output 'output_0' has shape (None, 3)" in model.notes
    assert any(note.startswith("saved by TensorFlow 2.") for note in model.notes)
    assert model.context()["read_mode"] == "needs_live"
    with pytest.raises(BadInputError, match="the SavedModel holds no Keras model config"):
        model.require_head()
    proc = run_script("check", "--model", str(folder))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "load it live with Keras" in proc.stderr


@pytest.mark.keras
def test_tf_keras_savedmodel_is_read_statically(tmp_path: Path) -> None:
    tf_keras = pytest.importorskip("tf_keras")
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    folder = tmp_path / "saved"
    model.save(str(folder), save_format="tf")
    found = read_model_file(folder)
    assert (found.format, found.read_mode, found.keras_family) == (
        "savedmodel",
        "static",
        KerasFamily.TF_KERAS,
    )
    assert found.keras_version == tf_keras.__version__
    assert found.head is not None
    assert (found.head.units, found.head.activation_chain, found.head.loss, found.head.metrics) == (
        10,
        ("softmax",),
        BCE,
        ("accuracy",),
    )
    assert "read from keras_metadata.pb (a tf.keras SavedModel)" in found.notes


# --- one model, one reading: the content decides, polyglots and mismatched suffixes refused ------

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def test_a_stored_weights_file_at_a_signature_offset_is_not_a_polyglot(tmp_path: Path) -> None:
    """Keras stores model.weights.h5 uncompressed: its HDF5 signature may land at 4096, where
    libhdf5 looks behind a user block. Inside a member's data it is the weights, not a polyglot."""
    config = json.dumps(fixture_config("sigmoid1_cce.keras"))
    # config.json's data starts at 30 + 11; model.weights.h5's at that + len(config) + 30 + 16.
    padding = 4096 - (30 + 11 + len(config) + 30 + 16)
    assert padding >= 0
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", config + " " * padding)
        archive.writestr("model.weights.h5", HDF5_MAGIC + b"\0" * 64)
    assert path.read_bytes()[4096:4104] == HDF5_MAGIC
    assert static.sniff_model_file(path) == "keras_zip"
    assert read_model_file(path).format == "keras_zip"


def test_an_hdf5_signature_outside_the_zip_members_is_a_polyglot(tmp_path: Path) -> None:
    path = write_keras_zip(tmp_path / "m.keras", fixture_config("sigmoid1_cce.keras"))
    data = path.read_bytes()
    assert len(data) < 8192
    # The archive comment (after the end record) runs to byte 8200 with a signature at 8192.
    comment = b"\0" * (8192 - len(data)) + HDF5_MAGIC
    with zipfile.ZipFile(path, "a") as archive:
        archive.comment = comment
    assert path.read_bytes()[8192:8200] == HDF5_MAGIC
    with pytest.raises(BadInputError) as refused:
        read_model_file(path)
    assert str(refused.value) == (
        f"{path}: refusing a polyglot: a zip archive that also holds an HDF5 file at byte 8192 "
        "outside its members, so Keras could read it as either"
    )


def test_an_hdf5_file_with_a_zip_appended_is_a_polyglot(tmp_path: Path) -> None:
    clean = (MODELS / "keras3_functional.h5").read_bytes()
    appended = (MODELS / "lambda_head.keras").read_bytes()
    for name in ("m.keras", "m.h5", "m.hdf5", "m"):
        path = tmp_path / name
        path.write_bytes(clean + appended)
        with pytest.raises(BadInputError) as refused:
            read_model_file(path)
        assert str(refused.value) == (
            f"{path}: refusing a polyglot: an HDF5 file (at byte 0) that is also a zip archive "
            f"(from byte {len(clean)}), so Keras could read it as either"
        )


@pytest.mark.parametrize(
    ("fixture", "name", "message"),
    [
        ("keras3_functional.h5", "m.keras", "is an HDF5 file, not a .keras zip: rename it to .h5"),
        ("sigmoid1_cce.keras", "m.h5", "is a .keras zip, not an HDF5 file: rename it to .keras"),
        ("sigmoid1_cce.keras", "m.HDF5", "is a .keras zip, not an HDF5 file: rename it to .keras"),
    ],
)
def test_a_suffix_that_disagrees_with_the_content_is_refused(
    tmp_path: Path, fixture: str, name: str, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes((MODELS / fixture).read_bytes())
    with pytest.raises(BadInputError) as refused:
        read_model_file(path)
    assert str(refused.value) == f"{path} {message}"


@pytest.mark.parametrize("fixture", ["keras3_functional.h5", "sigmoid1_cce.keras"])
def test_other_suffixes_are_read_by_their_content(tmp_path: Path, fixture: str) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes((MODELS / fixture).read_bytes())
    expected = read_model_file(MODELS / fixture).require_head().with_changes(source=f"static:{path}")
    assert read_model_file(path).head == expected


def test_a_zip_behind_other_bytes_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    path.write_bytes(b"#!/bin/sh\nexit 0\n" + (MODELS / "sigmoid1_cce.keras").read_bytes())
    with pytest.raises(BadInputError, match=r"not a Keras model file: a zip archive that starts at byte 17"):
        read_model_file(path)


def test_a_member_stored_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    config = json.dumps(fixture_config("sigmoid1_cce.keras"))
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("config.json", config)
        archive.writestr("config.json", config.replace("sigmoid", "softmax"))
    with pytest.raises(BadInputError, match=r"holds 'config\.json' more than once; refusing it"):
        read_model_file(path)


def test_serialised_lambdas_anywhere_are_listed_with_their_layer(tmp_path: Path) -> None:
    """Keras 3 writes ``activation=lambda x: ...`` (or a lambda loss) as ``__lambda__``: Python
    code a load with safe mode off would run, listed like a Lambda layer."""
    config = fixture_config("sigmoid1_cce.keras")
    code = {"class_name": "__lambda__", "config": {"code": "4wEAAAAA", "defaults": None, "closure": None}}
    dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    dense["config"]["activation"] = code
    config["compile_config"]["loss"] = code
    model = read_model_file(write_keras_zip(tmp_path / "m.keras", config))
    assert model.lambda_layers == (dense["config"]["name"], "compile_config")


def test_a_snapshot_reads_the_copy_names_the_original_and_hashes_it(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "weird name.bin"
    path.write_bytes((MODELS / "keras3_functional.h5").read_bytes())
    with static.snapshot_model_file(path) as snapshot:
        assert snapshot.path.name == "model.h5" and snapshot.path.parent != tmp_path
        assert oct(snapshot.path.parent.stat().st_mode & 0o777) == "0o700"
        model = snapshot.read_static()
        assert model.path == str(path)
        assert model.head is not None and model.head.source == f"static:{path}"
        assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == snapshot.sha256
        snapshot.verify()
        folder = snapshot.path.parent
    assert snapshot.closed and not folder.exists()
    with pytest.raises(BadInputError, match="already removed"):
        snapshot.verify()


def test_a_snapshot_refuses_what_the_static_read_refuses(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    path.write_bytes((MODELS / "keras3_functional.h5").read_bytes())
    with pytest.raises(BadInputError, match=r"m.keras is an HDF5 file, not a .keras zip: rename it to .h5"):
        static.snapshot_model_file(path)
    with pytest.raises(BadInputError, match=r"^model file not found: "):
        static.snapshot_model_file(tmp_path / "missing.keras")
