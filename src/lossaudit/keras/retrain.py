"""Retrain to prove a fix: rebuild a model twice from its config, as it is and fixed, and compare.

The findings of an audit propose head changes (:class:`lossaudit.core.head.HeadFix`).
:func:`merge_fixes` combines them into one; :func:`prove_fix` rebuilds the model from its config
with fresh weights, once unchanged and once with the fix (output units and activation, a trailing
``Activation``/``Softmax`` layer made the identity, loss, ``from_logits``, metrics, label form),
trains both with the same seed, epochs, batch size and optimizer, and recomputes accuracy on the
eval set with :mod:`lossaudit.core.metrics`, so "accuracy" is the definition the task needs
(argmax, binary at 0.5 or per-label), not whatever Keras resolved.

Keras and TensorFlow are imported inside the functions: importing this module is cheap.

Why one module of about 730 lines: proving a fix is one experiment -- merge the fixes, rebuild
both models from the config, train them alike, recompute and judge -- and its rebuilding helpers
(optimizer, loss, metrics, label transforms) serve only that experiment.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lossaudit.core.findings import Finding, Severity
from lossaudit.core.head import HeadFix, HeadSpec, LossKind, LossSpec
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np

    from lossaudit.core.metrics import RecomputedMetrics

DEFAULT_MIN_GAIN = 0.02
"""How much the fixed model's accuracy must beat the original's (and the majority baseline) by."""
MAX_EPOCHS = 200
"""Retraining is a check, not a training job: epochs are bounded."""

_HEAD_ACTIVATION_LAYERS = ("Activation", "Softmax")
_FIX_FIELDS = ("units", "activation", "loss", "from_logits", "metrics", "label_transform")
_LABEL_TRANSFORMS = ("one_hot", "index")


def merge_fixes(findings: Iterable[Finding]) -> HeadFix:
    """Combine the head fixes that error and warning findings propose into one.

    Errors come before warnings; within a severity the findings' (catalogue) order decides. For
    each field the first proposal wins; a later, different proposal is noted, not applied.

    Parameters
    ----------
    findings : iterable of Finding
        From an audit report. Info findings and findings without a fix are ignored.

    Returns
    -------
    HeadFix
        Empty (``is_empty()``) when no finding proposes a change. ``notes`` say which finding
        proposed what, and which proposals lost.
    """
    ranked = sorted(
        (f for f in findings if f.severity.at_least(Severity.WARNING) and f.head_fix is not None),
        key=lambda f: -f.severity.rank,
    )
    chosen: dict[str, Any] = {}
    source: dict[str, str] = {}
    notes: list[str] = []
    for finding in ranked:
        fix = finding.head_fix
        assert fix is not None
        proposed = {name: getattr(fix, name) for name in _FIX_FIELDS if getattr(fix, name) is not None}
        if not proposed:
            continue
        applied: list[str] = []
        for name, value in proposed.items():
            if name not in chosen:
                chosen[name] = value
                source[name] = finding.code
                applied.append(f"{name}={_show(value)}")
            elif chosen[name] != value:
                notes.append(
                    f"{finding.code} proposes {name}={_show(value)}; kept {_show(chosen[name])} "
                    f"from {source[name]}"
                )
        if applied:
            notes.append(f"{finding.code}: " + ", ".join(applied))
        notes.extend(fix.notes)
    return HeadFix(**chosen, notes=tuple(dict.fromkeys(notes)))


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def describe_fix(fix: HeadFix) -> str:
    """``"activation=sigmoid, loss=binary_crossentropy"``: the fields a fix sets, for reports."""
    parts = [f"{name}={_show(getattr(fix, name))}" for name in _FIX_FIELDS if getattr(fix, name) is not None]
    return ", ".join(parts) if parts else "no change"


@dataclass(frozen=True)
class TrainedRun:
    """One model trained and evaluated: what Keras said and what the eval set says.

    ``predictions`` and ``y_eval`` (the labels as the model was fed them) are kept for audits and
    tests; :meth:`to_dict` leaves them out.
    """

    head: HeadSpec
    keras_reported: Mapping[str, float]
    """``model.evaluate(..., return_dict=True)`` on the eval set."""
    history: Mapping[str, tuple[float, ...]]
    built_metrics: tuple[tuple[str, str], ...] | None
    metrics: RecomputedMetrics | None
    error: str | None = None
    """Why Keras refused to train or evaluate (``ValueError: ...``), if it did."""
    keras_warnings: tuple[str, ...] = ()
    label_transform: str | None = None
    recompute_note: str | None = None
    max_weight_change: float | None = None
    """Largest absolute change of any weight during fit: shows whether training moved the model."""
    predictions: np.ndarray | None = field(default=None, repr=False, compare=False)
    y_eval: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def accuracy(self) -> float | None:
        return None if self.metrics is None else self.metrics.accuracy

    @property
    def majority_baseline(self) -> float | None:
        return None if self.metrics is None else self.metrics.values.get("majority_baseline")

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.metrics is not None:
            keep = ("accuracy", "subset_accuracy", "balanced_accuracy", "majority_baseline", "f1_macro")
            values = {k: self.metrics.values[k] for k in keep if k in self.metrics.values}
        return {
            "head": self.head.to_dict(),
            "keras_reported": dict(self.keras_reported),
            "history": {k: list(v) for k, v in self.history.items()},
            "built_metrics": None if self.built_metrics is None else [list(p) for p in self.built_metrics],
            "recomputed": values,
            "task": None if self.metrics is None else self.metrics.task,
            "predicted_counts": None if self.metrics is None else list(self.metrics.predicted_counts),
            "error": self.error,
            "keras_warnings": list(self.keras_warnings),
            "label_transform": self.label_transform,
            "recompute_note": self.recompute_note,
            "max_weight_change": self.max_weight_change,
        }


@dataclass(frozen=True)
class RetrainResult:
    """The original and the fixed model, trained alike; ``proven`` says whether the fix helped."""

    fix: HeadFix
    before: TrainedRun
    after: TrainedRun
    epochs: int
    batch_size: int
    seed: int
    optimizer: str
    learning_rate: float | None
    min_gain: float
    proven: bool
    summary: str
    """``"fix proven: accuracy 0.374 -> 0.953"`` or ``"not proven: ..."``."""
    seconds: float = 0.0
    before_seeds: tuple[float | None, ...] = ()
    """Accuracy of the original head retrained with each seed (``seed``, ``seed + 1``, ...)."""
    after_seeds: tuple[float | None, ...] = ()
    """Accuracy of the fixed head retrained with each seed."""

    @property
    def gain_beyond_spread(self) -> float | None:
        """Worst fixed run minus best original run over the seeds: positive when every fixed run
        beats every original one (the gain is beyond the spread of the seeds); None with fewer
        than two seeds or a run without an accuracy."""
        if len(self.after_seeds) < 2 or None in self.after_seeds:
            return None
        after = [a for a in self.after_seeds if a is not None]
        before = [b for b in self.before_seeds if b is not None]
        if len(before) < len(self.before_seeds):  # the original could not even train
            return min(after) - (self.after.majority_baseline or 0.0)
        return min(after) - max(before)

    @property
    def before_accuracy(self) -> float | None:
        return self.before.accuracy

    @property
    def after_accuracy(self) -> float | None:
        return self.after.accuracy

    def to_dict(self) -> dict[str, Any]:
        return {
            "proven": self.proven,
            "summary": self.summary,
            "fix": {
                name: (list(v) if isinstance(v, tuple) else v)
                for name in _FIX_FIELDS
                if (v := getattr(self.fix, name)) is not None
            },
            "fix_notes": list(self.fix.notes),
            "before_accuracy": self.before_accuracy,
            "after_accuracy": self.after_accuracy,
            "majority_baseline": self.after.majority_baseline or self.before.majority_baseline,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "min_gain": self.min_gain,
            "seconds": round(self.seconds, 3),
            "seeds": len(self.after_seeds) or 1,
            "before_seeds": list(self.before_seeds),
            "after_seeds": list(self.after_seeds),
            "gain_beyond_spread": self.gain_beyond_spread,
        }


def judge(before: TrainedRun, after: TrainedRun, min_gain: float = DEFAULT_MIN_GAIN) -> tuple[bool, str]:
    """(proven, summary): the fix is proven when the fixed model's accuracy beats the original's
    by at least ``min_gain`` (or the original could not train at all) and beats the majority
    baseline by at least ``min_gain``."""
    after_acc = after.accuracy
    if after.error is not None or after_acc is None:
        why = after.error or after.recompute_note or "no accuracy for the fixed model"
        return False, f"not proven: the fixed model did not train ({why})"
    baseline = after.majority_baseline
    base_text = "" if baseline is None else f" (majority baseline {baseline:.3f})"
    if before.error is not None:
        head = (
            f"before: Keras refused to train ({_error_kind(before.error)}); after: accuracy {after_acc:.3f}"
        )
        if baseline is not None and after_acc < baseline + min_gain:
            return False, f"not proven: {head}, not above the majority baseline {baseline:.3f}"
        return True, f"fix proven: {head}{base_text}"
    before_acc = before.accuracy
    if before_acc is None:
        why = before.recompute_note or "no accuracy for the original model"
        if baseline is not None and after_acc >= baseline + min_gain:
            return True, f"fix proven: original not scorable ({why}); after: accuracy {after_acc:.3f}"
        return False, f"not proven: original not scorable ({why}); after: accuracy {after_acc:.3f}"
    arrow = f"accuracy {before_acc:.3f} -> {after_acc:.3f}"
    gain = after_acc - before_acc
    if gain < min_gain:
        return False, f"not proven: {arrow} (gain {gain:+.3f} < {min_gain:.3f})"
    if baseline is not None and after_acc < baseline + min_gain:
        return False, f"not proven: {arrow}, not above the majority baseline {baseline:.3f}"
    return True, f"fix proven: {arrow}"


def _error_kind(error: str) -> str:
    return error.split(":", 1)[0]


def prove_fix(
    model_or_config: Any,
    fix: HeadFix,
    x_train: Any,
    y_train: Any,
    x_eval: Any,
    y_eval: Any,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    seed: int = 0,
    optimizer: Any = None,
    learning_rate: float | None = None,
    min_gain: float = DEFAULT_MIN_GAIN,
    seeds: int = 1,
) -> RetrainResult:
    """Rebuild the model twice from its config (as it is, and fixed), train both alike, compare.

    Parameters
    ----------
    model_or_config : keras.Model or mapping
        A compiled Keras 3 model, or a serialized one: a mapping with ``class_name`` and ``config``
        (``keras.saving.serialize_keras_object(model)``, or a ``.keras`` file's ``config.json``)
        and a ``compile_config``. Only its config and compile config are used; weights are
        fresh for both models.
    fix : HeadFix
        From :func:`merge_fixes`. ``label_transform`` ``"one_hot"``/``"index"`` is applied to the
        labels of the fixed model; without it, labels are converted when the fixed loss needs the
        other form (index labels for a categorical loss, one-hot for a sparse one).
    x_train, y_train, x_eval, y_eval : array-like
        Features (n, ...) and labels as the original model takes them.
    epochs, batch_size, seed : int
        The same for both models; ``keras.utils.set_random_seed(seed)`` runs before each build so
        shared layers start from the same weights and batches are shuffled alike.
    optimizer : str or keras.optimizers.Optimizer, optional
        Default: the model's compiled optimizer class and config. Each model gets a fresh one.
    learning_rate : float, optional
        Overrides the optimizer's learning rate.
    min_gain : float
        See :func:`judge`.
    seeds : int
        How many seeds (``seed``, ``seed + 1``, ...) each head is trained with. With two or more,
        the fix is proven only when every fixed run beats every original run by ``min_gain``
        (the gain is beyond the spread of the seeds), and the result keeps each run's accuracy.

    Raises
    ------
    BadInputError
        Mismatched or non-finite data, an uncompiled model, a head the fix cannot be applied to.
    """

    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
        raise BadInputError(f"epochs must be an integer in 1..{MAX_EPOCHS}, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BadInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not 0.0 <= min_gain < 1.0:
        raise BadInputError(f"min_gain must be in [0, 1), got {min_gain}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 10:
        raise BadInputError(f"seeds must be an integer in 1..10, got {seeds!r}")
    xt, yt = _checked_pair(x_train, y_train, "training")
    xe, ye = _checked_pair(x_eval, y_eval, "eval")
    if xt.shape[1:] != xe.shape[1:]:
        raise BadInputError(f"training features {xt.shape[1:]} and eval features {xe.shape[1:]} differ")

    started = time.perf_counter()
    import keras

    original = _as_model(model_or_config)
    compile_config = original.get_compile_config() if original.compiled else None
    if not compile_config or compile_config.get("loss") is None:
        raise BadInputError("the model is not compiled with a loss: retraining needs its loss and metrics")
    opt_class, opt_config = _optimizer_recipe(optimizer, original, learning_rate)

    from lossaudit.keras.live import head_from_model

    original_head = head_from_model(original)
    fixed_head = fix.apply(original_head)

    def fresh_optimizer() -> Any:
        return opt_class.from_config(dict(opt_config))

    transform = _label_transform(fix, fixed_head, yt)
    yt_fixed = _transform_labels(yt, transform, fixed_head.units)
    ye_fixed = _transform_labels(ye, transform, fixed_head.units)
    loss_changed = fix.loss is not None or fix.from_logits is not None

    def train_pair(run_seed: int) -> tuple[TrainedRun, TrainedRun]:
        with keras.device("cpu:0"):
            keras.utils.set_random_seed(run_seed)
            before_model = _rebuild(original, HeadFix())
            before_model.compile(
                optimizer=fresh_optimizer(),
                loss=_deserialize_loss(compile_config["loss"]),
                metrics=_deserialize_metrics(compile_config.get("metrics")),
            )
            before_run = train_and_evaluate(
                before_model, xt, yt, xe, ye, epochs=epochs, batch_size=batch_size, seed=run_seed
            )
            keras.utils.set_random_seed(run_seed)
            after_model = _rebuild(original, fix)
            after_model.compile(
                optimizer=fresh_optimizer(),
                loss=_loss_for(fixed_head.loss)
                if loss_changed
                else _deserialize_loss(compile_config["loss"]),
                metrics=list(fix.metrics)
                if fix.metrics is not None
                else _deserialize_metrics(compile_config.get("metrics")),
            )
            after_run = train_and_evaluate(
                after_model, xt, yt_fixed, xe, ye_fixed, epochs=epochs, batch_size=batch_size, seed=run_seed
            )
        return before_run, after_run

    before, after = train_pair(seed)
    before_seeds: list[float | None] = [before.accuracy]
    after_seeds: list[float | None] = [after.accuracy]
    for extra in range(1, seeds):
        more_before, more_after = train_pair(seed + extra)
        before_seeds.append(more_before.accuracy)
        after_seeds.append(more_after.accuracy)
    after = replace(after, label_transform=transform)
    proven, summary = judge(before, after, min_gain)
    if seeds > 1:
        proven, summary = _judge_seeds(proven, summary, tuple(before_seeds), tuple(after_seeds), min_gain)
    return RetrainResult(
        fix=fix,
        before=before,
        after=after,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        optimizer=opt_class.__name__,
        learning_rate=_learning_rate_value(opt_config),
        min_gain=min_gain,
        proven=proven,
        summary=summary,
        seconds=time.perf_counter() - started,
        before_seeds=tuple(before_seeds) if seeds > 1 else (),
        after_seeds=tuple(after_seeds) if seeds > 1 else (),
    )


def _judge_seeds(
    proven: bool,
    summary: str,
    before: tuple[float | None, ...],
    after: tuple[float | None, ...],
    min_gain: float,
) -> tuple[bool, str]:
    """Over several seeds the fix is proven only when every fixed run beats every original run by
    ``min_gain``: a gain within the seeds' own spread is not evidence."""

    def span(values: tuple[float | None, ...]) -> str:
        got = [v for v in values if v is not None]
        if not got:
            return "not trained"
        return f"{min(got):.3f}-{max(got):.3f}" if len(got) > 1 else f"{got[0]:.3f}"

    arrow = f"over {len(after)} seeds, accuracy {span(before)} -> {span(after)}"
    if not proven:
        return False, f"{summary}; {arrow}"
    fixed = [a for a in after if a is not None]
    original = [b for b in before if b is not None]
    if len(fixed) < len(after):
        return False, f"not proven: a fixed run did not train; {arrow}"
    if original and min(fixed) - max(original) < min_gain:
        return False, (
            f"not proven: {arrow}: the gain is within the spread of the seeds "
            f"(worst fixed {min(fixed):.3f} - best original {max(original):.3f} < {min_gain:.3f})"
        )
    return True, f"fix proven {arrow}, beyond the spread of the seeds"


def train_and_evaluate(
    model: Any,
    x_train: Any,
    y_train: Any,
    x_eval: Any,
    y_eval: Any,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
) -> TrainedRun:
    """Fit a compiled Keras 3 model, evaluate and predict on the eval set, recompute its metrics.

    A Keras error during fit or evaluate (for example labels of the wrong rank for the loss) is
    recorded in ``error`` rather than raised: it is what the audit wants to show.
    """
    import numpy as np

    import keras
    from lossaudit.keras.live import built_metric_classes, head_from_model

    head = head_from_model(model)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        try:
            keras.utils.set_random_seed(seed)
            initial = [np.array(w, copy=True) for w in model.get_weights()]
            fitted = model.fit(
                x_train, y_train, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0
            )
            reported = model.evaluate(x_eval, y_eval, batch_size=batch_size, verbose=0, return_dict=True)
            predictions = np.asarray(model.predict(x_eval, batch_size=max(batch_size, 256), verbose=0))
        except (ValueError, TypeError) as exc:
            # Keras 3 refuses mismatched label and output shapes with a ValueError: the finding.
            error = f"{type(exc).__name__}: {_first_line(exc)}"
            caught = _warning_lines(records)
            return TrainedRun(head, {}, {}, None, None, error=error, keras_warnings=tuple(caught))
        caught = _warning_lines(records)
    history = {k: tuple(float(v) for v in vals) for k, vals in fitted.history.items()}
    keras_reported = {k: float(v) for k, v in reported.items()}
    built = built_metric_classes(model)
    moved = max(
        (float(np.abs(np.asarray(w) - w0).max()) for w, w0 in zip(model.get_weights(), initial, strict=True)),
        default=0.0,
    )
    metrics, note = _recompute(head, y_eval, predictions)
    return TrainedRun(
        head,
        keras_reported,
        history,
        built,
        metrics,
        keras_warnings=tuple(caught),
        recompute_note=note,
        max_weight_change=moved,
        predictions=predictions,
        y_eval=np.asarray(y_eval),
    )


def _recompute(head: HeadSpec, y: Any, predictions: Any) -> tuple[RecomputedMetrics | None, str | None]:
    from lossaudit.core.audit import inspect_labels
    from lossaudit.core.metrics import read_outputs, recompute

    try:
        labels = inspect_labels(y, head)
        outputs = read_outputs(predictions, head, labels)
        return recompute(y, labels, outputs, head), None
    except BadInputError as exc:
        # For example labels 0..9 against a 1-unit head: the original cannot be scored as a task.
        return None, str(exc)


def _warning_lines(records: list[warnings.WarningMessage]) -> list[str]:
    """Distinct warning messages, one line each; the same message for another batch shape once."""
    seen: dict[str, str] = {}
    for record in records:
        text = str(record.message).strip().strip('"')
        if not text or "retracing" in text:
            continue
        line = text.splitlines()[0]
        seen.setdefault(re.sub(r"\([^)]*\)", "(...)", line), line)
    return list(seen.values())


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


def _checked_pair(x: Any, y: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    try:
        xa = np.asarray(x, dtype=np.float32)
        ya = np.asarray(y, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadInputError(f"{what} data are not numeric arrays") from None
    if xa.ndim < 2 or xa.shape[0] == 0:
        raise BadInputError(f"{what} features must have shape (n, ...) with n > 0, got {xa.shape}")
    if ya.ndim == 0 or ya.shape[0] != xa.shape[0]:
        raise BadInputError(f"{what} features have {xa.shape[0]} rows but labels have shape {ya.shape}")
    if not np.isfinite(xa).all():
        raise BadInputError(f"{what} features contain NaN or infinite values")
    if not np.isfinite(ya).all():
        raise BadInputError(f"{what} labels contain NaN or infinite values")
    return xa, ya


def _as_model(model_or_config: Any) -> Any:
    import keras

    if isinstance(model_or_config, keras.Model):
        return model_or_config
    if isinstance(model_or_config, Mapping):
        if "class_name" not in model_or_config or "config" not in model_or_config:
            raise BadInputError("a model config needs 'class_name' and 'config' (serialize_keras_object)")
        try:
            model = keras.saving.deserialize_keras_object(dict(model_or_config))
        except Exception as exc:
            raise BadInputError(f"cannot rebuild the model from its config: {_first_line(exc)}") from None
        if not isinstance(model, keras.Model):
            raise BadInputError(f"the config describes a {type(model).__name__}, not a model")
        compile_config = model_or_config.get("compile_config")
        if compile_config:
            model.compile_from_config(compile_config)
        return model
    raise BadInputError(
        f"expected a Keras model or its serialized config, got {type(model_or_config).__name__}"
    )


def _head_layers(model: Any) -> tuple[Any, list[Any]]:
    """(output Dense layer, the Activation/Softmax layers after it) of a single-output model."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    trailing: list[Any] = []
    for layer in reversed(layers):
        name = type(layer).__name__
        if name in _HEAD_ACTIVATION_LAYERS:
            trailing.append(layer)
            continue
        if name == "Dense":
            return layer, trailing
        raise BadInputError(
            f"the output layer is {name} ({layer.name!r}), not Dense: lossaudit cannot apply a head fix to it"
        )
    raise BadInputError("the model has no Dense output layer")


def _rebuild(original: Any, fix: HeadFix) -> Any:
    """A fresh copy of ``original`` (new weights) with the fix's units and activation applied.

    Sequential models are rebuilt without the trailing activation layers the fix replaces; in
    functional models those layers become the identity (a linear ``Activation``), which keeps the
    graph wiring as it is.
    """
    import keras

    dense, trailing = _head_layers(original)
    # The fix's activation replaces the whole chain (HeadFix.apply): the trailing layers go.
    dropped_names = {layer.name for layer in trailing} if fix.activation is not None else set()

    def clone_layer(layer: Any) -> Any:
        config = layer.get_config()
        if layer is dense:
            if fix.units is not None:
                config["units"] = fix.units
            if fix.activation is not None:
                config["activation"] = fix.activation
        return type(layer).from_config(config)

    def call_layer(layer: Any, *args: Any, **kwargs: Any) -> Any:
        # A dropped layer passes its input through: it is never called, so it is not in the graph.
        return args[0] if layer.name in dropped_names else layer(*args, **kwargs)

    if isinstance(original, keras.Sequential):
        if not original.inputs:
            raise BadInputError("the Sequential model is not built: give it an Input or call build()")
        inputs = original.inputs[0]
        layers = [keras.Input(shape=tuple(inputs.shape[1:]), dtype=inputs.dtype)]
        layers += [clone_layer(layer) for layer in original.layers if layer.name not in dropped_names]
        return keras.Sequential(layers, name=original.name)
    if len(original.outputs) != 1:
        raise BadInputError(f"the model has {len(original.outputs)} outputs; retraining handles one")
    return keras.models.clone_model(original, clone_function=clone_layer, call_function=call_layer)


def _optimizer_recipe(
    optimizer: Any, model: Any, learning_rate: float | None
) -> tuple[type[Any], dict[str, Any]]:
    import keras

    if optimizer is None:
        optimizer = model.optimizer
        if optimizer is None:
            raise BadInputError("the model has no optimizer and none was given")
    try:
        instance = keras.optimizers.get(optimizer)
    except (ValueError, TypeError) as exc:
        raise BadInputError(f"unknown optimizer {optimizer!r}: {_first_line(exc)}") from None
    config = dict(instance.get_config())
    if learning_rate is not None:
        if not (
            isinstance(learning_rate, int | float) and math.isfinite(learning_rate) and learning_rate > 0
        ):
            raise BadInputError(f"learning_rate must be a positive number, got {learning_rate!r}")
        config["learning_rate"] = float(learning_rate)
    return type(instance), config


def _learning_rate_value(config: Mapping[str, Any]) -> float | None:
    value = config.get("learning_rate")
    if isinstance(value, int | float):
        # Keras stores it as float32: 0.009999999776 reads better as 0.01.
        return float(f"{float(value):.6g}")
    return None


def _deserialize_loss(loss: Any) -> Any:
    import keras

    if isinstance(loss, str) or loss is None:
        return loss
    return keras.losses.deserialize(loss)


def _deserialize_metrics(metrics: Any) -> Any:
    import keras

    if metrics is None:
        return None
    if isinstance(metrics, str | Mapping):
        metrics = [metrics]
    out: list[Any] = []
    for metric in metrics:
        # 'accuracy' must stay a string: Keras resolves it from the shapes.
        out.append(metric if isinstance(metric, str) else keras.metrics.deserialize(metric))
    return out


def _loss_for(spec: LossSpec | None) -> Any:
    """A Keras loss object for a fixed head's loss, keeping from_logits and label smoothing."""
    import keras

    if spec is None:
        raise BadInputError("the fix leaves the model without a loss")
    if spec.kind is LossKind.BINARY_CE and spec.name == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(
            from_logits=spec.from_logits, label_smoothing=spec.label_smoothing
        )
    if spec.kind is LossKind.CATEGORICAL_CE and spec.name == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(
            from_logits=spec.from_logits, label_smoothing=spec.label_smoothing
        )
    if spec.kind is LossKind.SPARSE_CE:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=spec.from_logits)
    try:
        return keras.losses.get(spec.name)
    except ValueError:
        raise BadInputError(f"unknown loss {spec.name!r} in the fix") from None


def _label_transform(fix: HeadFix, fixed_head: HeadSpec, y: np.ndarray) -> str | None:
    """The label conversion the fixed head needs: the fix's own, else one implied by its loss."""
    from lossaudit.core.labels import LabelEncoding, detect_labels

    if fix.label_transform is not None:
        if fix.label_transform not in _LABEL_TRANSFORMS:
            raise BadInputError(f"unknown label transform {fix.label_transform!r}; use one_hot or index")
        return fix.label_transform
    kind = fixed_head.loss.kind if fixed_head.loss is not None else None
    evidence = detect_labels(y)
    if kind is LossKind.CATEGORICAL_CE and evidence.is_sparse and fixed_head.units > 1:
        return "one_hot"
    if kind is LossKind.SPARSE_CE and evidence.encoding in (LabelEncoding.ONE_HOT, LabelEncoding.SOFT):
        return "index"
    return None


def _transform_labels(y: np.ndarray, transform: str | None, units: int) -> np.ndarray:
    import numpy as np

    if transform is None:
        return y
    if transform == "index":
        if y.ndim != 2 or y.shape[1] < 2:
            raise BadInputError(f"labels of shape {y.shape} are not one-hot rows: cannot take their argmax")
        indices: np.ndarray = y.argmax(axis=1).astype(np.int64)
        return indices
    flat = y.reshape(-1)
    if y.ndim == 2 and y.shape[1] != 1:
        raise BadInputError(f"labels of shape {y.shape} are not class indices: cannot one-hot them")
    if (flat != np.round(flat)).any() or flat.min() < 0 or flat.max() >= units:
        raise BadInputError(f"labels are not class indices in 0..{units - 1}: cannot one-hot them")
    out = np.zeros((flat.size, units), dtype=np.float32)
    out[np.arange(flat.size), flat.astype(np.int64)] = 1.0
    return out
