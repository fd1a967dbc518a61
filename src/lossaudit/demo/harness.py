"""The demo's harness: how a scenario trains, audits and retrains one model configuration.

:class:`DemoSettings` (how the demo trains), the bundled data sets (:func:`load_dataset`), the MLP
every scenario builds (:func:`build_mlp`), and one :class:`Case`: a trained run audited the way
``lossaudit audit`` does (:func:`audit_run`, :func:`make_case`) and retrained with the fix its
findings propose (:func:`retrain_model`). :mod:`lossaudit.demo.scenarios` composes cases into the
seed scenarios; :class:`ScenarioResult` is what each one returns.

Keras, TensorFlow and scikit-learn are imported inside the functions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from lossaudit.core.head import HeadSpec
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np

    from lossaudit.core.compare import Comparison
    from lossaudit.core.findings import Finding
    from lossaudit.core.report import AuditReport
    from lossaudit.keras.retrain import RetrainResult, TrainedRun

EVAL_FRACTION = 0.3
DATA_SEED = 0
FLOAT32_ULP_AT_ONE = 1.2e-7
"""Softmax outputs one unit as 1.0 or 0.99999994: one float32 step below 1."""
_HEADLINE = ("accuracy", "subset_accuracy", "balanced_accuracy", "majority_baseline")


@dataclass(frozen=True)
class DemoSettings:
    """How the demo trains. ``epochs=None`` keeps each scenario's own default."""

    epochs: int | None = None
    batch_size: int = 32
    seed: int = 0
    learning_rate: float = 0.01
    hidden: int = 32
    legacy: bool = True
    """Reproduce the legacy numbers with tf-keras in a child process; False reads the recording."""

    def epochs_for(self, default: int) -> int:
        return default if self.epochs is None else self.epochs


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray

    def describe(self) -> str:
        sizes = f"{len(self.x_train)} train / {len(self.x_eval)} eval"
        return f"{self.name}: {sizes}, {self.x_train.shape[1]} features"


@dataclass(frozen=True)
class Check:
    """One thing a scenario is meant to show about its numbers, and whether it did."""

    description: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "passed": self.passed}


@dataclass(frozen=True)
class Case:
    """One model configuration of a scenario, trained (or refused by Keras) and audited."""

    label: str
    description: str
    source: str
    """Which Keras produced the numbers: ``Keras 3.15.1`` or the legacy run's provenance."""
    head: HeadSpec
    findings: tuple[Finding, ...]
    expected_codes: tuple[str, ...]
    keras_reported: Mapping[str, float] = field(default_factory=dict)
    recomputed: Mapping[str, float] = field(default_factory=dict)
    comparisons: tuple[Comparison, ...] = ()
    built_metrics: tuple[tuple[str, str], ...] | None = None
    keras_error: str | None = None
    keras_warnings: tuple[str, ...] = ()
    retrain: RetrainResult | None = None
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = ()
    report: AuditReport | None = field(default=None, repr=False, compare=False)
    predictions: np.ndarray | None = field(default=None, repr=False, compare=False)
    y_eval: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.code for f in self.findings))

    @property
    def codes_as_expected(self) -> bool:
        return sorted(self.codes) == sorted(self.expected_codes)

    @property
    def reproduced(self) -> bool:
        return self.codes_as_expected and all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "description": self.description,
            "source": self.source,
            "head": self.head.to_dict(),
            "codes": list(self.codes),
            "expected_codes": list(self.expected_codes),
            "reproduced": self.reproduced,
            "keras_reported": dict(self.keras_reported),
            "recomputed": dict(self.recomputed),
            "comparisons": [c.to_dict() for c in self.comparisons],
            "built_metrics": None if self.built_metrics is None else [list(p) for p in self.built_metrics],
            "keras_error": self.keras_error,
            "keras_warnings": list(self.keras_warnings),
            "retrain": None if self.retrain is None else self.retrain.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    title: str
    seeds: tuple[str, ...]
    data: str
    training: str
    cases: tuple[Case, ...]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(code for case in self.cases for code in case.codes))

    @property
    def reproduced(self) -> bool:
        return all(case.reproduced for case in self.cases)

    @property
    def model_verdict(self) -> str:
        """The verdict of the model the scenario audits (its first audited case): ``fail`` is
        what a scenario shows on purpose; the scenario itself passes when it is reproduced."""
        report = next((c.report for c in self.cases if c.report is not None), None)
        if report is not None:
            return report.verdict
        errors = any(f.severity.value == "error" for c in self.cases for f in c.findings)
        return "fail" if errors else "pass"

    @property
    def retrain(self) -> RetrainResult | None:
        """The first case's retrain: the scenario's headline proof."""
        return next((c.retrain for c in self.cases if c.retrain is not None), None)

    def case(self, label: str) -> Case:
        for case in self.cases:
            if case.label == label:
                return case
        raise KeyError(label)

    def findings(self) -> list[dict[str, Any]]:
        return [
            {"scenario": self.name, "case": case.label, **finding.to_dict()}
            for case in self.cases
            for finding in case.findings
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "seeds": list(self.seeds),
            "data": self.data,
            "training": self.training,
            "codes": list(self.codes),
            "reproduced": self.reproduced,
            "cases": [c.to_dict() for c in self.cases],
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }


# --- data -------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def load_dataset(name: str) -> Dataset:
    """A bundled scikit-learn data set, split (stratified where single-label) and standardised.

    ``digits`` labels are class indices 0..9, ``breast_cancer`` labels a (n, 1) 0/1 column,
    ``multilabel`` labels a (n, 5) multi-hot matrix.
    """
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_digits, make_multilabel_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "digits":
        x, y = load_digits(return_X_y=True)
        stratify: Any = y
    elif name == "breast_cancer":
        x, y = load_breast_cancer(return_X_y=True)
        stratify = y
    elif name == "multilabel":
        x, y = make_multilabel_classification(
            n_samples=1000, n_features=20, n_classes=5, n_labels=2, random_state=DATA_SEED
        )
        stratify = None
    else:
        raise BadInputError(f"unknown demo data set {name!r}")
    x_train, x_eval, y_train, y_eval = train_test_split(
        x, y, test_size=EVAL_FRACTION, random_state=DATA_SEED, stratify=stratify
    )
    scaler = StandardScaler().fit(x_train)
    if name == "breast_cancer":
        y_train, y_eval = y_train.reshape(-1, 1), y_eval.reshape(-1, 1)
    return Dataset(
        name,
        scaler.transform(x_train).astype(np.float32),
        np.asarray(y_train).astype(np.int64),
        scaler.transform(x_eval).astype(np.float32),
        np.asarray(y_eval).astype(np.int64),
    )


def one_hot(y: np.ndarray, k: int) -> np.ndarray:
    from lossaudit.core.labels import to_one_hot

    return to_one_hot(y, k)


# --- building, training and auditing ----------------------------------------------------------


def prepare_keras() -> Any:
    """Import Keras for CPU, quietly; returns the keras module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # tf.function retracing notices are about speed, not about the model: keep them out.
        tf.get_logger().setLevel("ERROR")
    return keras


def build_mlp(
    n_features: int,
    units: int,
    activation: str | None,
    loss: Any,
    metrics: Iterable[Any],
    settings: DemoSettings,
    name: str,
) -> Any:
    """Input -> Dense(hidden, relu) -> Dense(units, activation), compiled with Adam."""
    keras = prepare_keras()
    keras.utils.set_random_seed(settings.seed)
    model = keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dense(settings.hidden, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ],
        name=name.replace("-", "_"),
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=settings.learning_rate),
        loss=loss,
        metrics=list(metrics),
    )
    return model


def headline(report: AuditReport | None) -> dict[str, float]:
    if report is None or report.metrics is None:
        return {}
    values = report.metrics.values
    return {k: float(v) for k in _HEADLINE if (v := values.get(k)) is not None}


def audit_run(run: TrainedRun, y_static: Any, source: str) -> AuditReport:
    """Audit a trained run like ``lossaudit audit`` does; a run Keras refused gets the static check."""
    from lossaudit.core.audit import audit_predictions, check
    from lossaudit.core.compare import reported_from_mapping

    if run.error is not None or run.predictions is None:
        return check(run.head, y_static, command="demo")
    finite = {k: v for k, v in run.keras_reported.items() if math.isfinite(v)}
    return audit_predictions(
        run.head,
        run.y_eval,
        run.predictions,
        reported_from_mapping(finite, source),
        built_metrics=run.built_metrics or None,
        command="demo",
    )


def _keras_source() -> str:
    import keras

    return f"Keras {keras.__version__} ({keras.backend.backend()} backend)"


def make_case(
    label: str,
    description: str,
    run: TrainedRun,
    y_static: Any,
    expected: tuple[str, ...],
    *,
    retrain: RetrainResult | None = None,
    checks: Iterable[Check] = (),
    notes: Iterable[str] = (),
) -> Case:
    source = _keras_source()
    report = audit_run(run, y_static, "evaluate")
    return Case(
        label=label,
        description=description,
        source=source,
        head=run.head,
        findings=report.findings,
        expected_codes=expected,
        keras_reported=dict(run.keras_reported),
        recomputed=headline(report),
        comparisons=report.comparisons,
        built_metrics=run.built_metrics,
        keras_error=run.error,
        keras_warnings=run.keras_warnings,
        retrain=retrain,
        checks=tuple(checks),
        notes=tuple(notes),
        report=report,
        predictions=run.predictions,
        y_eval=run.y_eval,
    )


def retrain_model(
    model: Any, data: Dataset, y_train: Any, y_eval: Any, settings: DemoSettings, epochs: int
) -> RetrainResult:
    """Static findings -> merged fix -> retrain both models: the 'before' run is the audited model."""
    from lossaudit.core.audit import check
    from lossaudit.keras.live import head_from_model
    from lossaudit.keras.retrain import merge_fixes, prove_fix

    # Only rules that judge the head and labels propose head fixes; LA5xx (predictions) propose
    # none, so the static check gives the same fix as the full audit, before any training.
    static = check(head_from_model(model), y_train)
    fix = merge_fixes(static.findings)
    return prove_fix(
        model,
        fix,
        data.x_train,
        y_train,
        data.x_eval,
        y_eval,
        epochs=epochs,
        batch_size=settings.batch_size,
        seed=settings.seed,
        learning_rate=settings.learning_rate,
    )


def train_only(
    model: Any, data: Dataset, y_train: Any, y_eval: Any, settings: DemoSettings, epochs: int
) -> TrainedRun:
    from lossaudit.keras.retrain import train_and_evaluate

    keras = prepare_keras()
    with keras.device("cpu:0"):
        return train_and_evaluate(
            model,
            data.x_train,
            y_train,
            data.x_eval,
            y_eval,
            epochs=epochs,
            batch_size=settings.batch_size,
            seed=settings.seed,
        )


def comparison_of(case_or_report: Case, metric: str = "accuracy") -> Comparison | None:
    return next((c for c in case_or_report.comparisons if c.metric == metric), None)


def training_text(settings: DemoSettings, epochs: int) -> str:
    return (
        f"MLP Dense({settings.hidden}, relu) -> head, Adam(lr={settings.learning_rate:g}), {epochs} epochs, "
        f"batch {settings.batch_size}, seed {settings.seed}, CPU"
    )


def same_within(a: float | None, b: float | None, tol: float = 1e-4) -> bool:
    return a is not None and b is not None and abs(a - b) <= tol
