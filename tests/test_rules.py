"""The rule catalogue as a whole: every rule fires on its case and stays quiet on a near miss.

Each case is a head plus what the other stages found (labels, prediction facts, comparisons, built
metrics, data checks), and the exact set of codes the whole catalogue reports for it. A rule in
RULES without a firing case or a quiet case in the tables below fails ``test_every_rule_has_cases``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from lossaudit.core.catalogue import RULES, RULES_BY_CODE, find_rule
from lossaudit.core.compare import Comparison, Definition
from lossaudit.core.findings import (
    AuditFacts,
    DataCheck,
    OutputFacts,
    PredictionFacts,
    Severity,
    StageFailure,
    ThresholdCheck,
    TrainingFacts,
    run_rules,
    verdict,
)
from lossaudit.core.head import HeadSpec, KerasFamily
from lossaudit.core.labels import detect_labels


@dataclass(frozen=True)
class Case:
    """A head and, optionally, raw labels and the facts later stages would add."""

    units: int
    activation: str | None = None
    loss: str | None = None
    from_logits: bool = False
    metrics: tuple[str, ...] = ()
    family: str = "keras3"
    chain: tuple[str, ...] | None = None
    y: Any = None
    predictions: PredictionFacts | None = None
    comparisons: tuple[Comparison, ...] = ()
    built: tuple[tuple[str, str], ...] | None = None
    checks: tuple[DataCheck, ...] = field(default=())
    thresholds: tuple[ThresholdCheck, ...] = field(default=())
    source: str = "flags"
    outputs: OutputFacts | None = None
    failed: tuple[StageFailure, ...] = ()
    training: TrainingFacts | None = None

    def head(self) -> HeadSpec:
        return HeadSpec.from_values(
            units=self.units,
            activation=self.activation,
            loss=self.loss,
            from_logits=self.from_logits,
            metrics=self.metrics,
            keras_family=self.family,
            activation_chain=self.chain,
            source=self.source,
        )

    def facts(self, head: HeadSpec | None = None) -> AuditFacts:
        head = head or self.head()
        return AuditFacts(
            head=head,
            labels=None if self.y is None else detect_labels(self.y, units=head.units),
            predictions=self.predictions,
            comparisons=self.comparisons,
            built_metrics=self.built,
            data_checks=self.checks,
            thresholds=self.thresholds,
            outputs=self.outputs,
            failed_stages=self.failed,
            training=self.training,
        )


def codes(case: Case, head: HeadSpec | None = None) -> set[str]:
    return {f.code for f in run_rules(RULES, case.facts(head))}


ONE_HOT_3 = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]]
ONE_HOT_4 = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
MULTI_HOT_3 = [[1, 1, 0], [0, 1, 0], [1, 0, 1], [0, 0, 0]]
MULTI_HOT_5 = [[1, 1, 0, 0, 0], [0, 1, 0, 0, 1], [0, 0, 0, 1, 0]]


def softmax_cce(**facts: Any) -> Case:
    """A correct 3-class softmax head with categorical cross-entropy, plus what later stages saw."""
    return Case(3, "softmax", "categorical_crossentropy", **facts)


def _comparison(status: str) -> Comparison:
    argmax = Definition("argmax", "argmax accuracy", 0.9899, "categorical_accuracy")
    elementwise = Definition(
        "elementwise_binary_0.5", "elementwise binary accuracy", 0.9979, "binary_accuracy"
    )
    matches = (elementwise,) if status == "wrong_definition" else (argmax,) if status == "agrees" else ()
    return Comparison(
        metric="accuracy",
        reported=0.9979 if status != "agrees" else 0.9899,
        source="user",
        status=status,
        explanation=f"test comparison ({status})",
        tolerance=1e-4,
        correct=argmax,
        matches=matches,
        nearest=elementwise,
    )


def _predicted(counts: tuple[int, ...], accuracy: float, baseline: float) -> PredictionFacts:
    return PredictionFacts("multiclass", sum(counts), counts, accuracy, baseline)


# code -> [(case id, case, every code the catalogue reports for it)]
FIRING: dict[str, list[tuple[str, Case, set[str]]]] = {
    "LA101": [
        ("sigmoid-cce", Case(1, "sigmoid", "categorical_crossentropy"), {"LA101"}),
        ("logits-cce", Case(1, "linear", "categorical_crossentropy", from_logits=True), {"LA101"}),
        ("sigmoid-scce", Case(1, "sigmoid", "sparse_categorical_crossentropy", y=[0, 1, 1]), {"LA101"}),
    ],
    "LA102": [
        ("softmax-bce", Case(1, "softmax", "binary_crossentropy"), {"LA102"}),
        ("softmax-cce", Case(1, "softmax", "categorical_crossentropy"), {"LA101", "LA102"}),
    ],
    "LA103": [
        ("keras3", Case(10, "softmax", "binary_crossentropy", metrics=("accuracy",)), {"LA103"}),
        ("one-hot", Case(3, "softmax", "binary_crossentropy", y=ONE_HOT_3), {"LA103"}),
    ],
    "LA104": [
        ("cce", Case(5, "sigmoid", "categorical_crossentropy"), {"LA104"}),
        ("scce", Case(3, "sigmoid", "sparse_categorical_crossentropy", y=[0, 2, 1]), {"LA104"}),
    ],
    "LA105": [
        ("softmax-cce", softmax_cce(y=MULTI_HOT_3), {"LA105"}),
        ("sigmoid-cce", Case(3, "sigmoid", "categorical_crossentropy", y=MULTI_HOT_3), {"LA105"}),
        ("softmax-bce", Case(3, "softmax", "binary_crossentropy", y=MULTI_HOT_3), {"LA105"}),
    ],
    "LA106": [
        ("one-hot", Case(3, "sigmoid", "binary_crossentropy", y=ONE_HOT_3), {"LA106"}),
        ("one-hot-4", Case(4, "sigmoid", "binary_crossentropy", y=ONE_HOT_4), {"LA106"}),
    ],
    "LA107": [
        ("uncompiled-static", Case(3, "softmax", source="static:m.keras"), {"LA107"}),
        ("uncompiled-live", Case(1, "sigmoid", source="live:m.keras"), {"LA107"}),
    ],
    "LA108": [
        ("activation-typo", Case(3, "softmx", "categorical_crossentropy"), {"LA108"}),
        ("loss-unknown", Case(3, "softmax", "nonsense_loss"), {"LA108"}),
        ("metric-typo", softmax_cce(metrics=("acuracy",)), {"LA108"}),
    ],
    "LA201": [
        ("index", softmax_cce(y=[0, 1, 2, 1]), {"LA201"}),
        ("index-column", softmax_cce(y=[[0], [2]]), {"LA201"}),
    ],
    "LA202": [("one-hot", Case(3, "softmax", "sparse_categorical_crossentropy", y=ONE_HOT_3), {"LA202"})],
    "LA203": [
        ("wider-labels", softmax_cce(y=ONE_HOT_4), {"LA203"}),
        ("column-vs-two-sigmoids", Case(2, "sigmoid", "binary_crossentropy", y=[0, 1, 1]), {"LA203"}),
        ("column-vs-three", Case(3, "sigmoid", "binary_crossentropy", y=[0, 1, 2]), {"LA203"}),
    ],
    "LA204": [
        ("index-3-of-3", Case(3, "softmax", "sparse_categorical_crossentropy", y=[0, 1, 3]), {"LA204"}),
        ("one-unit", Case(1, "sigmoid", "binary_crossentropy", y=[0, 1, 2]), {"LA204"}),
    ],
    "LA205": [
        ("minus-one", Case(1, "sigmoid", "binary_crossentropy", y=[-1, 1, 1]), {"LA205"}),
        ("one-two", Case(1, "sigmoid", "binary_crossentropy", y=[1, 2, 2]), {"LA205"}),
    ],
    "LA206": [
        ("fractional", Case(3, "softmax", "sparse_categorical_crossentropy", y=[0.5, 1.2]), {"LA206"}),
        ("negative", Case(3, "softmax", "sparse_categorical_crossentropy", y=[-1, 0, 2]), {"LA206"}),
        ("columns-above-one", softmax_cce(y=[[0, 2, 0], [1, 0, 0]]), {"LA206"}),
        ("rows-not-normalised", softmax_cce(y=[[0.5, 0.2, 0.1], [0.3, 0.3, 0.3]]), {"LA206"}),
    ],
    "LA301": [
        ("softmax", Case(3, "softmax", "categorical_crossentropy", from_logits=True), {"LA301"}),
        ("sigmoid", Case(1, "sigmoid", "binary_crossentropy", from_logits=True), {"LA301"}),
    ],
    "LA302": [
        ("cce", Case(10, "linear", "categorical_crossentropy"), {"LA302"}),
        ("bce", Case(1, None, "binary_crossentropy"), {"LA302"}),
    ],
    "LA303": [
        (
            "double",
            Case(10, loss="categorical_crossentropy", chain=("softmax", "linear", "softmax")),
            {"LA303"},
        )
    ],
    "LA304": [
        ("relu", Case(3, "relu", "categorical_crossentropy"), {"LA304"}),
        ("tanh-logits", Case(1, "tanh", "binary_crossentropy", from_logits=True), {"LA304"}),
    ],
    "LA305": [
        ("mse-softmax", Case(3, "softmax", "mse"), {"LA305"}),
        ("hinge-labels", Case(1, "linear", "hinge", y=[0, 1]), {"LA305"}),
    ],
    "LA306": [
        (
            "logits-as-softmax",
            softmax_cce(outputs=OutputFacts(4, not_probabilities="outputs range over [-3.1, 4.2]")),
            {"LA306"},
        )
    ],
    "LA401": [
        (
            "legacy-bce",
            Case(10, "softmax", "binary_crossentropy", metrics=("accuracy",), family="legacy"),
            {"LA103", "LA401"},
        ),
        (
            "legacy-bce-one-hot",
            Case(3, "softmax", "binary_crossentropy", metrics=("acc",), family="legacy", y=ONE_HOT_3),
            {"LA103", "LA401"},
        ),
    ],
    "LA402": [
        (
            "multi-hot",
            Case(5, "sigmoid", "binary_crossentropy", metrics=("accuracy",), y=MULTI_HOT_5),
            {"LA402"},
        ),
        (
            "sigmoid-bce-no-labels",
            Case(5, "sigmoid", "binary_crossentropy", metrics=("accuracy",)),
            {"LA402"},
        ),
        (
            "legacy-categorical",
            softmax_cce(metrics=("accuracy",), family="legacy", y=MULTI_HOT_3),
            {"LA105", "LA402"},
        ),
    ],
    "LA403": [
        (
            "one-unit-accuracy",
            Case(1, "linear", "binary_crossentropy", from_logits=True, metrics=("accuracy",)),
            {"LA403"},
        ),
        (
            "multi-label-binary-accuracy",
            Case(5, "linear", "binary_crossentropy", from_logits=True, metrics=("binary_accuracy",)),
            {"LA403"},
        ),
    ],
    "LA501": [("constant", softmax_cce(predictions=_predicted((0, 10, 0), 0.4, 0.5)), {"LA501"})],
    "LA502": [
        ("below", softmax_cce(predictions=_predicted((5, 5, 0), 0.5, 0.6)), {"LA502"}),
        ("at", softmax_cce(predictions=_predicted((5, 4, 1), 0.6, 0.6)), {"LA502"}),
    ],
    "LA503": [("wrong", softmax_cce(comparisons=(_comparison("wrong_definition"),)), {"LA503"})],
    "LA504": [("unexplained", softmax_cce(comparisons=(_comparison("unexplained"),)), {"LA504"})],
    "LA505": [
        (
            "built-binary",
            softmax_cce(metrics=("accuracy",), built=(("accuracy", "BinaryAccuracy"),)),
            {"LA505"},
        )
    ],
    "LA506": [
        ("below", softmax_cce(thresholds=(ThresholdCheck("accuracy", 0.9, 0.85),)), {"LA506"}),
        ("not-computed", softmax_cce(thresholds=(ThresholdCheck("subset_accuracy", 0.5, None),)), {"LA506"}),
    ],
    "LA507": [("nan-rows", softmax_cce(outputs=OutputFacts(10, non_finite_rows=10)), {"LA507"})],
    "LA701": [
        (
            "load-failed",
            softmax_cce(failed=(StageFailure("obtain_model", "cannot deserialize", "predictions"),)),
            {"LA701"},
        )
    ],
    "LA602": [
        (
            "extra-columns",
            softmax_cce(checks=(DataCheck("columns match the expected set", False, severity="warning"),)),
            {"LA602"},
        )
    ],
    "LA801": [("nan-loss", softmax_cce(training=TrainingFacts((1.2, math.nan))), {"LA801"})],
    "LA802": [("zero-loss", softmax_cce(training=TrainingFacts((0.0, 0.0, 0.0))), {"LA802"})],
    "LA803": [
        (
            "at-baseline",
            softmax_cce(training=TrainingFacts((0.9, 0.8, 0.7), "accuracy", (0.6, 0.62, 0.6005), 0.62)),
            {"LA803"},
        )
    ],
    "LA601": [
        (
            "label-range",
            softmax_cce(
                checks=(DataCheck("label values in range(3)", False, "label", detail="2 rows"),),
            ),
            {"LA601"},
        )
    ],
}

# code -> [(case id, near miss that must not fire it)]
QUIET: dict[str, list[tuple[str, Case]]] = {
    "LA101": [
        ("sigmoid-bce", Case(1, "sigmoid", "binary_crossentropy")),
        ("two-unit-cce", Case(2, "softmax", "categorical_crossentropy", y=[[1, 0], [0, 1]])),
    ],
    "LA102": [("sigmoid", Case(1, "sigmoid", "binary_crossentropy")), ("two-softmax", Case(2, "softmax"))],
    "LA103": [
        ("two-units", Case(2, "softmax", "binary_crossentropy")),
        ("sigmoid", Case(10, "sigmoid", "binary_crossentropy")),
        ("cce", Case(10, "softmax", "categorical_crossentropy")),
    ],
    "LA104": [
        ("softmax", Case(5, "softmax", "categorical_crossentropy")),
        ("bce", Case(5, "sigmoid", "bce")),
    ],
    "LA105": [
        ("sigmoid-bce", Case(3, "sigmoid", "binary_crossentropy", y=MULTI_HOT_3)),
        ("one-hot", softmax_cce(y=ONE_HOT_3)),
    ],
    "LA106": [
        ("multi-hot", Case(3, "sigmoid", "binary_crossentropy", y=MULTI_HOT_3)),
        ("two-units", Case(2, "sigmoid", "binary_crossentropy", y=[[1, 0], [0, 1]])),
        ("no-labels", Case(3, "sigmoid", "binary_crossentropy")),
    ],
    "LA107": [
        ("flags-without-loss", Case(3, "softmax")),
        ("compiled", Case(3, "softmax", "categorical_crossentropy", source="static:m.keras")),
    ],
    "LA108": [
        ("tf-nn-softmax", Case(3, "tf.nn.softmax", "categorical_crossentropy")),
        ("class-names", Case(3, "softmax", "CategoricalCrossentropy", metrics=("CategoricalAccuracy",))),
        ("custom-from-model", Case(3, "my_act", "my_loss", source="static:m.keras")),
        ("custom-typed", Case(3, "softmax", "my_pkg.losses.focal")),
    ],
    "LA201": [
        ("one-hot", softmax_cce(y=ONE_HOT_3)),
        ("sparse-loss", Case(3, "softmax", "sparse_categorical_crossentropy", y=[0, 1, 2])),
    ],
    "LA202": [("index", Case(3, "softmax", "sparse_categorical_crossentropy", y=[0, 2]))],
    "LA203": [
        ("same-width", softmax_cce(y=ONE_HOT_3)),
        ("one-unit-column", Case(1, "sigmoid", "binary_crossentropy", y=[[0], [1]])),
    ],
    "LA204": [("in-range", Case(3, "softmax", "sparse_categorical_crossentropy", y=[0, 1, 2]))],
    "LA205": [("zero-one", Case(1, "sigmoid", "binary_crossentropy", y=[0, 1, 1]))],
    "LA206": [
        ("soft", softmax_cce(y=[[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])),
        ("out-of-range-index-is-LA204", Case(3, "softmax", "sparse_categorical_crossentropy", y=[0, 3])),
    ],
    "LA301": [("linear-logits", Case(3, "linear", "categorical_crossentropy", from_logits=True))],
    "LA302": [
        ("linear-logits", Case(10, "linear", "categorical_crossentropy", from_logits=True)),
        ("regression", Case(1, "linear", "mse")),
    ],
    "LA303": [("single", Case(10, loss="categorical_crossentropy", chain=("linear", "softmax")))],
    "LA304": [("softmax", softmax_cce()), ("relu-regression", Case(1, "relu", "mse"))],
    "LA305": [("linear-mse-no-labels", Case(1, "linear", "mse")), ("cce", softmax_cce())],
    "LA306": [("in-range", softmax_cce(outputs=OutputFacts(4)))],
    "LA507": [("finite", softmax_cce(outputs=OutputFacts(4, non_finite_rows=0)))],
    "LA701": [("nothing-failed", softmax_cce())],
    "LA401": [
        ("keras3", Case(10, "softmax", "binary_crossentropy", metrics=("accuracy",))),
        (
            "legacy-cce",
            Case(10, "softmax", "categorical_crossentropy", metrics=("accuracy",), family="legacy"),
        ),
        (
            "legacy-multi-label",
            Case(5, "sigmoid", "binary_crossentropy", metrics=("accuracy",), family="legacy"),
        ),
        (
            "legacy-focal",  # get_metric_function only tests for binary_crossentropy itself
            Case(10, "softmax", "binary_focal_crossentropy", metrics=("accuracy",), family="legacy"),
        ),
    ],
    "LA402": [
        ("binary-accuracy", Case(5, "sigmoid", "bce", metrics=("binary_accuracy",), y=MULTI_HOT_5)),
        ("legacy-bce", Case(5, "sigmoid", "bce", metrics=("accuracy",), family="legacy", y=MULTI_HOT_5)),
        ("single-label", softmax_cce(metrics=("accuracy",), y=ONE_HOT_3)),
    ],
    "LA403": [
        ("sigmoid-output", Case(1, "sigmoid", "binary_crossentropy", metrics=("accuracy",))),
        ("argmax-on-logits", Case(10, "linear", "cce", from_logits=True, metrics=("accuracy",))),
    ],
    "LA501": [
        ("two-classes", softmax_cce(predictions=_predicted((3, 7, 0), 0.9, 0.5))),
        ("one-sample", softmax_cce(predictions=_predicted((0, 1, 0), 1.0, 1.0))),
    ],
    "LA502": [("above", softmax_cce(predictions=_predicted((3, 3, 4), 0.9, 0.4)))],
    "LA503": [("agrees", softmax_cce(comparisons=(_comparison("agrees"),)))],
    "LA504": [("wrong-is-LA503", softmax_cce(comparisons=(_comparison("wrong_definition"),)))],
    "LA505": [
        ("same", softmax_cce(metrics=("accuracy",), built=(("accuracy", "CategoricalAccuracy"),))),
        ("not-built", softmax_cce(metrics=("accuracy",))),
    ],
    "LA601": [
        ("passed", softmax_cce(checks=(DataCheck("label values in range(3)", True, "label"),))),
        ("warning-is-LA602", softmax_cce(checks=(DataCheck("columns match", False, severity="warning"),))),
    ],
    "LA801": [("finite", softmax_cce(training=TrainingFacts((1.2, 0.9))))],
    "LA802": [
        ("moving", softmax_cce(training=TrainingFacts((0.5, 0.5, 0.4999)))),
        ("too-few-epochs", softmax_cce(training=TrainingFacts((0.0, 0.0)))),
    ],
    "LA803": [
        ("above", softmax_cce(training=TrainingFacts((0.9, 0.8, 0.7), "accuracy", (0.6, 0.7, 0.6), 0.62))),
        ("no-baseline", softmax_cce(training=TrainingFacts((0.9, 0.8, 0.7), "accuracy", (0.5, 0.5, 0.5)))),
    ],
    "LA506": [
        ("at", softmax_cce(thresholds=(ThresholdCheck("accuracy", 0.9, 0.9),))),
        ("above", softmax_cce(thresholds=(ThresholdCheck("accuracy", 0.9, 0.95),))),
    ],
    "LA602": [
        ("passed", softmax_cce(checks=(DataCheck("columns match", True, severity="warning"),))),
        ("critical-is-LA601", softmax_cce(checks=(DataCheck("label in range", False, "label"),))),
    ],
}

FIRING_CASES = [
    pytest.param(code, case, expected, id=f"{code}-{cid}")
    for code, rows in FIRING.items()
    for cid, case, expected in rows
]
QUIET_CASES = [
    pytest.param(code, case, id=f"{code}-{cid}") for code, rows in QUIET.items() for cid, case in rows
]


@pytest.mark.parametrize("code", [r.code for r in RULES])
def test_every_rule_has_cases(code: str) -> None:
    assert FIRING.get(code), f"{code} has no firing case in tests/test_rules.py"
    assert QUIET.get(code), f"{code} has no non-firing case in tests/test_rules.py"


def test_tables_name_only_real_rules() -> None:
    assert set(FIRING) <= set(RULES_BY_CODE)
    assert set(QUIET) <= set(RULES_BY_CODE)


@pytest.mark.parametrize(("code", "case", "expected"), FIRING_CASES)
def test_rule_fires(code: str, case: Case, expected: set[str]) -> None:
    assert code in expected
    assert codes(case) == expected


@pytest.mark.parametrize(("code", "case"), QUIET_CASES)
def test_rule_stays_quiet(code: str, case: Case) -> None:
    assert code not in codes(case)


@pytest.mark.parametrize(("code", "case", "expected"), FIRING_CASES)
def test_head_fix_removes_the_finding(code: str, case: Case, expected: set[str]) -> None:
    """Where a finding proposes a head change, the changed head no longer has that finding."""
    head = case.head()
    fixes = [f.head_fix for f in run_rules(RULES, case.facts(head)) if f.code == code and f.head_fix]
    before = codes(case, head)
    for fix in fixes:
        fixed = fix.apply(head)
        assert code not in codes(case, fixed)
        # ... and trades it for no new error.
        new_errors = {f.code for f in run_rules(RULES, case.facts(fixed)) if f.severity is Severity.ERROR}
        assert new_errors <= before


@pytest.mark.parametrize(("code", "case", "expected"), FIRING_CASES)
def test_findings_are_complete_and_one_line(code: str, case: Case, expected: set[str]) -> None:
    rule = RULES_BY_CODE[code]
    for finding in run_rules(RULES, case.facts()):
        if finding.code != code:
            continue
        # A hit may carry the severity its evidence sets (LA305 on a hinge loss is info).
        assert finding.name == rule.name and isinstance(finding.severity, Severity)
        assert finding.title == rule.title and finding.fix == rule.fix
        assert finding.message and "\n" not in finding.message
        doc = finding.to_dict()
        assert {"code", "name", "severity", "title", "message", "fix", "evidence"} <= set(doc)


def test_rule_applies_only_to_its_families() -> None:
    case = Case(10, "softmax", "binary_crossentropy", metrics=("accuracy",), family="legacy")
    assert "LA401" in codes(case)
    assert RULES_BY_CODE["LA401"].families == (KerasFamily.LEGACY,)
    for family in ("keras3", "tf_keras"):
        assert "LA401" not in codes(replace(case, family=family))


def test_catalogue_shape() -> None:
    assert len(RULES) >= 15
    assert len({r.code for r in RULES}) == len(RULES)
    assert len({r.name for r in RULES}) == len(RULES)
    assert [r.code for r in RULES] == sorted(r.code for r in RULES)
    for rule in RULES:
        assert re.fullmatch(r"LA[1-9]\d\d", rule.code)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
        assert rule.title and rule.why and rule.fix
        assert rule.families
        assert rule.stage in {"labels", "compatibility", "metrics", "comparison", "introspection", "training"}
        assert set(rule.to_dict()) >= {"code", "name", "severity", "title", "why", "fix", "families"}


def test_find_rule_by_code_or_name() -> None:
    rule = RULES_BY_CODE["LA101"]
    assert find_rule("LA101") is rule
    assert find_rule("la101 ") is rule
    assert find_rule("categorical-crossentropy-on-one-unit") is rule
    assert find_rule("Categorical-Crossentropy-On-One-Unit") is rule
    assert find_rule("LA999") is None


def test_seed_messages_carry_the_numbers() -> None:
    """The findings of the seeds' mistakes say what happens, with the numbers."""
    (la101,) = run_rules(RULES, Case(1, "sigmoid", "categorical_crossentropy").facts())
    assert "-log(1) = 0" in la101.message
    la401 = next(
        f
        for f in run_rules(
            RULES, Case(10, "softmax", "binary_crossentropy", metrics=("accuracy",), family="legacy").facts()
        )
        if f.code == "LA401"
    )
    assert "1 - 1/10 = 0.900" in la401.message
    assert la401.evidence["floor"] == 0.9
    (la303,) = run_rules(RULES, Case(10, loss="cce", chain=("softmax", "softmax")).facts())
    assert "e/(e + K - 1) = 0.232 for K = 10" in la303.message
    assert la303.evidence == {"activation_chain": ["softmax", "softmax"]}


def test_verdict_follows_fail_on() -> None:
    findings = run_rules(RULES, Case(1, "linear", "hinge", y=[0, 1]).facts())  # LA305 on hinge: info
    assert [f.severity for f in findings] == [Severity.INFO]
    assert verdict(findings) == "pass"
    assert verdict(findings, Severity.WARNING) == "pass"
    assert verdict(findings, Severity.INFO) == "fail"
    assert verdict(()) == "pass"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param(Case(3, "softmax", "mse"), Severity.ERROR, id="mse-softmax"),
        pytest.param(Case(1, "sigmoid", "mae", y=[0, 1]), Severity.ERROR, id="mae-sigmoid"),
        pytest.param(Case(1, "linear", "hinge", y=[0, 1]), Severity.INFO, id="hinge-linear"),
        pytest.param(Case(1, "linear", "mse", y=[0, 1, 1]), Severity.INFO, id="mse-linear-scores"),
    ],
)
def test_regression_loss_severity_follows_the_head(case: Case, expected: Severity) -> None:
    (finding,) = [f for f in run_rules(RULES, case.facts()) if f.code == "LA305"]
    assert finding.severity is expected


def test_committed_rule_docs_are_generated_from_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/rules.md is `python -m lossaudit.formats.ruledoc` output; regenerate it when a rule changes."""
    from pathlib import Path

    from lossaudit.formats.ruledoc import GENERATOR, main, render_rules_markdown

    committed = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
    assert main([]) == 0
    generated = capsys.readouterr().out
    assert generated == render_rules_markdown(RULES)
    assert committed.read_text(encoding="utf-8") == generated, f"docs/rules.md is stale: run `{GENERATOR}`"
    for rule in RULES:
        assert f"## {rule.code} {rule.name}\n" in generated
        assert rule.fix in generated


def test_ruledoc_check_mode(tmp_path: Any) -> None:
    from lossaudit.formats.ruledoc import main

    page = tmp_path / "rules.md"
    assert main(["--check", str(page)]) == 1  # missing
    assert main(["--output", str(page)]) == 0
    assert main(["--check", str(page)]) == 0
    page.write_text(page.read_text() + "edited by hand\n")
    assert main(["--check", str(page)]) == 1
