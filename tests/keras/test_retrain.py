"""merge_fixes, judge and prove_fix: the retrain that proves (or does not prove) a fix."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lossaudit.core.audit import check, inspect_labels
from lossaudit.core.findings import Finding, Severity
from lossaudit.core.head import HeadFix, HeadSpec
from lossaudit.core.metrics import read_outputs, recompute
from lossaudit.errors import BadInputError
from lossaudit.keras.retrain import TrainedRun, describe_fix, judge, merge_fixes

SEED = 0


def _finding(code: str, severity: Severity, fix: HeadFix | None) -> Finding:
    return Finding(code, code.lower(), severity, "title", "message", "fix", fix)


# --- merge_fixes: no Keras -----------------------------------------------------------------------


def test_merge_fixes_combines_fields_and_errors_win_conflicts() -> None:
    findings = [
        _finding("LA402", Severity.WARNING, HeadFix(metrics=("binary_accuracy",))),
        _finding("LA104", Severity.WARNING, HeadFix(activation="softmax")),
        _finding("LA105", Severity.ERROR, HeadFix(activation="sigmoid", loss="binary_crossentropy")),
        _finding("LA305", Severity.INFO, HeadFix(loss="categorical_crossentropy")),
        _finding("LA501", Severity.ERROR, None),
    ]
    merged = merge_fixes(findings)
    assert merged == HeadFix(
        activation="sigmoid",
        loss="binary_crossentropy",
        metrics=("binary_accuracy",),
        notes=merged.notes,
    )
    assert merged.notes == (
        "LA105: activation=sigmoid, loss=binary_crossentropy",
        "LA402: metrics=[binary_accuracy]",
        "LA104 proposes activation=softmax; kept sigmoid from LA105",
    )
    assert describe_fix(merged) == "activation=sigmoid, loss=binary_crossentropy, metrics=[binary_accuracy]"


def test_merge_fixes_of_real_findings_and_of_none() -> None:
    head = HeadSpec.from_values(
        units=1, activation="softmax", loss="binary_crossentropy", metrics=["accuracy"]
    )
    merged = merge_fixes(check(head).findings)
    assert (merged.activation, merged.loss, merged.from_logits) == ("sigmoid", "binary_crossentropy", False)
    empty = merge_fixes([_finding("LA501", Severity.ERROR, None)])
    assert empty.is_empty()
    assert describe_fix(empty) == "no change"


def _run(y: np.ndarray, p: np.ndarray, head: HeadSpec, error: str | None = None) -> TrainedRun:
    labels = inspect_labels(y, head)
    metrics = recompute(y, labels, read_outputs(p, head, labels), head)
    return TrainedRun(head, {}, {}, None, None if error else metrics, error=error)


def test_judge_needs_a_clear_gain_and_to_beat_the_majority_baseline() -> None:
    head = HeadSpec.from_values(units=1, activation="sigmoid", loss="binary_crossentropy")
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])  # majority baseline 0.7
    constant = np.ones(10)  # accuracy 0.7
    good = np.array([0.1, 0.2, 0.9, 0.8, 0.9, 0.9, 0.8, 0.7, 0.9, 0.6])  # accuracy 0.9
    perfect = np.array([0.1, 0.2, 0.1, 0.8, 0.9, 0.9, 0.8, 0.7, 0.9, 0.6])  # accuracy 1.0
    assert judge(_run(y, constant, head), _run(y, good, head)) == (
        True,
        "fix proven: accuracy 0.700 -> 0.900",
    )
    proven, summary = judge(_run(y, good, head), _run(y, good, head))
    assert not proven
    assert summary == "not proven: accuracy 0.900 -> 0.900 (gain +0.000 < 0.020)"
    refused = _run(y, good, head, error="ValueError: ranks differ")
    assert judge(refused, _run(y, perfect, head)) == (
        True,
        "fix proven: before: Keras refused to train (ValueError); after: accuracy 1.000 "
        "(majority baseline 0.700)",
    )
    # Beating the original is not enough when the result is still the majority baseline.
    worse = np.zeros(10)  # accuracy 0.3
    proven, summary = judge(_run(y, worse, head), _run(y, constant, head))
    assert not proven
    assert summary == "not proven: accuracy 0.300 -> 0.700, not above the majority baseline 0.700"


# --- prove_fix: real training ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from lossaudit.demo.harness import load_dataset

    data = load_dataset("breast_cancer")
    return data.x_train, data.y_train, data.x_eval, data.y_eval


def _sequential(units: int, activation: str | None, loss: Any, *, softmax_layer: bool = False) -> Any:
    import keras

    keras.utils.set_random_seed(SEED)
    layers = [
        keras.Input((30,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(units, activation),
    ]
    if softmax_layer:
        layers.append(keras.layers.Softmax())
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss, metrics=["accuracy"])
    return model


@pytest.mark.keras
def test_prove_fix_one_unit_softmax_is_proven_and_deterministic(cancer: Any) -> None:
    from sklearn.metrics import accuracy_score

    from lossaudit.keras.retrain import prove_fix

    x_train, y_train, x_eval, y_eval = cancer
    model = _sequential(1, "softmax", "binary_crossentropy")
    fix = HeadFix(activation="sigmoid", loss="binary_crossentropy", from_logits=False)
    first = prove_fix(model, fix, x_train, y_train, x_eval, y_eval, epochs=3, seed=SEED)
    second = prove_fix(model, fix, x_train, y_train, x_eval, y_eval, epochs=3, seed=SEED)

    positive_rate = float(np.mean(y_eval == 1))
    assert first.before_accuracy == pytest.approx(positive_rate, abs=1e-12)
    assert first.before.metrics is not None and first.before.metrics.predicted_counts == (0, len(y_eval))
    after_pred = (first.after.predictions[:, 0] > 0.5).astype(int)
    assert first.after_accuracy == pytest.approx(accuracy_score(y_eval.ravel(), after_pred), abs=1e-12)
    assert first.after_accuracy is not None and first.after_accuracy > 0.9
    assert first.proven
    assert first.summary == f"fix proven: accuracy {positive_rate:.3f} -> {first.after_accuracy:.3f}"
    assert first.after.head.activation_chain == ("sigmoid",)
    assert (first.optimizer, first.learning_rate, first.epochs, first.seed) == ("Adam", 0.01, 3, SEED)
    # Same seed, same everything: the same numbers, loss curves included.
    assert second.before.history == first.before.history
    assert second.after.history == first.after.history
    assert second.after_accuracy == first.after_accuracy
    assert first.to_dict()["fix"] == {
        "activation": "sigmoid",
        "loss": "binary_crossentropy",
        "from_logits": False,
    }


@pytest.mark.keras
def test_prove_fix_over_seeds_needs_a_gain_beyond_their_spread(cancer: Any) -> None:
    from lossaudit.keras.retrain import prove_fix

    x_train, y_train, x_eval, y_eval = cancer
    model = _sequential(1, "softmax", "binary_crossentropy")
    fix = HeadFix(activation="sigmoid", loss="binary_crossentropy", from_logits=False)
    result = prove_fix(model, fix, x_train, y_train, x_eval, y_eval, epochs=2, seed=SEED, seeds=2)
    positive_rate = float(np.mean(y_eval == 1))
    # A 1-unit softmax is constant whatever the seed; the fixed sigmoid learns with each seed.
    assert result.before_seeds == pytest.approx((positive_rate, positive_rate), abs=1e-12)
    assert len(result.after_seeds) == 2 and all(a is not None and a > 0.9 for a in result.after_seeds)
    assert result.after_seeds[0] == result.after_accuracy
    after = [a for a in result.after_seeds if a is not None]
    assert result.gain_beyond_spread == pytest.approx(min(after) - positive_rate, abs=1e-12)
    assert result.proven and "over 2 seeds" in result.summary and "beyond the spread" in result.summary
    assert result.to_dict()["seeds"] == 2


@pytest.mark.keras
def test_prove_fix_drops_a_trailing_softmax_layer_of_a_functional_model(cancer: Any) -> None:
    import keras
    from lossaudit.keras.retrain import prove_fix

    x_train, y_train, x_eval, y_eval = cancer
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((30,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = keras.layers.Softmax()(keras.layers.Dense(1)(hidden))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    result = prove_fix(
        model,
        HeadFix(activation="sigmoid"),
        x_train,
        y_train,
        x_eval,
        y_eval,
        epochs=3,
        learning_rate=0.01,
    )
    assert result.before.head.activation_chain == ("linear", "softmax")
    assert result.after.head.activation_chain == ("sigmoid",)
    assert result.proven, result.summary


@pytest.mark.keras
def test_prove_fix_from_a_serialized_config_and_label_transforms() -> None:
    import keras
    from lossaudit.demo.harness import load_dataset, one_hot
    from lossaudit.keras.retrain import prove_fix

    digits = load_dataset("digits")
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])  # linear, from_logits=False
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False),
        metrics=["accuracy"],
    )
    config = keras.saving.serialize_keras_object(model)
    config["compile_config"] = model.get_compile_config()
    # The fix moves to categorical cross-entropy: index labels must become one-hot for it.
    fix = HeadFix(loss="categorical_crossentropy", from_logits=True)
    result = prove_fix(config, fix, digits.x_train, digits.y_train, digits.x_eval, digits.y_eval, epochs=3)
    assert result.after.label_transform == "one_hot"
    assert result.after.y_eval is not None and result.after.y_eval.shape == (len(digits.y_eval), 10)
    assert result.after.head.loss is not None and result.after.head.loss.from_logits
    argmax = float(np.mean(result.after.predictions.argmax(axis=1) == digits.y_eval))
    assert result.after_accuracy == pytest.approx(argmax, abs=1e-12)
    assert result.proven, result.summary

    # The reverse: one-hot labels, a fix to the sparse loss, argmax labels for the fixed model.
    keras.utils.set_random_seed(SEED)
    softmax = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    softmax.compile(
        optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    back = prove_fix(
        softmax,
        HeadFix(loss="sparse_categorical_crossentropy"),
        digits.x_train,
        one_hot(digits.y_train, 10),
        digits.x_eval,
        one_hot(digits.y_eval, 10),
        epochs=2,
    )
    assert back.after.label_transform == "index"
    assert back.after.y_eval is not None and back.after.y_eval.shape == (len(digits.y_eval),)
    assert back.after.error is None and back.before.error is None


@pytest.mark.keras
def test_prove_fix_refuses_bad_input_with_one_line(cancer: Any) -> None:
    import keras
    from lossaudit.keras.retrain import prove_fix

    x_train, y_train, x_eval, y_eval = cancer
    fix = HeadFix(activation="sigmoid")
    model = _sequential(1, "softmax", "binary_crossentropy")
    with pytest.raises(BadInputError, match="epochs must be an integer"):
        prove_fix(model, fix, x_train, y_train, x_eval, y_eval, epochs=0)
    with pytest.raises(BadInputError, match="training features have 398 rows but labels have shape"):
        prove_fix(model, fix, x_train, y_train[:10], x_eval, y_eval, epochs=1)
    bad = x_eval.copy()
    bad[3, 2] = np.nan
    with pytest.raises(BadInputError, match="eval features contain NaN"):
        prove_fix(model, fix, x_train, y_train, bad, y_eval, epochs=1)
    uncompiled = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")])
    with pytest.raises(BadInputError, match="not compiled with a loss"):
        prove_fix(uncompiled, fix, x_train, y_train, x_eval, y_eval, epochs=1)
    dropout_head = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1), keras.layers.Dropout(0.1)])
    dropout_head.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(BadInputError, match="the output layer is Dropout"):
        prove_fix(dropout_head, fix, x_train, y_train, x_eval, y_eval, epochs=1)
    with pytest.raises(BadInputError, match="expected a Keras model or its serialized config"):
        prove_fix("model.keras", fix, x_train, y_train, x_eval, y_eval, epochs=1)
