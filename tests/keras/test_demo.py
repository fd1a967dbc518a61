"""Every seed scenario, run for real: exact finding codes, and numbers checked against scikit-learn.

Each scenario runs once per module (the same code ``lossaudit demo`` runs, same epochs); the
tests recompute what the scenario claims from its own labels and predictions with scikit-learn
and numpy, independently of lossaudit's recompute.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lossaudit.demo.harness import DemoSettings, ScenarioResult
from lossaudit.demo.scenarios import run_scenarios

pytestmark = pytest.mark.keras

SETTINGS = DemoSettings()


@pytest.fixture(scope="module")
def results() -> dict[str, ScenarioResult]:
    return {r.name: r for r in run_scenarios(None, SETTINGS)}


def _binary_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(np.asarray(y).ravel(), (np.asarray(p)[:, 0] > 0.5).astype(int)))


def _argmax_accuracy(y_index: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_index, np.asarray(p).argmax(axis=1)))


def test_every_scenario_reproduces(results: dict[str, ScenarioResult]) -> None:
    assert list(results) == [
        "bce-softmax-multiclass",
        "one-unit-cce",
        "one-unit-softmax",
        "label-loss-mismatch",
        "multi-label",
        "from-logits-mismatch",
    ]
    failed = {
        name: [c.description for case in r.cases for c in case.checks if not c.passed]
        for name, r in results.items()
        if not r.reproduced
    }
    assert failed == {}
    assert {name: r.codes for name, r in results.items()} == {
        "bce-softmax-multiclass": ("LA103", "LA401", "LA503"),
        "one-unit-cce": ("LA101", "LA501"),
        "one-unit-softmax": ("LA102", "LA501"),
        "label-loss-mismatch": ("LA201", "LA202"),
        "multi-label": ("LA105", "LA402", "LA503"),
        "from-logits-mismatch": ("LA302", "LA301"),
    }


def test_bce_softmax_keras3_accuracy_is_honest_argmax(results: dict[str, ScenarioResult]) -> None:
    from lossaudit.demo.harness import load_dataset

    case = results["bce-softmax-multiclass"].case("keras3")
    assert case.codes == ("LA103",)
    y_index = load_dataset("digits").y_eval
    assert case.y_eval is not None and np.array_equal(case.y_eval.argmax(axis=1), y_index)
    argmax = _argmax_accuracy(y_index, case.predictions)
    assert case.keras_reported["accuracy"] == pytest.approx(argmax, abs=1e-6)
    assert case.recomputed["accuracy"] == pytest.approx(argmax, abs=1e-12)
    assert case.built_metrics == (("accuracy", "CategoricalAccuracy"),)
    retrain = case.retrain
    assert retrain is not None and retrain.fix.loss == "categorical_crossentropy"
    assert retrain.after_accuracy == pytest.approx(
        _argmax_accuracy(y_index, retrain.after.predictions), abs=1e-12
    )


def test_bce_softmax_legacy_accuracy_is_elementwise_binary(results: dict[str, ScenarioResult]) -> None:
    from lossaudit.demo.legacy import unavailable_reason

    case = results["bce-softmax-multiclass"].case("legacy")
    assert case.codes == ("LA103", "LA401", "LA503")
    assert case.head.keras_family.value == "legacy"
    if unavailable_reason() is None:
        assert case.source.startswith("reproduced now: tf-keras")
    else:
        assert case.source.startswith("recorded on")
    y = case.y_eval
    p = case.predictions
    assert y is not None and p is not None and y.shape == p.shape == (540, 10)
    elementwise = float(np.mean((p > 0.5) == (y == 1)))
    argmax = _argmax_accuracy(y.argmax(axis=1), p)
    # tf-keras reported binary_accuracy over all 540 * 10 entries, not the task's argmax accuracy.
    assert case.keras_reported["accuracy"] == pytest.approx(elementwise, abs=1e-4)
    assert case.keras_reported["accuracy"] > argmax + 0.01
    assert case.recomputed["accuracy"] == pytest.approx(argmax, abs=1e-12)
    assert case.built_metrics == (("accuracy", "BinaryAccuracy"),)
    la503 = next(f for f in case.findings if f.code == "LA503")
    assert la503.evidence["matched"][0] == "elementwise_binary_0.5"
    assert la503.evidence["correct_value"] == pytest.approx(argmax, abs=1e-12)


def test_legacy_recording_audits_like_the_live_run() -> None:
    from lossaudit.core.audit import audit_predictions
    from lossaudit.core.compare import reported_from_mapping
    from lossaudit.demo.legacy import load_recorded
    from lossaudit.demo.scenarios import legacy_case

    run = load_recorded("bce-softmax-multiclass")
    assert not run.live and "not reproduced now" in run.source
    assert run.predictions is not None and run.y_eval is not None
    report = audit_predictions(
        run.head, run.y_eval, run.predictions, reported_from_mapping(run.reported, "recorded")
    )
    assert report.codes == ("LA103", "LA401", "LA503")
    elementwise = float(np.mean((run.predictions > 0.5) == (run.y_eval == 1)))
    assert run.reported["accuracy"] == pytest.approx(elementwise, abs=1e-4)
    assert run.fixed_reported["categorical_accuracy"] == pytest.approx(
        _argmax_accuracy(run.y_eval.argmax(axis=1), run.predictions), abs=1e-4
    )
    # Without tf-keras the demo says so and audits this recording.
    case = legacy_case(SETTINGS, None, "tf-keras is not installed")
    assert case.reproduced
    assert case.notes[0] == (
        "live legacy reproduction not run: tf-keras is not installed; audited the recorded run instead"
    )


def test_one_unit_cce_loss_is_zero_and_predictions_constant(results: dict[str, ScenarioResult]) -> None:
    (case,) = results["one-unit-cce"].cases
    assert case.codes == ("LA101", "LA501")
    retrain = case.retrain
    assert retrain is not None
    before = retrain.before
    assert before.history["loss"] == (0.0,) * 10
    assert before.max_weight_change is not None and before.max_weight_change > 0.1
    y = case.y_eval
    p = case.predictions
    assert y is not None and p is not None
    assert bool(np.all(p < 0.5))  # every sample predicted class 0
    negative_rate = float(np.mean(y == 0))
    assert case.recomputed["accuracy"] == pytest.approx(negative_rate, abs=1e-12)
    assert case.keras_reported["accuracy"] == pytest.approx(_binary_accuracy(y, p), abs=1e-6)
    assert retrain.proven
    after = _binary_accuracy(y, retrain.after.predictions)
    assert retrain.after_accuracy == pytest.approx(after, abs=1e-12) and after > 0.9
    assert retrain.summary == f"fix proven: accuracy {negative_rate:.3f} -> {after:.3f}"


def test_one_unit_softmax_outputs_one_and_scores_the_positive_rate(
    results: dict[str, ScenarioResult],
) -> None:
    (case,) = results["one-unit-softmax"].cases
    assert case.codes == ("LA102", "LA501")
    y, p = case.y_eval, case.predictions
    assert y is not None and p is not None
    assert float(np.abs(p - 1.0).max()) < 1.2e-7
    assert case.recomputed["accuracy"] == pytest.approx(float(np.mean(y == 1)), abs=1e-12)
    assert case.keras_reported["accuracy"] == pytest.approx(float(np.mean(y == 1)), abs=1e-6)
    assert any("always return the value 1" in w for w in case.keras_warnings)
    retrain = case.retrain
    assert retrain is not None and retrain.proven
    assert retrain.after_accuracy == pytest.approx(_binary_accuracy(y, retrain.after.predictions), abs=1e-12)


def test_label_loss_mismatch_keras_refuses_and_the_fix_trains(results: dict[str, ScenarioResult]) -> None:
    from lossaudit.demo.harness import load_dataset

    scenario = results["label-loss-mismatch"]
    index_case = scenario.case("index-labels-cce")
    one_hot_case = scenario.case("one-hot-labels-sparse")
    assert index_case.codes == ("LA201",)
    assert one_hot_case.codes == ("LA202",)
    assert index_case.keras_error is not None and "must have the same rank" in index_case.keras_error
    assert one_hot_case.keras_error is not None and "must have rank" in one_hot_case.keras_error
    y_index = load_dataset("digits").y_eval
    for case, loss in (
        (index_case, "sparse_categorical_crossentropy"),
        (one_hot_case, "categorical_crossentropy"),
    ):
        retrain = case.retrain
        assert retrain is not None and retrain.fix.loss == loss
        assert retrain.before.error == case.keras_error
        assert retrain.proven
        assert retrain.after_accuracy == pytest.approx(
            _argmax_accuracy(y_index, retrain.after.predictions), abs=1e-12
        )


def test_multi_label_softmax_and_the_argmax_accuracy_trap(results: dict[str, ScenarioResult]) -> None:
    from sklearn.metrics import accuracy_score, hamming_loss

    scenario = results["multi-label"]
    softmax_case = scenario.case("softmax-cce")
    trap = scenario.case("sigmoid-bce-accuracy")
    assert softmax_case.codes == ("LA105", "LA402", "LA503")
    assert trap.codes == ("LA402", "LA503")
    for case in (softmax_case, trap):
        y, p = case.y_eval, case.predictions
        assert y is not None and p is not None
        y = y.astype(int)
        hard = (p > 0.5).astype(int)
        assert case.recomputed["accuracy"] == pytest.approx(1 - hamming_loss(y, hard), abs=1e-12)
        assert case.recomputed["subset_accuracy"] == pytest.approx(accuracy_score(y, hard), abs=1e-12)
        # Keras's 'accuracy' was CategoricalAccuracy: argmax of the multi-hot row vs argmax of p.
        argmax = float(np.mean(y.argmax(axis=1) == p.argmax(axis=1)))
        assert case.keras_reported["accuracy"] == pytest.approx(argmax, abs=1e-6)
        assert case.built_metrics == (("accuracy", "CategoricalAccuracy"),)
    retrain = softmax_case.retrain
    assert retrain is not None and retrain.proven
    assert (retrain.fix.activation, retrain.fix.loss, retrain.fix.metrics) == (
        "sigmoid",
        "binary_crossentropy",
        ("binary_accuracy",),
    )
    y_after = retrain.after.y_eval
    assert y_after is not None
    per_label = float(np.mean((retrain.after.predictions > 0.5) == (y_after == 1)))
    assert retrain.after.keras_reported["binary_accuracy"] == pytest.approx(per_label, abs=1e-6)


def test_from_logits_mismatch(results: dict[str, ScenarioResult]) -> None:
    from lossaudit.demo.harness import load_dataset

    scenario = results["from-logits-mismatch"]
    linear = scenario.case("linear-from-logits-false")
    softmax = scenario.case("softmax-from-logits-true")
    assert linear.codes == ("LA302",)
    assert softmax.codes == ("LA301",)
    y_index = load_dataset("digits").y_eval
    assert linear.recomputed["accuracy"] == pytest.approx(
        _argmax_accuracy(y_index, linear.predictions), abs=1e-12
    )
    assert linear.retrain is not None and linear.retrain.proven
    assert linear.retrain.fix.from_logits is True
    assert any("from_logits=True" in w for w in softmax.keras_warnings)
    assert softmax.retrain is not None and softmax.retrain.fix.from_logits is False


GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"


def json_shape(value: Any) -> Any:
    """A JSON document's keys and value types: dicts keep their keys, lists their first item's
    shape, scalars become their JSON type's name."""
    if isinstance(value, dict):
        return {k: json_shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [json_shape(value[0])] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else "string"


def test_cli_demo_json_and_exit_codes(
    results: dict[str, ScenarioResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from lossaudit.cli import app
    from lossaudit.demo import scenarios

    # The module fixture already trained this scenario through run_scenarios, the function the
    # command calls; reuse it so the test checks the command's wiring, not a second training.
    calls: list[DemoSettings] = []

    def replay(settings: DemoSettings) -> ScenarioResult:
        calls.append(settings)
        return results["one-unit-softmax"]

    monkeypatch.setitem(scenarios.SCENARIOS, "one-unit-softmax", replay)
    runner = CliRunner()
    done = runner.invoke(app, ["demo", "--scenario", "one-unit-softmax", "--json"])
    assert done.exit_code == 0, done.output
    document: dict[str, Any] = json.loads(done.stdout)
    assert document["verdict"] == "pass"
    assert (document["reproduced"], document["scenarios_run"]) == (1, 1)
    assert [(f["scenario"], f["case"], f["code"]) for f in document["findings"]] == [
        ("one-unit-softmax", "keras3", "LA102"),
        ("one-unit-softmax", "keras3", "LA501"),
    ]
    # The document's shape (every key, each value's JSON type) is the committed one: a refactoring
    # that renames or drops a key, or turns a number into a string, fails here.
    golden = json.loads((GOLDEN / "demo-json-shape.json").read_text())
    assert json_shape(document) == golden
    (scenario,) = document["scenarios"]
    expected = results["one-unit-softmax"].cases[0]
    assert scenario["cases"][0]["recomputed"]["accuracy"] == pytest.approx(expected.recomputed["accuracy"])
    assert scenario["cases"][0]["retrain"]["summary"] == expected.retrain.summary  # type: ignore[union-attr]

    text = runner.invoke(app, ["demo", "--scenario", "one-unit-softmax"])
    assert text.exit_code == 0
    assert "== one-unit-softmax (seeds 001)" in text.stdout
    assert "findings: LA102 LA501" in text.stdout
    assert "1 of 1 scenario(s) reproduced" in text.stdout
    # The closing headed table: scenario, reproduced?, findings, the audited model's verdict.
    table = text.stdout.splitlines()[-3:-1]
    assert table[0].split() == ["scenario", "reproduced?", "findings", "audited", "model", "seconds"]
    assert table[1].split()[:5] == ["one-unit-softmax", "yes", "LA102,", "LA501", "fail"]

    assert calls == [DemoSettings(), DemoSettings()]
    runner.invoke(
        app, ["demo", "--scenario", "one-unit-softmax", "--epochs", "3", "--seed", "7", "--no-legacy"]
    )
    assert calls[-1] == DemoSettings(epochs=3, seed=7, legacy=False)

    unknown = runner.invoke(app, ["demo", "--scenario", "nope"])
    assert unknown.exit_code == 2
    assert "unknown scenario 'nope'" in unknown.stderr


def test_a_scenario_that_stops_reproducing_fails_the_demo(
    results: dict[str, ScenarioResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from typer.testing import CliRunner

    from lossaudit.cli import app
    from lossaudit.demo import scenarios
    from lossaudit.demo.render import demo_document

    real = results["one-unit-softmax"]
    # As if a Keras release fixed the 1-unit softmax: the expected LA501 would no longer appear.
    drifted_case = replace(real.cases[0], expected_codes=("LA102",))
    drifted = replace(real, cases=(drifted_case,))
    assert not drifted.reproduced
    document = demo_document([results["one-unit-cce"], drifted], 1.0)
    assert (document["verdict"], document["reproduced"], document["scenarios_run"]) == ("fail", 1, 2)

    monkeypatch.setitem(scenarios.SCENARIOS, "one-unit-softmax", lambda settings: drifted)
    done = CliRunner().invoke(app, ["demo", "--scenario", "one-unit-softmax"])
    assert done.exit_code == 1
    assert "NOT REPRODUCED" in done.stdout
    assert "findings: LA102 LA501 (expected LA102)" in done.stdout
    assert "0 of 1 scenario(s) reproduced" in done.stdout
