"""The seed scenarios, reproduced for real on data that ships with scikit-learn.

Each scenario trains small Keras 3 MLPs on a bundled data set (``load_digits`` as the MNIST
stand-in, ``load_breast_cancer`` for binary, ``make_multilabel_classification``), audits each
model the way ``lossaudit audit`` does (head read from the live model, labels, predictions,
Keras-reported numbers attributed to a definition), and retrains with the fix the findings
propose (:func:`lossaudit.keras.retrain.prove_fix`). The legacy metric resolution of the
seeds is reproduced with tf-keras in TF1 graph mode in a child process
(:mod:`lossaudit.demo.legacy`).

A scenario is *reproduced* when every case shows exactly the finding codes it is meant to show
and every check about its numbers holds. The failures are the point: a scenario that stops
failing the way the seed did is what makes ``lossaudit demo`` exit 1.

The harness every scenario uses (settings, data, building, auditing and retraining one case) is
:mod:`lossaudit.demo.harness`; the text and JSON output is :mod:`lossaudit.demo.render`.

Keras, TensorFlow and scikit-learn are imported inside the functions.

Why one module of about 640 lines: it is the catalogue of the six scenarios, each a function that
states its cases, the codes they must show and the checks on their numbers, plus the legacy case
of ``bce-softmax-multiclass`` (``legacy_inputs`` is also what ``lossaudit.demo.record`` records).
What the scenarios share is already in :mod:`~lossaudit.demo.harness`; the rest is read one
scenario at a time, and a scenario's expectations belong beside the code that produces them.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from lossaudit.demo.harness import (
    FLOAT32_ULP_AT_ONE,
    Case,
    Check,
    DemoSettings,
    ScenarioResult,
    build_mlp,
    comparison_of,
    headline,
    load_dataset,
    make_case,
    one_hot,
    prepare_keras,
    retrain_model,
    same_within,
    train_only,
    training_text,
)
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np

    from lossaudit.demo.harness import Dataset
    from lossaudit.demo.legacy import LegacyRun, LegacySpec, PendingLegacyRun
    from lossaudit.keras.retrain import RetrainResult

# --- the scenarios ----------------------------------------------------------------------------


def bce_softmax_multiclass(settings: DemoSettings = DemoSettings()) -> ScenarioResult:
    """Seeds 000 and 003: a 10-class softmax trained with binary_crossentropy, 'accuracy'."""
    started = time.perf_counter()
    epochs = settings.epochs_for(5)
    data = load_dataset("digits")
    y_train, y_eval = one_hot(data.y_train, 10), one_hot(data.y_eval, 10)
    # The legacy child imports TensorFlow and trains while this process trains the Keras 3 models.
    pending, reason = start_legacy_case(settings)
    try:
        return _bce_softmax_cases(settings, data, y_train, y_eval, epochs, pending, reason, started)
    finally:
        if pending is not None:
            pending.cancel()  # a no-op once collected; stops the child if this scenario failed


def _bce_softmax_cases(
    settings: DemoSettings,
    data: Dataset,
    y_train: np.ndarray,
    y_eval: np.ndarray,
    epochs: int,
    pending: PendingLegacyRun | None,
    reason: str | None,
    started: float,
) -> ScenarioResult:
    model = build_mlp(64, 10, "softmax", "binary_crossentropy", ["accuracy"], settings, "bce_softmax")
    retrain = retrain_model(model, data, y_train, y_eval, settings, epochs)
    before = retrain.before
    keras3 = make_case(
        "keras3",
        "Dense(10, softmax) + binary_crossentropy, metrics=['accuracy'], one-hot labels",
        before,
        y_train,
        ("LA103",),
        retrain=retrain,
    )
    comp = comparison_of(keras3)
    argmax = keras3.recomputed.get("accuracy")
    after = retrain.after_accuracy
    keras3 = _with_checks(
        keras3,
        [
            Check(
                "Keras 3 resolves 'accuracy' to CategoricalAccuracy here (shapes, not the loss)",
                before.built_metrics == (("accuracy", "CategoricalAccuracy"),),
            ),
            Check(
                "the Keras 3 'accuracy' agrees with argmax accuracy recomputed by lossaudit",
                comp is not None and comp.status == "agrees",
            ),
        ],
        [
            f"argmax accuracy with binary_crossentropy {argmax:.4f}, retrained with "
            f"categorical_crossentropy {after:.4f}: binary_crossentropy is not the more accurate loss; "
            "the seeds' higher number was another metric (the legacy case)."
            if argmax is not None and after is not None
            else "the retrained model could not be scored"
        ],
    )
    legacy = legacy_case(settings, pending, reason)
    notes = (
        "Seed 003 reported 0.9979 where argmax accuracy was 0.9900; seed 000 saw 97% with "
        "binary_crossentropy and 90% with categorical_crossentropy.",
    )
    return ScenarioResult(
        "bce-softmax-multiclass",
        "a 10-class softmax trained with binary_crossentropy and metrics=['accuracy']",
        ("000", "003"),
        data.describe() + ", labels one-hot",
        training_text(settings, epochs),
        (keras3, legacy),
        notes,
        time.perf_counter() - started,
    )


def legacy_inputs(
    name: str, settings: DemoSettings = DemoSettings()
) -> tuple[LegacySpec, dict[str, np.ndarray]]:
    """The spec and arrays of a scenario's legacy run (what ``legacy --record`` records)."""
    from lossaudit.demo.legacy import LegacySpec

    if name != "bce-softmax-multiclass":
        raise BadInputError(f"scenario {name!r} has no legacy run; only bce-softmax-multiclass does")
    data = load_dataset("digits")
    spec = LegacySpec(
        units=10,
        activation="softmax",
        loss="binary_crossentropy",
        metrics=("accuracy",),
        fixed_metrics=("categorical_accuracy",),
        hidden=(settings.hidden,),
        epochs=settings.epochs_for(5),
        batch_size=settings.batch_size,
        seed=settings.seed,
        learning_rate=settings.learning_rate,
    )
    arrays = {
        "x_train": data.x_train,
        "y_train": one_hot(data.y_train, 10),
        "x_eval": data.x_eval,
        "y_eval": one_hot(data.y_eval, 10),
    }
    return spec, arrays


def start_legacy_case(settings: DemoSettings) -> tuple[PendingLegacyRun | None, str | None]:
    """(the started child, None), or (None, why the live legacy run cannot happen)."""
    from lossaudit.demo.legacy import LegacyUnavailableError, start_legacy

    if not settings.legacy:
        return None, "the live legacy run was switched off (--no-legacy)"
    spec, arrays = legacy_inputs("bce-softmax-multiclass", settings)
    try:
        return start_legacy(
            spec, arrays["x_train"], arrays["y_train"], arrays["x_eval"], arrays["y_eval"]
        ), None
    except LegacyUnavailableError as exc:
        return None, str(exc)


def legacy_case(settings: DemoSettings, pending: PendingLegacyRun | None, reason: str | None) -> Case:
    from lossaudit.core.audit import audit_predictions
    from lossaudit.core.compare import reported_from_mapping
    from lossaudit.demo.legacy import LegacyUnavailableError, load_recorded

    spec, _ = legacy_inputs("bce-softmax-multiclass", settings)
    notes: list[str] = []
    run: LegacyRun
    if pending is not None:
        try:
            run = pending.wait()
        except LegacyUnavailableError as exc:
            reason = str(exc)
    if reason is not None:
        run = load_recorded("bce-softmax-multiclass")
        notes.append(f"live legacy reproduction not run: {reason}; audited the recorded run instead")
        if run.spec != spec:
            notes.append(
                f"the recording used {run.spec.epochs} epochs, lr {run.spec.learning_rate:g}, "
                f"hidden {list(run.spec.hidden)}; this demo asked for {spec.epochs} epochs, "
                f"lr {spec.learning_rate:g}, hidden {list(spec.hidden)}"
            )
    assert run.predictions is not None and run.y_eval is not None
    report = audit_predictions(
        run.head,
        run.y_eval,
        run.predictions,
        reported_from_mapping(run.reported, "tf-keras graph-mode evaluate"),
        built_metrics=run.built_metrics or None,
        command="demo",
    )
    comp = next((c for c in report.comparisons if c.metric == "accuracy"), None)
    argmax = comp.correct.value if comp is not None and comp.correct is not None else None
    fixed = run.fixed_reported.get("categorical_accuracy")
    checks = [
        Check(
            "tf-keras in graph mode built binary_accuracy for 'accuracy' (resolved from the loss)",
            ("accuracy", "BinaryAccuracy") in run.built_metrics,
        ),
        Check(
            "the reported 'accuracy' is elementwise binary accuracy over 10 outputs, above argmax accuracy",
            comp is not None
            and comp.status == "wrong_definition"
            and any(d.key == "elementwise_binary_0.5" for d in comp.matches)
            and comp.difference is not None
            and comp.difference > 0,
        ),
        Check(
            "recompiled with metrics=['categorical_accuracy'], the same model reports argmax accuracy",
            same_within(fixed, argmax),
        ),
    ]
    reported_accuracy = run.reported.get("accuracy")
    if fixed is not None and reported_accuracy is not None and argmax is not None:
        notes.append(
            f"fix proven on the legacy run: reported 'accuracy' {reported_accuracy:.4f} -> "
            f"categorical_accuracy {fixed:.4f} (argmax accuracy {argmax:.4f})"
        )
    train_acc = run.history.get("accuracy")
    if train_acc:
        notes.append(f"training 'accuracy' in the last epoch: {train_acc[-1]:.4f} (the number users saw)")
    return Case(
        label="legacy",
        description="the same model under tf-keras in TF1 graph mode (legacy 'accuracy' resolution)",
        source=run.source,
        head=run.head,
        findings=report.findings,
        expected_codes=("LA103", "LA401", "LA503"),
        keras_reported=dict(run.reported),
        recomputed=headline(report),
        comparisons=report.comparisons,
        built_metrics=run.built_metrics,
        checks=tuple(checks),
        notes=tuple(notes),
        report=report,
        predictions=run.predictions,
        y_eval=run.y_eval,
    )


def _with_checks(case: Case, checks: Iterable[Check], notes: Iterable[str] = ()) -> Case:
    from dataclasses import replace

    return replace(case, checks=case.checks + tuple(checks), notes=case.notes + tuple(notes))


def _retrain_check(retrain: RetrainResult) -> Check:
    return Check(f"retrained with the fix: {retrain.summary}", retrain.proven)


def _constant_checks(case: Case, klass: int, what: str) -> list[Check]:
    """Predictions all ``klass`` and accuracy equal to that class's share of the eval labels."""
    import numpy as np

    report = case.report
    counts = report.metrics.predicted_counts if report is not None and report.metrics is not None else ()
    y = np.asarray(case.y_eval).reshape(-1) if case.y_eval is not None else np.zeros(0)
    share = float(np.mean(y == klass)) if y.size else None
    return [
        Check(
            f"every eval prediction is class {klass} ({what})",
            bool(counts) and counts[klass] == sum(counts),
        ),
        Check(
            f"accuracy equals the share of class {klass} in the eval labels ({share:.4f})"
            if share is not None
            else "accuracy equals the share of the predicted class",
            same_within(case.recomputed.get("accuracy"), share, 1e-9),
        ),
        Check(
            "the Keras-reported accuracy agrees with the recomputed one",
            (comp := comparison_of(case)) is not None and comp.status == "agrees",
        ),
    ]


def one_unit_cce(settings: DemoSettings = DemoSettings()) -> ScenarioResult:
    """Seeds 002 and 004: a 1-unit sigmoid trained with categorical_crossentropy."""
    started = time.perf_counter()
    epochs = settings.epochs_for(10)
    data = load_dataset("breast_cancer")
    model = build_mlp(30, 1, "sigmoid", "categorical_crossentropy", ["accuracy"], settings, "one_unit_cce")
    retrain = retrain_model(model, data, data.y_train, data.y_eval, settings, epochs)
    before = retrain.before
    case = make_case(
        "keras3",
        "Dense(1, sigmoid) + categorical_crossentropy, metrics=['accuracy'], 0/1 labels",
        before,
        data.y_train,
        ("LA101", "LA501"),
        retrain=retrain,
    )
    losses = before.history.get("loss", ())
    notes = []
    if before.max_weight_change is not None:
        notes.append(
            f"the loss was 0.0 in every epoch, yet weights moved by up to {before.max_weight_change:.3f}: "
            "Keras's TensorFlow backend computes this loss from the sigmoid's logit z with "
            "softmax_cross_entropy_with_logits over one unit, whose value is 0 but whose gradient "
            "softmax(z) - y = 1 - y pushes every negative's logit down until all outputs fall below 0.5"
        )
    case = _with_checks(
        case,
        [
            Check(
                f"Keras reports a loss of exactly 0.0 in all {len(losses)} epochs",
                bool(losses) and all(v == 0.0 for v in losses),
            ),
            *_constant_checks(case, 0, "what seed 002 saw: 'the model is predicting only class 0'"),
            _retrain_check(retrain),
        ],
        notes,
    )
    return ScenarioResult(
        "one-unit-cce",
        "a 1-unit sigmoid output trained with categorical_crossentropy",
        ("002", "004"),
        data.describe() + ", labels a 0/1 column",
        training_text(settings, epochs),
        (case,),
        (
            "Seeds 002/004 reported 26% accuracy with categorical_crossentropy and 98% with "
            "binary_crossentropy.",
        ),
        time.perf_counter() - started,
    )


def one_unit_softmax(settings: DemoSettings = DemoSettings()) -> ScenarioResult:
    """Seed 001: a 1-unit softmax with binary_crossentropy: every output is 1.0."""
    import numpy as np

    started = time.perf_counter()
    epochs = settings.epochs_for(5)
    data = load_dataset("breast_cancer")
    model = build_mlp(30, 1, "softmax", "binary_crossentropy", ["accuracy"], settings, "one_unit_softmax")
    retrain = retrain_model(model, data, data.y_train, data.y_eval, settings, epochs)
    before = retrain.before
    case = make_case(
        "keras3",
        "Dense(1, softmax) + binary_crossentropy, metrics=['accuracy'], 0/1 labels",
        before,
        data.y_train,
        ("LA102", "LA501"),
        retrain=retrain,
    )
    outputs = before.predictions
    notes = []
    before_loss = before.history.get("loss", ())
    after_loss = retrain.after.history.get("loss", ())
    if (
        before_loss
        and len(before_loss) == len(after_loss)
        and np.allclose(before_loss, after_loss, atol=1e-6)
    ):
        notes.append(
            f"the loss curve is the fixed model's to the last digit (final {before_loss[-1]:.4f}): the "
            "TensorFlow backend computes binary_crossentropy from the logit under the softmax, so the "
            "layer below learns, while the softmax over one unit turns every output into 1.0"
        )
    case = _with_checks(
        case,
        [
            Check(
                "every output is 1.0 (to float32 rounding: softmax over one unit is exp(z) / exp(z))",
                outputs is not None and bool(np.all(np.abs(outputs - 1.0) <= FLOAT32_ULP_AT_ONE)),
            ),
            *_constant_checks(case, 1, "softmax over one unit"),
            Check(
                "Keras warned about the softmax over a size-1 axis",
                any("softmax" in w.lower() for w in before.keras_warnings),
            ),
            _retrain_check(retrain),
        ],
        notes,
    )
    return ScenarioResult(
        "one-unit-softmax",
        "a 1-unit softmax output trained with binary_crossentropy",
        ("001",),
        data.describe() + ", labels a 0/1 column",
        training_text(settings, epochs),
        (case,),
        (
            "Seed 001: 'binary_crossentropy ... close to the random prediction'; its answer: with 1 output "
            "node softmax 'will always be equal to 1.0'.",
        ),
        time.perf_counter() - started,
    )


def label_loss_mismatch(settings: DemoSettings = DemoSettings()) -> ScenarioResult:
    """Seed 001 (its answers): index vs one-hot labels against sparse vs categorical losses."""
    started = time.perf_counter()
    epochs = settings.epochs_for(5)
    data = load_dataset("digits")
    cases = []
    variants = (
        (
            "index-labels-cce",
            "Dense(10, softmax) + categorical_crossentropy fed class indices 0..9",
            "categorical_crossentropy",
            data.y_train,
            data.y_eval,
            "LA201",
        ),
        (
            "one-hot-labels-sparse",
            "Dense(10, softmax) + sparse_categorical_crossentropy fed one-hot rows",
            "sparse_categorical_crossentropy",
            one_hot(data.y_train, 10),
            one_hot(data.y_eval, 10),
            "LA202",
        ),
    )
    for label, description, loss, y_train, y_eval, code in variants:
        model = build_mlp(64, 10, "softmax", loss, ["accuracy"], settings, label)
        retrain = retrain_model(model, data, y_train, y_eval, settings, epochs)
        case = make_case(label, description, retrain.before, y_train, (code,), retrain=retrain)
        case = _with_checks(
            case,
            [
                Check(
                    "Keras 3 refuses to train (ValueError)", (case.keras_error or "").startswith("ValueError")
                ),
                _retrain_check(retrain),
            ],
        )
        cases.append(case)
    return ScenarioResult(
        "label-loss-mismatch",
        "class-index labels with categorical_crossentropy, one-hot labels with the sparse loss",
        ("001",),
        data.describe(),
        training_text(settings, epochs),
        tuple(cases),
        (
            "Older Keras broadcast a (n, 1) index column against K outputs and trained on nonsense; "
            "Keras 3 stops with the error shown, and lossaudit names the mismatch before any training.",
        ),
        time.perf_counter() - started,
    )


def multi_label(settings: DemoSettings = DemoSettings()) -> ScenarioResult:
    """Multi-hot labels: softmax + CCE vs sigmoid + BCE, and the argmax 'accuracy' trap."""
    started = time.perf_counter()
    epochs = settings.epochs_for(10)
    data = load_dataset("multilabel")
    k = data.y_train.shape[1]
    model = build_mlp(
        20, k, "softmax", "categorical_crossentropy", ["accuracy"], settings, "multi_label_softmax"
    )
    retrain = retrain_model(model, data, data.y_train, data.y_eval, settings, epochs)
    softmax_case = make_case(
        "softmax-cce",
        f"Dense({k}, softmax) + categorical_crossentropy, metrics=['accuracy'], multi-hot labels",
        retrain.before,
        data.y_train,
        ("LA105", "LA402", "LA503"),
        retrain=retrain,
    )
    softmax_case = _with_checks(softmax_case, [_retrain_check(retrain)])

    trap_model = build_mlp(
        20, k, "sigmoid", "binary_crossentropy", ["accuracy"], settings, "multi_label_trap"
    )
    trap_run = train_only(trap_model, data, data.y_train, data.y_eval, settings, epochs)
    trap = make_case(
        "sigmoid-bce-accuracy",
        f"Dense({k}, sigmoid) + binary_crossentropy (the right head) with metrics=['accuracy']",
        trap_run,
        data.y_train,
        ("LA402", "LA503"),
    )
    comp = comparison_of(trap)
    trap = _with_checks(
        trap,
        [
            Check(
                "Keras 3 resolves 'accuracy' to CategoricalAccuracy (argmax) on multi-hot labels",
                trap_run.built_metrics == (("accuracy", "CategoricalAccuracy"),),
            ),
            Check(
                "the reported 'accuracy' is argmax accuracy, not per-label accuracy",
                comp is not None
                and comp.status == "wrong_definition"
                and any(d.key == "argmax" for d in comp.matches),
            ),
        ],
    )
    after = retrain.after.keras_reported.get("binary_accuracy")
    notes = []
    if after is not None and retrain.after_accuracy is not None:
        notes.append(
            f"the fixed model's binary_accuracy {after:.4f} is per-label accuracy (recomputed "
            f"{retrain.after_accuracy:.4f})"
        )
    return ScenarioResult(
        "multi-label",
        "multi-hot labels: softmax + categorical_crossentropy vs sigmoid + binary_crossentropy",
        (),
        data.describe() + f", {k} labels, multi-hot",
        training_text(settings, epochs),
        (softmax_case, trap),
        tuple(notes),
        time.perf_counter() - started,
    )


def from_logits_mismatch(settings: DemoSettings = DemoSettings()) -> ScenarioResult:
    """A linear head with from_logits=False, and a softmax head with from_logits=True."""
    keras = prepare_keras()
    started = time.perf_counter()
    epochs = settings.epochs_for(5)
    data = load_dataset("digits")
    linear = build_mlp(
        64,
        10,
        None,
        keras.losses.SparseCategoricalCrossentropy(from_logits=False),
        ["accuracy"],
        settings,
        "linear_no_logits",
    )
    retrain = retrain_model(linear, data, data.y_train, data.y_eval, settings, epochs)
    linear_case = make_case(
        "linear-from-logits-false",
        "Dense(10) (linear) + SparseCategoricalCrossentropy(from_logits=False)",
        retrain.before,
        data.y_train,
        ("LA302",),
        retrain=retrain,
    )
    linear_case = _with_checks(linear_case, [_retrain_check(retrain)])

    softmax = build_mlp(
        64,
        10,
        "softmax",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ["accuracy"],
        settings,
        "softmax_from_logits",
    )
    retrain2 = retrain_model(softmax, data, data.y_train, data.y_eval, settings, epochs)
    softmax_case = make_case(
        "softmax-from-logits-true",
        "Dense(10, softmax) + SparseCategoricalCrossentropy(from_logits=True)",
        retrain2.before,
        data.y_train,
        ("LA301",),
        retrain=retrain2,
    )
    notes = []
    if retrain2.before_accuracy is not None and same_within(
        retrain2.before_accuracy, retrain2.after_accuracy, 1e-9
    ):
        notes.append(
            "Keras 3's TensorFlow backend warns and reads the logits under the softmax, so this "
            "model trains exactly like the fixed one here; on backends that do not (JAX, PyTorch) "
            "the loss applies softmax twice"
        )
    softmax_case = _with_checks(
        softmax_case,
        [
            Check(
                "Keras warned that from_logits=True got a softmax output",
                any("from_logits" in w for w in retrain2.before.keras_warnings),
            )
        ],
        notes,
    )
    return ScenarioResult(
        "from-logits-mismatch",
        "from_logits that does not match the output layer",
        (),
        data.describe() + ", labels class indices",
        training_text(settings, epochs),
        (linear_case, softmax_case),
        (),
        time.perf_counter() - started,
    )


SCENARIOS: dict[str, Callable[[DemoSettings], ScenarioResult]] = {
    "bce-softmax-multiclass": bce_softmax_multiclass,
    "one-unit-cce": one_unit_cce,
    "one-unit-softmax": one_unit_softmax,
    "label-loss-mismatch": label_loss_mismatch,
    "multi-label": multi_label,
    "from-logits-mismatch": from_logits_mismatch,
}
SCENARIO_NAMES: tuple[str, ...] = tuple(SCENARIOS)


def run_scenarios(
    names: Iterable[str] | None = None,
    settings: DemoSettings = DemoSettings(),
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[ScenarioResult, ...]:
    """Run the named scenarios (all by default), in catalogue order.

    Raises
    ------
    BadInputError
        An unknown scenario name.
    """
    wanted = list(SCENARIO_NAMES) if names is None else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in SCENARIOS]
    if unknown:
        raise BadInputError(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIO_NAMES)}")
    prepare_keras()
    results = []
    chosen = [name for name in SCENARIO_NAMES if name in wanted]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, name in enumerate(chosen, 1):
            if progress is not None:
                progress(f"{name} ({i} of {len(chosen)})")
            results.append(SCENARIOS[name](settings))
    return tuple(results)
