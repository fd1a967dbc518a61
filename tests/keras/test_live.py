"""Live introspection, loading and prediction of Keras models (lossaudit.keras.live / .predict)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lossaudit.core.head import KerasFamily, LossSpec
from lossaudit.core.names import is_custom
from lossaudit.errors import BadInputError, RefusedError
from tests.keras.conftest import SavedCase

pytestmark = pytest.mark.keras

MODELS = Path(__file__).resolve().parent.parent / "data" / "models"


def _shape(head: object) -> dict[str, object]:
    from lossaudit.pipeline.stages import _head_shape

    assert head is not None
    return _head_shape(head)  # type: ignore[arg-type]


# Every loadable fixture file of tests/data/models: the live head must equal the static read.
LOADABLE = (
    "sigmoid1_cce.keras",
    "softmax10_cce_accuracy.keras",
    "softmax10_bce_accuracy.keras",
    "double_softmax.keras",
    "nested_sequential.keras",
    "functional_activation.keras",
    "linear_sparse_logits.keras",
    "uncompiled.keras",
    "keras3_functional.h5",
    "tf_keras_bce_softmax.h5",
    "tf_keras_functional.h5",
    "keras224_bce_softmax.h5",
    # activation=tf.nn.softmax: tf-keras saves it as "softmax", which Keras 3 loads.
    "tf_keras_tfnn_softmax1.h5",
    "tf_keras_tfnn_softmax1.keras",
    "tf_keras_tfnn_softmax10.h5",
    "tf_keras_tfnn_softmax10.keras",
)
# tf-keras files whose head is a TFOpLambda (Dense -> tf.nn.softmax): Keras 3 cannot load them.
TF_KERAS_ONLY = ("tf_keras_tfop_softmax1.h5", "tf_keras_tfop_softmax1.keras", "tf_keras_tfop_softmax.h5")
# Keras 3 files with activation=tf.nn.softmax (saved as the function "softmax_v2"): nothing loads them.
KERAS3_CANNOT_LOAD = ("keras3_tfnn_softmax1.keras", "keras3_tfnn_softmax1.h5", "keras3_tfnn_softmax10.keras")


@pytest.mark.parametrize("name", LOADABLE)
def test_live_head_equals_static_head(name: str) -> None:
    from lossaudit.keras.live import head_from_model, load_model_file
    from lossaudit.keras.static import read_model_file

    path = MODELS / name
    static = read_model_file(path)
    notes: list[str] = []
    live = head_from_model(load_model_file(path, static=static, on_note=notes.append))
    assert _shape(live) == _shape(static.head)
    assert live.loss == (static.head.loss if static.head else None)
    assert live.keras_family is KerasFamily.KERAS3
    # .h5 files Keras 2 / tf-keras wrote are recompiled from training_config, and say so.
    assert bool(notes) == (name.startswith(("tf_keras", "keras224")) and name.endswith(".h5"))


def test_live_head_reads_chains_nesting_and_loss_arguments() -> None:
    from lossaudit.keras.live import head_from_model, load_model_file

    nested = head_from_model(load_model_file(MODELS / "nested_sequential.keras"))
    assert (nested.units, nested.activation_chain) == (10, ("softmax",))
    assert nested.loss == LossSpec("categorical_crossentropy", False, 0.1)
    double = head_from_model(load_model_file(MODELS / "double_softmax.keras"))
    assert double.activation_chain == ("softmax", "softmax")
    logits = head_from_model(load_model_file(MODELS / "linear_sparse_logits.keras"))
    assert logits.activation_chain == ("linear",)
    assert logits.loss == LossSpec("sparse_categorical_crossentropy", True, 0.0)
    assert logits.metrics == ("sparse_categorical_accuracy",)
    functional = head_from_model(load_model_file(MODELS / "functional_activation.keras"))
    assert functional.activation_chain == ("linear", "softmax")
    uncompiled = head_from_model(load_model_file(MODELS / "uncompiled.keras"))
    assert (uncompiled.loss, uncompiled.metrics) == (None, ())


def test_loss_spec_reads_names_functions_and_loss_objects() -> None:
    import keras
    from lossaudit.keras.live import loss_spec

    assert loss_spec("bce") == LossSpec("binary_crossentropy")
    assert loss_spec(keras.losses.categorical_crossentropy) == LossSpec("categorical_crossentropy")
    assert loss_spec(keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.2)) == LossSpec(
        "binary_crossentropy", True, 0.2
    )
    assert loss_spec(keras.losses.SparseCategoricalCrossentropy(from_logits=True)) == LossSpec(
        "sparse_categorical_crossentropy", True, 0.0
    )
    assert loss_spec(None) is None
    with pytest.raises(BadInputError, match="2 losses"):
        loss_spec(["mse", "bce"])


def _digits_model(loss: str, metrics: list[object], units: int = 10) -> object:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(units, activation="softmax")])
    model.compile(optimizer="adam", loss=loss, metrics=metrics)
    return model


def test_built_metric_classes_are_read_after_one_evaluate() -> None:
    from sklearn.datasets import load_digits

    import keras
    from lossaudit.keras.live import built_metric_classes, head_from_model

    x, y = load_digits(return_X_y=True)
    x = (x[:200] / 16.0).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[y[:200]]
    model = _digits_model("categorical_crossentropy", ["accuracy", "binary_accuracy", keras.metrics.AUC()])
    assert head_from_model(model).metrics == ("accuracy", "binary_accuracy", "auc")
    assert built_metric_classes(model) == ()  # nothing is built before the first batch
    model.evaluate(x, onehot, verbose=0)  # type: ignore[attr-defined]
    assert built_metric_classes(model) == (
        ("accuracy", "CategoricalAccuracy"),
        ("binary_accuracy", "BinaryAccuracy"),
        ("auc", "AUC"),
    )
    sparse = _digits_model("sparse_categorical_crossentropy", ["acc"])
    sparse.evaluate(x, y[:200], verbose=0)  # type: ignore[attr-defined]
    assert built_metric_classes(sparse) == (("accuracy", "SparseCategoricalAccuracy"),)


def test_tf_keras_model_is_introspected_by_its_own_containers() -> None:
    tf_keras = pytest.importorskip("tf_keras")
    from lossaudit.keras.live import built_metric_classes, head_from_model, keras_version

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3), tf_keras.layers.Softmax()])
    model.compile(
        optimizer="adam",
        loss=tf_keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        metrics=["accuracy"],
    )
    x = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(12) % 3]
    model.evaluate(x, y, verbose=0)
    head = head_from_model(model)
    assert head.keras_family is KerasFamily.TF_KERAS
    assert (head.units, head.activation_chain) == (3, ("linear", "softmax"))
    assert head.loss == LossSpec("categorical_crossentropy", False, 0.1)
    assert head.metrics == ("accuracy",)
    # tf-keras wraps the function it resolved 'accuracy' to in a MeanMetricWrapper.
    assert built_metric_classes(model) == (("accuracy", "CategoricalAccuracy"),)
    assert keras_version(model) == tf_keras.__version__


def test_tf_keras_h5_is_recompiled_and_evaluates_under_keras3() -> None:
    from lossaudit.keras.live import built_metric_classes, load_model_file
    from lossaudit.keras.predict import evaluate_live

    notes: list[str] = []
    model = load_model_file(MODELS / "tf_keras_bce_softmax.h5", on_note=notes.append)
    assert notes == [
        "tf_keras_bce_softmax.h5 was saved by Keras 2.21.0: loaded with compile=False and "
        "recompiled from its training_config"
    ]
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(40) % 10]
    argmax_accuracy = float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == y.argmax(axis=1)))
    for _ in range(2):  # a stateless metric: the same number every time
        evaluation = evaluate_live(model, x, y)
        assert evaluation.error is None
        assert set(evaluation.values) == {"loss", "accuracy"}
        assert evaluation.values["accuracy"] == pytest.approx(argmax_accuracy, abs=1e-6)
    assert built_metric_classes(model) == (("accuracy", "CategoricalAccuracy"),)


def test_tf_keras_savedmodel_folder_loads_with_tf_keras(tmp_path: Path) -> None:
    tf_keras = pytest.importorskip("tf_keras")
    from lossaudit.keras.live import built_metric_classes, head_from_model
    from lossaudit.keras.predict import evaluate_live
    from lossaudit.sources.local import LocalFileSource

    tf_keras.utils.set_random_seed(0)
    saved = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3, activation="softmax")])
    saved.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    saved.save(tmp_path / "savedmodel", save_format="tf")
    source = LocalFileSource(tmp_path / "savedmodel")
    static = source.read_static()
    model = source.load(static, unsafe=False, on_note=lambda line: None)
    head = head_from_model(model)
    assert head.keras_family is KerasFamily.TF_KERAS
    assert (head.units, head.activation_chain, head.loss) == (
        3,
        ("softmax",),
        LossSpec("binary_crossentropy"),
    )
    x = np.random.default_rng(1).normal(size=(30, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(30) % 3]
    evaluation = evaluate_live(model, x, y)
    argmax_accuracy = float(np.mean(saved.predict(x, verbose=0).argmax(axis=1) == y.argmax(axis=1)))
    assert evaluation.values["accuracy"] == pytest.approx(argmax_accuracy, abs=1e-6)
    assert built_metric_classes(model) == (("accuracy", "CategoricalAccuracy"),)


def test_evaluate_records_keras_refusal_of_index_labels(softmax_cce_index_labels_case: SavedCase) -> None:
    from lossaudit.keras.live import built_metric_classes, load_model_file
    from lossaudit.keras.predict import evaluate_live

    case = softmax_cce_index_labels_case
    model = load_model_file(case.model)
    evaluation = evaluate_live(model, case.x, case.y)
    assert not evaluation.ran
    assert evaluation.values == {}
    assert evaluation.error is not None
    assert evaluation.error.startswith("ValueError: ")
    assert "must have the same rank" in evaluation.error
    assert evaluation.reported() == ()
    assert built_metric_classes(model) == ()


def test_evaluate_reports_keras_numbers_as_evaluate_source(
    one_unit_bce_case: SavedCase, own_predictions: Callable[[SavedCase], np.ndarray]
) -> None:
    from sklearn.metrics import accuracy_score

    from lossaudit.keras.live import load_model_file
    from lossaudit.keras.predict import evaluate_live

    case = one_unit_bce_case
    evaluation = evaluate_live(load_model_file(case.model), case.x, case.y)
    expected = accuracy_score(case.y, own_predictions(case)[:, 0] > 0.5)
    assert evaluation.values["accuracy"] == pytest.approx(expected, abs=1e-6)
    assert {(r.name, r.source) for r in evaluation.reported()} == {
        ("accuracy", "evaluate"),
        ("loss", "evaluate"),
    }


@pytest.mark.parametrize("batch_size", [7, 256, 10_000])
def test_predict_in_batches_equals_keras_predict(
    one_unit_bce_case: SavedCase, own_predictions: Callable[[SavedCase], np.ndarray], batch_size: int
) -> None:
    from lossaudit.keras.live import load_model_file
    from lossaudit.keras.predict import predict_in_batches

    case = one_unit_bce_case
    out = predict_in_batches(load_model_file(case.model), case.x, batch_size=batch_size)
    assert out.dtype == np.float64
    assert out.shape == (569, 1)
    np.testing.assert_allclose(out, own_predictions(case), rtol=0, atol=1e-6)


def test_predict_shows_progress_when_asked_and_refuses_wrong_shapes(
    one_unit_bce_case: SavedCase, capsys: pytest.CaptureFixture[str]
) -> None:
    from lossaudit.keras.live import load_model_file
    from lossaudit.keras.predict import predict_in_batches

    model = load_model_file(one_unit_bce_case.model)
    predict_in_batches(model, one_unit_bce_case.x, batch_size=100, progress=True)
    captured = capsys.readouterr()
    assert "predicting 569 samples" in captured.err
    assert captured.out == ""
    with pytest.raises(BadInputError, match=r"takes inputs of shape \(n, 30\) but x has shape \(5, 64\)"):
        predict_in_batches(model, np.zeros((5, 64), dtype=np.float32))
    with pytest.raises(BadInputError, match="batch size must be at least 1"):
        predict_in_batches(model, one_unit_bce_case.x, batch_size=0)


def test_output_kind_comes_from_the_head() -> None:
    from lossaudit.core.head import HeadSpec
    from lossaudit.keras.predict import output_kind

    assert output_kind(HeadSpec.from_values(units=10, activation="softmax")) == "probabilities"
    assert output_kind(HeadSpec.from_values(units=1, activation="sigmoid")) == "probabilities"
    assert output_kind(HeadSpec.from_values(units=10, activation="linear")) == "logits"
    assert output_kind(HeadSpec.from_values(units=10, activation="relu")) == "scores"


def test_lambda_is_refused_unless_unsafe(lambda_case: SavedCase, capsys: pytest.CaptureFixture[str]) -> None:
    from lossaudit.keras.live import head_from_model, load_model_file

    with pytest.raises(BadInputError) as refused:
        load_model_file(lambda_case.model)
    assert str(refused.value) == (
        "model has Lambda layer(s) halve; refusing to deserialize code: pass --unsafe to load it anyway"
    )
    model = load_model_file(lambda_case.model, unsafe=True)
    assert head_from_model(model).units == 1
    err = capsys.readouterr().err
    assert "WARNING: --unsafe: deserializing Lambda layer(s) halve" in err


def test_keras_load_errors_become_one_line(truncated_model: Path) -> None:
    from lossaudit.keras.live import load_model_file

    # The static read stops a truncated file first ...
    with pytest.raises(BadInputError, match="truncated"):
        load_model_file(truncated_model)
    # ... and an error from Keras itself is one line naming the file.
    with pytest.raises(BadInputError) as keras_error:
        load_model_file(truncated_model, lambda_layers=())
    message = str(keras_error.value)
    assert message.startswith(f"cannot load model {truncated_model}: ")
    assert "\n" not in message


# --- names as Keras objects carry them ------------------------------------------------------------


def _my_activation(x: object) -> object:
    import keras

    return keras.ops.relu(x)


def _custom_loss_and_metric() -> tuple[object, object]:
    import keras

    class MyLoss(keras.losses.Loss):
        def call(self, y_true: object, y_pred: object) -> object:
            return keras.ops.mean(keras.ops.square(y_true - y_pred))

    class MyMetric(keras.metrics.Mean):
        pass

    return MyLoss(), MyMetric(name="mm")


def test_live_head_reads_tf_functions_and_custom_objects() -> None:
    import tensorflow as tf

    import keras
    from lossaudit.keras.live import head_from_model, loss_spec, object_name

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation=tf.nn.softmax)])
    model.compile(loss=keras.losses.binary_crossentropy, metrics=[keras.metrics.binary_accuracy])
    head = head_from_model(model)
    assert (head.units, head.activation_chain, head.activation) == (1, ("softmax",), "softmax")
    assert head.loss == LossSpec("binary_crossentropy") and head.metrics == ("binary_accuracy",)

    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.Activation(tf.math.sigmoid)]
    )
    assert head_from_model(model).activation_chain == ("linear", "sigmoid")
    assert object_name(tf.nn.softmax) == "softmax_v2"  # normalised to softmax by the head

    loss, metric = _custom_loss_and_metric()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation=_my_activation)])
    model.compile(loss=loss, metrics=[metric, "accuracy"])
    head = head_from_model(model)
    assert head.activation_chain == (f"{__name__}._my_activation",)
    assert head.loss is not None
    assert (head.loss.name, head.metrics) == (f"{__name__}.MyLoss", (f"{__name__}.MyMetric", "accuracy"))
    assert all(is_custom(name) for name in (head.activation, head.loss.name, head.metrics[0]))

    registered = keras.saving.register_keras_serializable(package="lossaudit_tests")(_registered_activation)
    assert object_name(registered) == "lossaudit_tests>_registered_activation"
    assert loss_spec(registered) == LossSpec("lossaudit_tests>_registered_activation")


def _registered_activation(x: object) -> object:
    return x


def test_tf_keras_tf_op_lambda_head_is_read_live() -> None:
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    from lossaudit.keras.live import head_from_model

    inputs = tf_keras.Input((4,))
    model = tf_keras.Model(inputs, tf.nn.softmax(tf_keras.layers.Dense(1)(inputs)))
    model.compile(loss="binary_crossentropy", metrics=["accuracy"])
    head = head_from_model(model)
    assert (head.units, head.activation_chain, head.keras_family) == (
        1,
        ("linear", "softmax"),
        KerasFamily.TF_KERAS,
    )


# --- a file Keras 3 cannot load --------------------------------------------------------------------


@pytest.mark.parametrize("name", TF_KERAS_ONLY + KERAS3_CANNOT_LOAD)
def test_keras3_really_cannot_load_these_files(name: str) -> None:
    import keras

    with pytest.raises(Exception):  # noqa: B017 - TypeError or ValueError, by file
        keras.saving.load_model(MODELS / name, compile=False)


@pytest.mark.parametrize("name", TF_KERAS_ONLY)
@pytest.mark.parametrize("given_static", [True, False])
def test_a_file_tf_keras_wrote_is_loaded_with_tf_keras_when_keras3_cannot(
    name: str, given_static: bool
) -> None:
    tf_keras = pytest.importorskip("tf_keras")
    from lossaudit.keras.live import head_from_model, load_model_file, model_family
    from lossaudit.keras.predict import evaluate_live, predict_in_batches
    from lossaudit.keras.static import read_model_file

    path = MODELS / name
    static = read_model_file(path)
    notes: list[str] = []
    if given_static:
        model = load_model_file(path, static=static, on_note=notes.append)
    else:  # as the pipeline calls it: only the Lambda names of the static read
        model = load_model_file(path, lambda_layers=static.lambda_layers, on_note=notes.append)
    assert model_family(model) is KerasFamily.TF_KERAS
    live = head_from_model(model)
    assert static.head is not None
    assert _shape(live) == _shape(static.head)
    assert (live.loss, live.metrics) == (static.head.loss, static.head.metrics)
    assert len(notes) == 1
    assert notes[0].startswith(
        f"{name} was saved by Keras {static.keras_version} and Keras 3 cannot load it ("
    )
    assert notes[0].endswith(f"): loaded with tf_keras {tf_keras.__version__}")
    units = static.head.units
    x = np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32)
    out = predict_in_batches(model, x, batch_size=10)
    assert out.shape == (24, units)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)  # a softmax, over one unit: 1.0
    y = np.eye(units, dtype=np.float32)[np.arange(24) % units] if units > 1 else (np.arange(24) % 2)
    evaluation = evaluate_live(model, x, y.astype(np.float32))
    assert evaluation.ran, evaluation.error
    assert "loss" in evaluation.values


def test_when_neither_keras_loads_a_tf_keras_file_the_error_names_both() -> None:
    from lossaudit.keras.live import ModelLoadError, load_model_file

    path = MODELS / "tf_keras_log_softmax_v2.h5"
    with pytest.raises(ModelLoadError) as caught:
        load_model_file(path)
    error = caught.value
    assert isinstance(error, BadInputError)
    message = str(error)
    assert "\n" not in message
    assert message.startswith(
        f"cannot load model {path}: Keras 3: Could not locate function 'log_softmax_v2'; "
    )
    assert "; tf_keras: " in message
    assert error.keras3_error == "Could not locate function 'log_softmax_v2'"
    assert error.tf_keras_error
    assert error.path == str(path)


@pytest.mark.parametrize("name", KERAS3_CANNOT_LOAD)
def test_a_keras3_file_keras3_cannot_load_is_not_tried_with_tf_keras(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lossaudit.keras import live

    def no_tf_keras(*args: object, **kwargs: object) -> None:
        raise AssertionError("tf_keras was tried on a file Keras 3 wrote")

    monkeypatch.setattr(live, "_load_with_tf_keras", no_tf_keras)
    path = MODELS / name
    with pytest.raises(live.ModelLoadError) as caught:
        live.load_model_file(path)
    assert str(caught.value) == f"cannot load model {path}: Could not locate function 'softmax_v2'"
    assert caught.value.tf_keras_error is None


def test_without_tf_keras_the_error_says_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from lossaudit.keras.live import ModelLoadError, load_model_file

    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object, **kwargs: object) -> object:
        return None if name == "tf_keras" else real_find_spec(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    path = MODELS / "tf_keras_tfop_softmax1.h5"
    with pytest.raises(ModelLoadError) as caught:
        load_model_file(path)
    assert str(caught.value) == (
        f"cannot load model {path}: Unknown layer: 'TFOpLambda' (it was written by Keras 2.21.0: "
        "install tf-keras to load it with tf_keras)"
    )


@pytest.mark.skipif(
    __import__("sys").version_info[:2] != (3, 11), reason="marshalled Lambda bytecode is per Python version"
)
def test_the_tf_keras_fallback_runs_no_lambda_without_unsafe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    from lossaudit.keras.live import ModelLoadError, head_from_model, load_model_file

    inputs = tf_keras.Input((4,))
    probabilities = tf.nn.softmax(tf_keras.layers.Dense(1)(inputs))  # Keras 3 cannot load it
    outputs = tf_keras.layers.Lambda(lambda t: t * 1.0, name="scale")(probabilities)
    saved = tf_keras.Model(inputs, outputs)
    saved.compile(loss="binary_crossentropy")
    path = tmp_path / "lambda.h5"
    saved.save(path)
    with pytest.raises(RefusedError):
        load_model_file(path)
    # Even when the caller's static read missed it, tf_keras loads in safe mode.
    with pytest.raises(ModelLoadError, match="tf_keras: Requested the deserialization of a Lambda layer"):
        load_model_file(path, lambda_layers=())
    model = load_model_file(path, unsafe=True)
    assert head_from_model(model).units == 1
    assert "WARNING: --unsafe: deserializing Lambda layer(s) scale" in capsys.readouterr().err


# --- inputs shaped as Keras shapes them -------------------------------------------------------------


def test_a_1d_x_is_fed_as_a_column_to_a_one_feature_model() -> None:
    import keras
    from lossaudit.keras.predict import conform_input, evaluate_live, predict_in_batches

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x = np.linspace(-2.0, 2.0, 50, dtype=np.float32)
    y = (x > 0.3).astype(np.float32)
    assert conform_input(model, x).shape == (50, 1)
    out = predict_in_batches(model, x, batch_size=16)
    assert out.shape == (50, 1)
    np.testing.assert_allclose(out, model.predict(x.reshape(-1, 1), verbose=0), atol=1e-6)
    evaluation = evaluate_live(model, x, y)
    assert evaluation.ran, evaluation.error
    expected = model.evaluate(x.reshape(-1, 1), y, return_dict=True, verbose=0)
    assert evaluation.values["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)
    # A trailing axis of 1 the model does not take is dropped, as Keras drops it.
    flat = keras.Sequential([keras.Input(()), keras.layers.Reshape((1,)), keras.layers.Dense(2)])
    assert conform_input(flat, x.reshape(-1, 1)).shape == (50,)
    # Other shapes are left for the shape check to refuse.
    four = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert conform_input(four, x) is x
    with pytest.raises(BadInputError, match=r"takes inputs of shape \(n, 4\) but x has shape \(50,\)"):
        predict_in_batches(four, x)


def test_a_1d_x_is_fed_as_a_column_to_a_tf_keras_model() -> None:
    tf_keras = pytest.importorskip("tf_keras")
    from lossaudit.keras.predict import predict_in_batches

    model = tf_keras.Sequential([tf_keras.Input((1,)), tf_keras.layers.Dense(2, activation="softmax")])
    x = np.linspace(-1.0, 1.0, 30, dtype=np.float32)
    out = predict_in_batches(model, x, batch_size=8)
    np.testing.assert_allclose(out, model.predict(x.reshape(-1, 1), verbose=0), atol=1e-6)
