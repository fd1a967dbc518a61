"""Comparison with cause attribution, degenerate models, and the report's JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from lossaudit.core.audit import audit_predictions, check, head_for_predictions
from lossaudit.core.compare import (
    MIN_TOLERANCE,
    ReportedMetric,
    accuracy_definitions,
    base_metric_name,
    compare,
    tolerance_for_text,
)
from lossaudit.core.findings import Severity
from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import detect_labels, to_one_hot
from lossaudit.core.metrics import read_outputs, recompute
from lossaudit.core.report import SCHEMA_VERSION, AuditReport
from lossaudit.errors import BadInputError


def seed_ten_class() -> tuple[np.ndarray, np.ndarray]:
    """The seed's numbers exactly: 10 000 samples, 10 classes, argmax accuracy 0.9899 and
    elementwise binary accuracy 0.9979.

    9 891 samples put 0.91 on the true class (10 entries right each); 8 put 0.4 on the true class
    and 0.6 / 9 elsewhere (argmax right, one entry below 0.5: 1 wrong); 101 put 0.91 on a wrong
    class (argmax wrong, 2 entries wrong). Wrong entries: 8 + 202 = 210 of 100 000.
    """
    n, k = 10_000, 10
    y = np.arange(n) % k
    probs = np.full((n, k), 0.01)
    probs[np.arange(n), y] = 0.91
    low = np.arange(8)
    probs[low] = 0.6 / 9
    probs[low, y[low]] = 0.4
    wrong = np.arange(8, 109)
    probs[wrong, y[wrong]] = 0.01
    probs[wrong, (y[wrong] + 1) % k] = 0.91
    return to_one_hot(y, k), probs


def _compare(y: Any, predictions: np.ndarray, head: HeadSpec, *reported: str) -> tuple[Any, ...]:
    labels = detect_labels(y, units=head.units)
    outputs = read_outputs(predictions, head, labels)
    metrics = recompute(y, labels, outputs, head)
    return compare([ReportedMetric.parse(r) for r in reported], y, labels, outputs, head, metrics)


SOFTMAX_10 = HeadSpec.from_values(units=10, activation="softmax", loss="binary_crossentropy")


def test_seed_reported_accuracy_is_elementwise_binary() -> None:
    y, probs = seed_ten_class()
    (comp,) = _compare(y, probs, SOFTMAX_10, "accuracy=0.9979")
    argmax = accuracy_score(y.argmax(axis=1), probs.argmax(axis=1))
    assert argmax == 0.9899
    assert comp.status == "wrong_definition"
    assert comp.matches[0].key == "elementwise_binary_0.5"
    assert comp.matches[0].value == pytest.approx(0.9979, abs=1e-12)
    assert comp.correct is not None and comp.correct.key == "argmax"
    assert comp.correct.value == argmax
    assert comp.correct.keras == "categorical_accuracy"
    assert comp.difference == pytest.approx(0.0080, abs=1e-12)
    assert comp.explanation == (
        "reported accuracy 0.9979 matches elementwise binary accuracy at 0.5 over 10 outputs (0.9979); "
        "argmax accuracy is 0.9899; difference +0.0080"
    )
    assert comp.evidence()["matched"] == ["elementwise_binary_0.5"]


def test_seed_through_the_audit_api_is_la503() -> None:
    y, probs = seed_ten_class()
    report = audit_predictions(SOFTMAX_10, y, probs, [ReportedMetric.parse("val_accuracy=0.9979")])
    assert report.codes == ("LA103", "LA503")
    assert report.verdict == "fail"
    (la503,) = [f for f in report.findings if f.code == "LA503"]
    assert la503.evidence["correct_value"] == 0.9899
    assert report.metrics is not None and report.metrics.values["accuracy"] == 0.9899


def test_reported_argmax_accuracy_agrees() -> None:
    y, probs = seed_ten_class()
    (comp,) = _compare(y, probs, SOFTMAX_10, "categorical_accuracy=0.9899")
    assert comp.status == "agrees"
    assert comp.correct is not None and comp.matches[0] is comp.correct
    assert comp.explanation == "reported categorical_accuracy 0.9899 agrees with argmax accuracy (0.9899)"
    assert comp.difference == pytest.approx(0.0)


def test_unexplained_number_names_the_nearest() -> None:
    y, probs = seed_ten_class()
    (comp,) = _compare(y, probs, SOFTMAX_10, "accuracy=0.95")
    assert comp.status == "unexplained"
    assert comp.matches == ()
    assert comp.nearest is not None and comp.nearest.key == "argmax"
    assert (
        "deflated by -0.0399 against argmax accuracy (0.9899), beyond its precision (0.005)"
        in comp.explanation
    )


def test_accuracy_definitions_of_a_multiclass_head() -> None:
    y, probs = seed_ten_class()
    labels = detect_labels(y, units=10)
    defs = accuracy_definitions(y, labels, read_outputs(probs, SOFTMAX_10, labels), SOFTMAX_10)
    by_key = {d.key: d.value for d in defs}
    y_idx = y.argmax(axis=1)
    assert defs[0].key == "argmax"
    assert set(by_key) == {"argmax", "elementwise_binary_0.5", "top_2", "top_3", "top_5", "balanced"}
    assert by_key["balanced"] == pytest.approx(balanced_accuracy_score(y_idx, probs.argmax(axis=1)))
    assert by_key["argmax"] <= by_key["top_2"] <= by_key["top_3"] <= by_key["top_5"]
    assert by_key["elementwise_binary_0.5"] == pytest.approx(np.mean((probs > 0.5) == y))


def test_binary_logits_thresholded_at_half() -> None:
    """BinaryAccuracy's default 0.5 threshold applied to logits is a wrong definition."""
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0])
    logits = np.array([0.3, 0.2, 2.0, 1.5, -1.0, -2.0, 0.4, -0.5, 0.1, -0.3]).reshape(-1, 1)
    head = head_for_predictions(1, from_logits=True, multi_label=False)
    at_half = float(np.mean((logits[:, 0] > 0.5) == y))
    (comp,) = _compare(y, logits, head, f"binary_accuracy={at_half}")
    assert at_half == 0.7
    assert comp.status == "wrong_definition"
    assert comp.matches[0].key == "binary_0.5"
    assert comp.correct is not None and comp.correct.key == "binary_0"
    assert comp.correct.value == accuracy_score(y, (logits[:, 0] > 0).astype(int)) == 0.9


def test_multi_label_argmax_accuracy_is_attributed() -> None:
    """Keras 3 'accuracy' on multi-hot targets is CategoricalAccuracy: argmax against argmax."""
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    probs = np.array([[0.6, 0.2, 0.9], [0.1, 0.8, 0.3], [0.7, 0.6, 0.2], [0.6, 0.1, 0.2]])
    head = head_for_predictions(3, from_logits=False, multi_label=True)
    argmax = float(np.mean(probs.argmax(axis=1) == y.argmax(axis=1)))
    (comp,) = _compare(y, probs, head, f"accuracy={argmax}")
    assert argmax == 0.5
    assert comp.status == "wrong_definition"
    assert comp.matches[0].key == "argmax"
    assert comp.correct is not None and comp.correct.key == "hamming"
    assert comp.correct.value == pytest.approx(np.mean((probs > 0.5) == y)) == pytest.approx(10 / 12)


def test_one_unit_sparse_accuracy_is_the_share_of_class_zero() -> None:
    y = np.array([0, 1, 1, 1])
    probs = np.array([[0.2], [0.9], [0.8], [0.3]])
    head = head_for_predictions(1, from_logits=False, multi_label=False)
    (comp,) = _compare(y, probs, head, "accuracy=0.25")
    assert comp.status == "wrong_definition"
    assert comp.matches[0].key == "argmax_one_unit"
    assert comp.correct is not None and comp.correct.value == 0.75


def test_generic_metrics_match_their_averages() -> None:
    y, probs = seed_ten_class()
    y_idx, pred = y.argmax(axis=1), probs.argmax(axis=1)
    f1_macro = f1_score(y_idx, pred, average="macro")
    (f1, loss, unknown) = _compare(y, probs, SOFTMAX_10, f"val_f1={f1_macro:.6f}", "loss=0.02", "iou=0.5")
    assert f1.status == "agrees" and f1.matches[0].key == "f1_macro"
    assert loss.status == "not_compared" and "not recomputed" in loss.explanation
    assert unknown.status == "not_compared"
    assert unknown.explanation == "iou: lossaudit does not recompute this metric"


@pytest.mark.parametrize(
    ("text", "tolerance"),
    [
        ("0.9979", MIN_TOLERANCE),
        ("0.99", 0.005),
        ("0.9", 0.05),
        ("1", MIN_TOLERANCE),
        ("9.979e-1", MIN_TOLERANCE),
    ],
)
def test_tolerance_is_half_the_last_digit(text: str, tolerance: float) -> None:
    assert tolerance_for_text(text) == pytest.approx(tolerance)
    assert ReportedMetric.parse(f"acc={text}").tolerance == pytest.approx(tolerance)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accuracy", "--reported takes NAME=VALUE, got 'accuracy'"),
        ("=0.5", "--reported takes NAME=VALUE, got '=0.5'"),
        ("accuracy=high", "--reported accuracy: 'high' is not a number"),
        ("accuracy=nan", "--reported accuracy: 'nan' is not a finite number"),
    ],
)
def test_reported_parse_errors(text: str, message: str) -> None:
    with pytest.raises(BadInputError) as info:
        ReportedMetric.parse(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("name", "base"),
    [("val_accuracy", "accuracy"), ("test_acc", "acc"), ("Accuracy", "accuracy"), ("loss", "loss")],
)
def test_base_metric_name(name: str, base: str) -> None:
    assert base_metric_name(name) == base


def test_constant_predictions_are_a_finding() -> None:
    head = HeadSpec.from_values(units=3, activation="softmax", loss="sparse_categorical_crossentropy")
    y = np.array([0, 0, 0, 1, 2, 0])
    report = audit_predictions(head, y, np.tile([0.7, 0.2, 0.1], (6, 1)))
    assert report.codes == ("LA501",)
    (finding,) = report.findings
    assert finding.message == (
        "the model predicts class 0 for all 6 samples; accuracy 0.6667: "
        "it has learned nothing about the input."
    )


def test_accuracy_at_the_majority_baseline_is_a_finding() -> None:
    head = HeadSpec.from_values(units=3, activation="softmax", loss="sparse_categorical_crossentropy")
    y = np.array([0, 0, 0, 0, 1, 2])
    probs = to_one_hot([0, 0, 0, 0, 0, 1], 3) * 0.8 + 0.2 / 3  # two classes predicted, 4 of 6 right
    report = audit_predictions(head, y, probs)
    assert report.metrics is not None
    assert (
        report.metrics.values["accuracy"]
        == report.metrics.values["majority_baseline"]
        == pytest.approx(4 / 6)
    )
    assert report.codes == ("LA502",)
    assert report.verdict == "pass"  # a warning
    assert audit_predictions(head, y, probs, fail_on=Severity.WARNING).verdict == "fail"


def test_report_json_round_trip_with_schema_version() -> None:
    y, probs = seed_ten_class()
    report = audit_predictions(
        SOFTMAX_10, y, probs, [ReportedMetric.parse("accuracy=0.9979")], context={"run": "seed"}
    )
    doc = json.loads(report.to_json())
    assert doc["schema_version"] == SCHEMA_VERSION == "1.0"
    assert doc["tool"] == "lossaudit" and doc["command"] == "compare"
    assert doc["verdict"] == "fail"
    assert [(f["code"], f["severity"]) for f in doc["findings"]] == [("LA103", "warning"), ("LA503", "error")]
    assert doc["summary"] == {"info": 0, "warning": 1, "error": 1}
    assert doc["metrics"]["values"]["accuracy"] == 0.9899
    assert doc["comparisons"][0]["status"] == "wrong_definition"
    assert doc["comparisons"][0]["matches"][0]["value"] == pytest.approx(0.9979)
    assert doc["labels"]["encoding"] == "one_hot"
    assert doc["head"]["units"] == 10
    assert doc["context"] == {"run": "seed"}
    assert json.loads(json.dumps(doc)) == doc


def test_nan_and_infinity_become_null() -> None:
    head = HeadSpec.from_values(units=2, activation="softmax", loss="cce")
    report = check(
        head, context={"score": math.nan, "nested": {"values": [1.0, math.inf, np.float32("nan")]}}
    )
    text = report.to_json()
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    assert doc["context"] == {"score": None, "nested": {"values": [1.0, None, None]}}


def test_report_from_check_has_no_metrics() -> None:
    report = check(HeadSpec.from_values(units=1, activation="sigmoid", loss="categorical_crossentropy"))
    assert isinstance(report, AuditReport)
    doc = report.to_dict()
    assert doc["metrics"] is None and doc["comparisons"] == []
    assert doc["codes"] == ["LA101"]
    assert doc["findings"][0]["head_fix"] == {
        "activation": "sigmoid",
        "loss": "binary_crossentropy",
        "from_logits": False,
    }


def test_check_stops_on_unreadable_labels() -> None:
    head = HeadSpec.from_values(units=3, activation="softmax", loss="scce")
    with pytest.raises(BadInputError, match=r"^labels contain NaN in 1 row\(s\)$"):
        check(head, np.array([0.0, np.nan, 1.0]))
    # Readable but wrong labels are findings, not errors.
    assert check(head, [0, 1, 5]).codes == ("LA204",)


def test_where_a_run_metric_was_measured() -> None:
    from lossaudit.core.compare import OTHER_DATA, TRAINING_DATA, measured_on_for_run_metric

    for name in ("val_accuracy", "validation_acc", "eval_accuracy", "test_accuracy"):
        assert measured_on_for_run_metric(name) == OTHER_DATA
    for name in ("accuracy", "train_accuracy", "acc"):
        assert measured_on_for_run_metric(name) == TRAINING_DATA


def test_sampling_interval_is_wilson_without_the_other_size_and_two_sample_with_it() -> None:
    import math
    from statistics import NormalDist

    from lossaudit.core.compare import sampling_interval

    z = NormalDist().inv_cdf(0.975)
    p, n = 0.893, 360
    alone = sampling_interval(p, n, None, 0.05)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (alone.low, alone.high) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert (alone.low_95, alone.high_95) == (alone.low, alone.high)
    both = sampling_interval(p, n, 500, 0.001)
    pi = (p * n + 1) / (n + 2)
    half = NormalDist().inv_cdf(1 - 0.0005) * math.sqrt(pi * (1 - pi) * (1 / n + 1 / 500))
    assert (both.low, both.high) == pytest.approx((p - half, p + half), abs=1e-12)
    assert both.level == pytest.approx(0.999)
    assert "99.9% interval" in both.describe() and "95%:" in both.describe()
