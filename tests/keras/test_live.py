"""Live introspection, loading and prediction of Keras models (lossaudit.keras.live / .predict)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lossaudit.core.head import KerasFamily, LossSpec
from lossaudit.errors import BadInputError
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
)


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
    # Files Keras 2 / tf-keras wrote are recompiled from training_config, and say so.
    assert bool(notes) == (name.startswith(("tf_keras", "keras224")))


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
    from lossaudit.pipeline.stages import LocalFileSource

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
