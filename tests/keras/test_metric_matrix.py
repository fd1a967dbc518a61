"""The configuration matrix as a test, with Keras 3 as the oracle.

Every combination of label encoding x output units x last activation x cross-entropy loss x
from_logits is compiled with ``metrics=['accuracy']`` on a tiny ``Input(4) -> Dense(units,
activation)`` model and run on one batch of 8 samples. Then:

* where Keras accepts it, the class lossaudit's rules predict (``resolve_metric``) is the class
  Keras 3 built, and the number Keras reports is the value lossaudit's definition for that class
  computes from the same outputs;
* where Keras refuses it (exactly the cells :func:`expected_refusal` names, for the reason it
  gives), lossaudit fires the error-severity finding that names that reason;
* on a correct configuration (:func:`correct_findings`) no error fires, and the only warnings are
  the two real accuracy traps (LA403, LA402);
* on every accepted configuration LA403 and LA402 fire exactly where Keras built the trap;
* on every accepted configuration, lossaudit's one pass (``predict_and_evaluate``: the compiled
  loss and metric objects fed the predictions batch by batch) reports the numbers Keras reported;
  on one refused configuration per reason it records the refusal and still returns the predictions.

The Keras work is done once per module (``keras_matrix``): one model per (units, activation),
recompiled per cell and run with ``test_on_batch`` eagerly, about 20 ms a cell against 250 ms for a
graph-mode ``evaluate``. ``test_graph_mode_evaluate_agrees_with_the_matrix`` re-runs one cell of
every outcome with a plain ``model.evaluate`` (graph mode, as users run it) to show that the
shortcut changes nothing, and the one pass in graph mode on each accepted one of them.

``python tests/keras/test_metric_matrix.py`` prints the whole matrix as a Markdown table.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from lossaudit.core.audit import check
from lossaudit.core.compare import accuracy_definitions
from lossaudit.core.findings import Finding, Severity
from lossaudit.core.head import HeadSpec, snake_case
from lossaudit.core.labels import detect_labels
from lossaudit.core.metrics import read_outputs
from lossaudit.core.resolution import (
    BINARY_ACCURACY,
    CATEGORICAL_ACCURACY,
    SPARSE_CATEGORICAL_ACCURACY,
    resolve_metric,
)

pytestmark = pytest.mark.keras

N_SAMPLES = 8
N_FEATURES = 4
K = 3
"""The multi-class width: units take the values 1, 2 and K."""

ENCODINGS = ("index", "binary", "binary_column", "one_hot", "multi_hot")
UNITS = (1, 2, K)
ACTIVATIONS = ("softmax", "sigmoid", "linear")
LOSSES = {
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "scce": "sparse_categorical_crossentropy",
}
FROM_LOGITS = (True, False)

ONE_LABEL_PER_SAMPLE = frozenset({"index", "binary", "binary_column"})
"""Encodings with one label per sample, (n,) or (n, 1): the form sparse losses take."""

BINARY_PATTERN = np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=np.int64)
# Rows with no, one, two and three positives; the first u columns are the u-unit multi-hot labels
# (two columns still have rows with both positives, one column is a plain 0/1 column).
MULTI_HOT_PATTERN = np.array(
    [[1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0], [0, 1, 1]],
    dtype=np.float32,
)
ARGMAX_CLASSES = frozenset({CATEGORICAL_ACCURACY, SPARSE_CATEGORICAL_ACCURACY})


@dataclass(frozen=True)
class Cell:
    """One configuration of the matrix."""

    encoding: str
    units: int
    activation: str
    loss: str
    """A key of LOSSES."""
    from_logits: bool

    @property
    def id(self) -> str:
        logits = "logits" if self.from_logits else "probs"
        return f"{self.encoding}-u{self.units}-{self.activation}-{self.loss}-{logits}"

    @property
    def one_label_per_sample(self) -> bool:
        """Labels of width 1: the sparse encodings, and every encoding on a 1-unit head."""
        return self.encoding in ONE_LABEL_PER_SAMPLE or self.units == 1

    def labels(self) -> np.ndarray:
        """The labels of this encoding, built to fit the head's units."""
        if self.encoding == "index":
            # Class indices of a max(units, 2)-class task: a 1-unit head is a 2-class task.
            return np.arange(N_SAMPLES, dtype=np.int64) % max(self.units, 2)
        if self.encoding == "binary":
            return BINARY_PATTERN.copy()
        if self.encoding == "binary_column":
            return BINARY_PATTERN.reshape(-1, 1).copy()
        if self.encoding == "one_hot":
            # On a 1-unit head the only one-hot row is [1]: a column of ones.
            return np.eye(self.units, dtype=np.float32)[np.arange(N_SAMPLES) % self.units]
        if self.encoding == "multi_hot":
            return MULTI_HOT_PATTERN[:, : self.units].copy()
        raise AssertionError(f"unknown encoding {self.encoding}")

    def head(self) -> HeadSpec:
        return HeadSpec.from_values(
            units=self.units,
            activation=self.activation,
            loss=LOSSES[self.loss],
            from_logits=self.from_logits,
            metrics=("accuracy",),
            keras_family="keras3",
        )

    def findings(self) -> tuple[Finding, ...]:
        return check(self.head(), self.labels()).findings


CELLS = tuple(
    Cell(encoding, units, activation, loss, from_logits)
    for units, activation, encoding, loss, from_logits in itertools.product(
        UNITS, ACTIVATIONS, ENCODINGS, LOSSES, FROM_LOGITS
    )
)


def expected_refusal(cell: Cell) -> tuple[str, str] | None:
    """Where Keras 3 refuses a cell: (a fragment of its error, the lossaudit code naming why).

    None where Keras runs it. This is the model of Keras 3's loss shape checks that the oracle
    confirms cell by cell: accepted cells in ``test_keras_builds_the_accuracy_lossaudit_predicts``,
    refused ones in ``test_refused_configuration_gets_the_error_that_names_why``.
    """
    if cell.loss == "scce" and cell.units == 1:
        # Sparse cross-entropy over a single output knows only class 0; label 1 is out of range.
        return "outside the valid range", "LA101"
    if cell.loss == "scce" and not cell.one_label_per_sample:
        return "`target.ndim - 1`", "LA202"
    if cell.units > 1 and cell.one_label_per_sample and cell.loss == "cce":
        return "must have the same", "LA201"
    if cell.units > 1 and cell.one_label_per_sample and cell.loss == "bce":
        return "must have the same", "LA203"
    return None


def correct_findings(cell: Cell) -> frozenset[str] | None:
    """The exact findings a correct configuration gets; None for a configuration that is not correct.

    Correct means the labels, the head and the loss are one of the standard pairings and the loss
    reads the output as what it is (probabilities from softmax/sigmoid with from_logits=False,
    logits from a linear output with from_logits=True):

    * 1 unit, 0/1 labels ((n,) or (n, 1)), binary cross-entropy, sigmoid or logits;
    * K >= 2 units, class indices ((n,) or (n, 1)), sparse categorical cross-entropy, softmax or
      logits;
    * K >= 2 units, one-hot rows, categorical cross-entropy, softmax or logits;
    * 2 units, one-hot rows, binary cross-entropy on a softmax: with p1 = 1 - p0 and y1 = 1 - y0 the
      mean over the two outputs equals categorical cross-entropy term for term;
    * K >= 2 units, multi-hot rows, binary cross-entropy, sigmoid or logits.

    The warnings they may get are the accuracy traps, and only where Keras builds them: LA403
    (BinaryAccuracy thresholds a 1-unit logit at 0.5) and LA402 (multi-hot labels of width K get
    argmax CategoricalAccuracy).
    """
    probabilities = cell.activation in ("softmax", "sigmoid") and not cell.from_logits
    logits = cell.activation == "linear" and cell.from_logits
    softmax = probabilities and cell.activation == "softmax"
    softmax_or_logits = softmax or logits
    sigmoid_or_logits = logits or (probabilities and cell.activation == "sigmoid")
    if cell.units == 1:
        if cell.encoding in ONE_LABEL_PER_SAMPLE and cell.loss == "bce" and sigmoid_or_logits:
            return frozenset({"LA403"}) if logits else frozenset()
        return None
    if cell.encoding in ONE_LABEL_PER_SAMPLE and cell.loss == "scce" and softmax_or_logits:
        return frozenset()
    if cell.encoding == "one_hot" and cell.loss == "cce" and softmax_or_logits:
        return frozenset()
    if cell.encoding == "one_hot" and cell.units == 2 and cell.loss == "bce" and softmax:
        return frozenset()
    if cell.encoding == "multi_hot" and cell.loss == "bce" and sigmoid_or_logits:
        return frozenset({"LA402"})
    return None


ACCEPTED = tuple(c for c in CELLS if expected_refusal(c) is None)
REFUSED = tuple(c for c in CELLS if expected_refusal(c) is not None)
CORRECT = tuple(c for c in CELLS if correct_findings(c) is not None)
ONE_PASS = ACCEPTED + tuple(
    {code: c for c in reversed(REFUSED) if (code := expected_refusal(c)) is not None}.values()
)
"""Where the one pass is held against Keras: every accepted cell, and one refused cell per reason
(the refusal is Keras's own error, raised the same way whatever the cell)."""


def _params(cells: Iterable[Cell]) -> list[Any]:
    return [pytest.param(c, id=c.id) for c in cells]


# --- the oracle ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class KerasOutcome:
    """What Keras 3 did with one cell."""

    built: str | None
    """Class of the metric Keras built for 'accuracy'; None when it refused the cell."""
    reported: float | None
    """The 'accuracy' Keras reported on the batch."""
    refusal: str | None
    """``ExceptionType: message`` (whitespace collapsed) when Keras refused the cell."""
    outputs: np.ndarray
    """The model's outputs on the batch (every cell of one (units, activation) shares the model)."""
    logs: dict[str, float] | None = None
    """Every number Keras reported (loss and accuracy); None when it refused the cell."""
    one_pass: Any = None
    """lossaudit's ``predict_and_evaluate`` on the same compiled model: (predictions, LiveEvaluation)."""


def features() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N_SAMPLES, N_FEATURES)).astype(np.float32)


def _keras_loss(keras: Any, cell: Cell) -> Any:
    classes = {
        "bce": keras.losses.BinaryCrossentropy,
        "cce": keras.losses.CategoricalCrossentropy,
        "scce": keras.losses.SparseCategoricalCrossentropy,
    }
    return classes[cell.loss](from_logits=cell.from_logits)


def _tiny_model(keras: Any, units: int, activation: str) -> Any:
    inputs = keras.Input(shape=(N_FEATURES,))
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation)(inputs))


def _built_accuracy_class(model: Any) -> str:
    """The class Keras built for 'accuracy' (Keras 3 private API).

    keras/src/trainers/compile_utils.py: ``CompileMetrics.metrics`` lists the built metric objects
    (``_flat_metrics`` unpacked from their ``MetricsList``), empty until the first batch.
    """
    built = list(model._compile_metrics.metrics)
    names = [m.name for m in built]
    assert names == ["accuracy"], f"expected one built metric named 'accuracy', got {names}"
    return type(built[0]).__name__


def _refusal_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


ONE_PASS_BATCH = N_SAMPLES
"""The one pass runs the 8 samples as one batch, as Keras ran them (one eager step a cell: the
weighting over several batches is tested in ``test_one_pass.py``)."""


def _run_cell(
    model: Any, keras: Any, cell: Cell, x: np.ndarray, *, graph_evaluate: bool, one_pass: bool = True
) -> KerasOutcome:
    from lossaudit.keras.predict import predict_and_evaluate

    with warnings.catch_warnings():
        # Keras warns (but runs) on a softmax over one unit and on categorical losses over one unit.
        warnings.simplefilter("ignore")
        outputs = np.asarray(keras.ops.convert_to_numpy(model(x)))
        refusal = built = None
        logs: dict[str, float] | None = None
        try:
            if graph_evaluate:
                model.compile(loss=_keras_loss(keras, cell), metrics=["accuracy"])
                raw = model.evaluate(x, cell.labels(), batch_size=N_SAMPLES, verbose=0, return_dict=True)
            else:
                model.compile(loss=_keras_loss(keras, cell), metrics=["accuracy"], run_eagerly=True)
                raw = model.test_on_batch(x, cell.labels(), return_dict=True)
            logs = {str(k): float(v) for k, v in raw.items()}
            built = _built_accuracy_class(model)
        except Exception as exc:  # Keras refusing the configuration is the outcome under test
            refusal = _refusal_text(exc)
        ours = predict_and_evaluate(model, x, cell.labels(), batch_size=ONE_PASS_BATCH) if one_pass else None
    reported = None if logs is None else logs["accuracy"]
    return KerasOutcome(built, reported, refusal, outputs, logs, ours)


def run_keras_matrix(cells: Iterable[Cell]) -> dict[Cell, KerasOutcome]:
    """Compile and run every cell on Keras 3; one model per (units, activation)."""
    import keras

    keras.utils.set_random_seed(0)
    x = features()
    groups: dict[tuple[int, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.units, cell.activation), []).append(cell)
    outcomes: dict[Cell, KerasOutcome] = {}
    for (units, activation), group in groups.items():
        model = _tiny_model(keras, units, activation)
        for cell in group:
            outcomes[cell] = _run_cell(model, keras, cell, x, graph_evaluate=False, one_pass=cell in ONE_PASS)
    return outcomes


@pytest.fixture(scope="module")
def keras_matrix() -> dict[Cell, KerasOutcome]:
    return run_keras_matrix(CELLS)


def _codes(findings: Iterable[Finding], severity: Severity | None = None) -> set[str]:
    return {f.code for f in findings if severity is None or f.severity is severity}


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", _params(ACCEPTED))
def test_keras_builds_the_accuracy_lossaudit_predicts(
    cell: Cell, keras_matrix: dict[Cell, KerasOutcome]
) -> None:
    outcome = keras_matrix[cell]
    assert outcome.built is not None and outcome.reported is not None, (
        f"Keras 3 refused a cell modelled as accepted: {outcome.refusal}"
    )
    y = cell.labels()
    head = cell.head()
    labels = detect_labels(y, cell.units)
    resolution = resolve_metric("accuracy", head, labels)
    assert resolution.resolved == outcome.built, (
        f"lossaudit predicts {resolution.resolved} ({resolution.because}); Keras 3 built {outcome.built}"
    )
    assert not resolution.labels_assumed
    assert resolution.threshold == (0.5 if outcome.built == BINARY_ACCURACY else None)
    # The number Keras reported is the one lossaudit's definition for that class computes.
    definitions = accuracy_definitions(y, labels, read_outputs(outcome.outputs, head, labels), head)
    same_class = [d for d in definitions if d.keras == snake_case(outcome.built)]
    assert same_class, f"no lossaudit definition computes {outcome.built}: {[d.key for d in definitions]}"
    values = {d.key: d.value for d in same_class}
    assert any(abs(v - outcome.reported) < 1e-6 for v in values.values()), (
        f"Keras reported {outcome.reported}; lossaudit's {outcome.built} definitions give {values}"
    )


@pytest.mark.parametrize("cell", _params(REFUSED))
def test_refused_configuration_gets_the_error_that_names_why(
    cell: Cell, keras_matrix: dict[Cell, KerasOutcome]
) -> None:
    refusal = keras_matrix[cell].refusal
    assert refusal is not None, f"Keras 3 accepted it and built {keras_matrix[cell].built}"
    expected = expected_refusal(cell)
    assert expected is not None
    fragment, code = expected
    assert fragment in refusal, f"Keras 3 refused for another reason: {refusal}"
    findings = cell.findings()
    assert code in _codes(findings, Severity.ERROR), f"no {code} among {sorted(_codes(findings))}"


@pytest.mark.parametrize("cell", _params(CORRECT))
def test_correct_configuration_has_no_error_and_only_real_trap_warnings(
    cell: Cell, keras_matrix: dict[Cell, KerasOutcome]
) -> None:
    assert keras_matrix[cell].refusal is None, keras_matrix[cell].refusal
    findings = cell.findings()
    assert not _codes(findings, Severity.ERROR)
    assert _codes(findings) == correct_findings(cell)


@pytest.mark.parametrize("cell", _params(ACCEPTED))
def test_accuracy_trap_warnings_fire_exactly_where_keras_built_the_trap(
    cell: Cell, keras_matrix: dict[Cell, KerasOutcome]
) -> None:
    built = keras_matrix[cell].built
    assert built is not None, keras_matrix[cell].refusal
    # The traps, judged from what Keras built, not from lossaudit's prediction: BinaryAccuracy's
    # 0.5 threshold applied to a linear output, and argmax accuracy on labels with several positives.
    threshold_on_logits = built == BINARY_ACCURACY and cell.activation == "linear"
    argmax_on_multi_label = built in ARGMAX_CLASSES and cell.encoding == "multi_hot"
    codes = _codes(cell.findings())
    assert ("LA403" in codes) == threshold_on_logits, sorted(codes)
    assert ("LA402" in codes) == argmax_on_multi_label, sorted(codes)


def _one_pass_disagreements(cell: Cell, outcome: KerasOutcome) -> list[str]:
    """How lossaudit's one pass on the cell's compiled model differs from what Keras reported."""
    predictions, evaluation = outcome.one_pass
    problems = []
    if not np.allclose(predictions, outcome.outputs, rtol=0, atol=1e-6):
        problems.append(f"{cell.id}: one-pass predictions differ from the model's outputs")
    if outcome.logs is None:
        if evaluation.error is None:
            problems.append(f"{cell.id}: Keras refused ({outcome.refusal}); the one pass reported numbers")
        return problems
    if evaluation.error is not None:
        problems.append(f"{cell.id}: the one pass refused ({evaluation.error}); Keras ran")
    elif set(evaluation.values) != set(outcome.logs):
        problems.append(
            f"{cell.id}: one pass reported {sorted(evaluation.values)}, Keras {sorted(outcome.logs)}"
        )
    else:
        off = {
            name: (evaluation.values[name], value)
            for name, value in outcome.logs.items()
            if not np.isclose(evaluation.values[name], value, rtol=1e-5, atol=0)
        }
        if off:
            problems.append(f"{cell.id}: (one pass, Keras) differ: {off}")
    return problems


@pytest.mark.parametrize("cell", _params(ONE_PASS))
def test_one_pass_reports_what_keras_reports(cell: Cell, keras_matrix: dict[Cell, KerasOutcome]) -> None:
    problems = _one_pass_disagreements(cell, keras_matrix[cell])
    assert not problems, "\n".join(problems)


def _outcome_cover(keras_matrix: dict[Cell, KerasOutcome]) -> list[Cell]:
    """One cell per (label shape, outcome): every built class and refusal reason, for (n,), (n, 1)
    and (n, K) labels. Keras decides both from shapes (and, for sparse losses, label values)."""
    cover: dict[tuple[str, str], Cell] = {}
    for cell in CELLS:
        y = cell.labels()
        shape = "(n,)" if y.ndim == 1 else "(n, 1)" if y.shape[1] == 1 else "(n, K)"
        refusal = expected_refusal(cell)
        outcome = refusal[1] if refusal else str(keras_matrix[cell].built)
        cover.setdefault((shape, outcome), cell)
    return list(cover.values())


def test_graph_mode_evaluate_agrees_with_the_matrix(keras_matrix: dict[Cell, KerasOutcome]) -> None:
    import keras

    keras.utils.set_random_seed(0)
    x = features()
    cover = _outcome_cover(keras_matrix)
    disagreements = []
    for cell in cover:
        # A fresh model per cell: one graph per model, no retracing of a shared test function.
        # The one pass (a graph of its own) runs on the accepted cells only.
        graph = _run_cell(
            _tiny_model(keras, cell.units, cell.activation),
            keras,
            cell,
            x,
            graph_evaluate=True,
            one_pass=expected_refusal(cell) is None,
        )
        if graph.one_pass is not None:
            disagreements += _one_pass_disagreements(cell, graph)
        eager = keras_matrix[cell]
        same_refusal = (graph.refusal is None) == (eager.refusal is None)
        if graph.built != eager.built or not same_refusal:
            disagreements.append(f"{cell.id}: evaluate {graph.built or graph.refusal}; matrix {eager.built}")
        expected = expected_refusal(cell)
        if expected is not None and (graph.refusal is None or expected[0] not in graph.refusal):
            disagreements.append(f"{cell.id}: evaluate refused otherwise: {graph.refusal}")
    assert not disagreements, "\n".join(disagreements)


# --- the table -------------------------------------------------------------------------------


def _short_refusal(refusal: str) -> str:
    for fragment, text in (
        ("outside the valid range", "label index out of range"),
        ("`target.ndim - 1`", "sparse loss given rows"),
        ("must have the same rank", "label rank differs"),
        ("must have the same shape", "label shape differs"),
    ):
        if fragment in refusal:
            return f"refused: {text} ({refusal.split(':', 1)[0]})"
    return "refused: " + refusal[:60]


def matrix_table(outcomes: dict[Cell, KerasOutcome]) -> str:
    """The matrix as a Markdown table, with a summary line."""
    header = (
        "| labels | shape | units | activation | loss | from_logits | Keras 3 | lossaudit predicts "
        "| errors | warnings | correct |"
    )
    rows = [header, "|" + "---|" * 11]
    agree = errors_on_refused = 0
    for cell, outcome in outcomes.items():
        y = cell.labels()
        findings = cell.findings()
        predicted = resolve_metric("accuracy", cell.head(), detect_labels(y, cell.units)).resolved
        errors = sorted(_codes(findings, Severity.ERROR))
        if outcome.refusal is None:
            keras_text = str(outcome.built)
            agree += predicted == outcome.built
        else:
            keras_text = _short_refusal(outcome.refusal)
            errors_on_refused += bool(errors)
        rows.append(
            f"| {cell.encoding} | {tuple(y.shape)} | {cell.units} | {cell.activation} | {cell.loss} "
            f"| {cell.from_logits} | {keras_text} | {predicted} | {' '.join(errors)} "
            f"| {' '.join(sorted(_codes(findings, Severity.WARNING)))} "
            f"| {'yes' if correct_findings(cell) is not None else ''} |"
        )
    accepted = sum(o.refusal is None for o in outcomes.values())
    refused = len(outcomes) - accepted
    rows.append("")
    rows.append(
        f"{len(outcomes)} configurations: Keras 3 accepted {accepted}, refused {refused}. "
        f"Predicted metric class equals the built one on {agree}/{accepted}; "
        f"an error finding on {errors_on_refused}/{refused} refused; "
        f"{sum(correct_findings(c) is not None for c in outcomes)} correct configurations."
    )
    return "\n".join(rows)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}")
    print(matrix_table(run_keras_matrix(CELLS)))


if __name__ == "__main__":
    main()
