"""Run a live Keras model on the eval data once: predictions, and the numbers Keras reports.

The predictions are what the model returns (what Keras metrics see); whether they are logits or
probabilities is read from the head, never guessed from the values.

The numbers Keras itself reports for the compiled loss and metrics (source ``"evaluate"``) come
from the same forward pass (:func:`predict_and_evaluate`): each batch's outputs go through the
model's own compiled loss and metric objects -- the ones ``model.evaluate`` builds, reset as it
resets them, updated batch by batch as its test step updates them -- so the classes, thresholds
and the per-sample weighting of the loss over batches are Keras's, not a reimplementation. What
``evaluate``'s test step does, and what :func:`predict_and_evaluate` does instead (read from the
libraries' sources):

* Keras 3 (``keras/src/backend/tensorflow/trainer.py``, ``keras/src/trainers/trainer.py``):
  ``evaluate`` runs ``_symbolic_build`` on the first batch (building ``CompileLoss`` and
  ``CompileMetrics`` from the label and output shapes), ``reset_metrics()``, then per batch
  ``test_step``: ``y_pred = model(x, training=False)``; ``loss = model._compute_loss(...)`` (the
  compiled loss plus ``model.losses``, the regularisation terms); ``_loss_tracker.update_state(
  loss, sample_weight=batch rows)``; ``compute_metrics(x, y, y_pred)``. The same calls run here,
  in one ``tf.function`` per batch that also returns ``y_pred``.
* tf-keras (``tf_keras/src/engine/training.py``): ``test_step`` is ``y_pred = model(x,
  training=False)``; ``compute_loss`` (whose ``compiled_loss`` keeps the loss's own mean, weighted
  by batch rows, and adds ``model.losses``); ``compute_metrics``. The same calls run here; the
  first batch eagerly, so a refusal reads as Keras's own error rather than a traced one.

Both feed the data as their data adapters do: floating arrays cast to ``floatx``, others as they
are. A model that overrides ``test_step`` itself is not followed (its ``compute_loss`` and
``compute_metrics`` overrides are). :func:`evaluate_live` still runs a plain ``model.evaluate``:
the tests use it as the oracle the one pass must equal.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from lossaudit.core.chunks import release
from lossaudit.core.compare import ReportedMetric
from lossaudit.core.head import PROBABILITY_ACTIVATIONS, HeadSpec
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_BATCH_SIZE = 256
PROGRESS_MIN_BATCHES = 20
"""A progress bar is shown (on a terminal) only for runs of more batches than this."""
EVALUATE_SOURCE = "evaluate"

ProgressCallback = Callable[[int, int], None]
"""Told (rows predicted so far, rows in all) after each batch."""
BatchConsumer = Callable[[int, "np.ndarray"], None]
"""Takes each batch's outputs (float64, (rows, units)) with the index of its first row, in row
order, in place of keeping them (:class:`lossaudit.core.blockwise.BlockReducer.add`)."""


def output_kind(head: HeadSpec) -> str:
    """``probabilities`` (softmax/sigmoid output), ``logits`` (linear output) or ``scores`` (other)."""
    if head.activation in PROBABILITY_ACTIVATIONS:
        return "probabilities"
    return "logits" if head.activation == "linear" else "scores"


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:limit]


def _input_shape(model: Any) -> tuple[int | None, ...] | None:
    """The model's one input shape without the batch axis, or None when it does not say."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        return None
    try:
        return tuple(None if d is None else int(d) for d in tuple(inputs[0].shape)[1:])
    except (TypeError, ValueError):  # an unknown rank
        return None


def conform_input(model: Any, x: np.ndarray) -> np.ndarray:
    """``x`` shaped as Keras shapes it for the model's input, where Keras itself accepts it.

    A 1-D ``x`` of n values for a model taking ``(None, 1)`` becomes ``(n, 1)``; generally, a
    trailing axis of 1 the model expects is added, and one it does not expect is dropped (Keras 3's
    functional ``_adjust_input_rank``; tf-keras expands a 1-D ``x`` the same way). Anything else is
    left for :func:`check_input_shape` to refuse.
    """
    expected = _input_shape(model)
    if expected is None:
        return x
    if x.ndim == len(expected) and expected and expected[-1] == 1:
        return x.reshape(*x.shape, 1)
    if x.ndim == len(expected) + 2 and x.shape[-1] == 1:
        return x.reshape(x.shape[:-1])
    return x


def check_input_shape(model: Any, x: np.ndarray) -> None:
    """One clear line when the data's feature shape is not the model's input shape."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return
    if len(inputs) > 1:
        raise BadInputError(f"model has {len(inputs)} inputs; lossaudit feeds one array x")
    expected = tuple(inputs[0].shape)[1:]
    got = tuple(x.shape[1:])
    if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got, strict=True)):
        shown = tuple("None" if e is None else e for e in expected)
        raise BadInputError(
            f"the model takes inputs of shape (n, {', '.join(map(str, shown))}) but x has shape {x.shape}"
        )


def _show_progress(n_batches: int, progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return n_batches > PROGRESS_MIN_BATCHES and sys.stderr.isatty()


@contextmanager
def _batches(starts: range, n: int, progress: bool | None) -> Iterator[Iterable[int]]:
    """The batch starts, behind a progress bar on stderr when :func:`_show_progress` says so."""
    if not _show_progress(len(starts), progress):
        yield starts
        return
    import click

    with click.progressbar(starts, label=f"predicting {n} samples", file=sys.stderr, show_pos=True) as bar:
        yield bar


@overload
def predict_in_batches(
    model: Any,
    x: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
    on_batch: None = None,
    on_progress: ProgressCallback | None = None,
) -> np.ndarray: ...


@overload
def predict_in_batches(
    model: Any,
    x: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
    on_batch: BatchConsumer,
    on_progress: ProgressCallback | None = None,
) -> None: ...


def predict_in_batches(
    model: Any,
    x: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
    on_batch: BatchConsumer | None = None,
    on_progress: ProgressCallback | None = None,
) -> np.ndarray | None:
    """The model's outputs on ``x``, batch by batch, as float64 of shape (n, units); or, with
    ``on_batch``, each batch's outputs handed to it and none kept (returns None).

    Parameters
    ----------
    model : a Keras 3 or tf-keras model with one output.
    x : array of shape (n, ...) matching the model's input (a 1-D x of n values is fed as (n, 1)
        to a model taking (None, 1), as Keras feeds it: :func:`conform_input`).
    batch_size : samples per ``predict_on_batch`` call.
    progress : force the progress bar on or off; by default it is shown on stderr when stderr
        is a terminal and the run has more than :data:`PROGRESS_MIN_BATCHES` batches.
    on_batch : a :data:`BatchConsumer`: the outputs go to it, batch by batch, instead of being kept.
    on_progress : told (rows done, rows) after each batch (a caller's own progress display).

    Raises
    ------
    BadInputError
        For a wrong input shape, several outputs, or an error from the model (one line).
    """
    import numpy as np

    if batch_size < 1:
        raise BadInputError(f"batch size must be at least 1, got {batch_size}")
    n = int(x.shape[0]) if x.ndim else 0
    if n == 0:
        raise BadInputError("the eval data has no samples")
    x = conform_input(model, x)
    check_input_shape(model, x)
    starts = range(0, n, batch_size)
    chunks: list[np.ndarray] = []

    def run_batch(start: int) -> None:
        batch = x[start : start + batch_size]
        rows = batch.shape[0]
        if rows < batch_size and n > batch_size:
            # Pad the last, shorter batch (repeating its rows) so the compiled predict function
            # sees one batch shape and is traced once, not twice; the padding is cut off below.
            batch = np.resize(batch, (batch_size, *batch.shape[1:]))
        out = model.predict_on_batch(batch)
        if isinstance(out, list | tuple | dict):
            raise BadInputError("the model returns several outputs; lossaudit audits single-output models")
        arr = np.asarray(out, dtype=np.float64)[:rows]
        arr = arr.reshape(rows, -1) if arr.ndim != 2 else arr
        if on_batch is not None:
            on_batch(start, arr)
        else:
            chunks.append(arr)
        release(x[start : start + batch_size])
        if on_progress is not None:
            on_progress(start + rows, n)

    try:
        with _batches(starts, n, progress) as batches:
            for start in batches:
                run_batch(start)
    except BadInputError:
        raise
    except Exception as exc:  # a Keras/TensorFlow error: one line, never a traceback
        raise BadInputError(
            f"the model failed to predict: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    return None if on_batch is not None else np.concatenate(chunks, axis=0)


@dataclass(frozen=True)
class LiveEvaluation:
    """The numbers ``model.evaluate`` reports (from :func:`predict_and_evaluate`'s one pass, or
    :func:`evaluate_live`), or why Keras could not give them."""

    values: Mapping[str, float] = field(default_factory=dict)
    """Keras's own numbers by compiled name (``loss``, ``accuracy``...); empty when it failed."""
    error: str | None = None
    """``TypeName: first line`` of the exception Keras raised (incompatible labels, no loss)."""
    non_finite: tuple[str, ...] = ()
    """Names whose value was NaN or infinite (a diverged loss): kept out of ``values``."""
    keras_warnings: tuple[str, ...] = ()
    """Python warnings Keras raised while evaluating (first line of each, deduplicated)."""

    @property
    def ran(self) -> bool:
        return self.error is None

    def reported(self) -> tuple[ReportedMetric, ...]:
        """The numbers as reported metrics with source ``"evaluate"``."""
        return tuple(ReportedMetric.from_value(k, v, EVALUATE_SOURCE) for k, v in self.values.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": dict(self.values),
            "error": self.error,
            "non_finite": list(self.non_finite),
            "keras_warnings": list(self.keras_warnings),
        }


def evaluate_live(
    model: Any, x: np.ndarray, y: np.ndarray, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> LiveEvaluation:
    """Run ``model.evaluate(x, y, return_dict=True)``; record, never raise, what Keras refuses.

    Keras 3 raises for labels that do not fit the loss (integer labels with categorical
    cross-entropy: "must have the same rank"); the audit still judges the predictions and the
    rules explain the mismatch, so the error is kept as data. A model compiled without a loss
    cannot be evaluated either.
    """
    if getattr(model, "loss", None) is None:
        return LiveEvaluation(error="the model is not compiled with a loss; evaluate skipped")
    x = conform_input(model, x)
    # Keras's own warnings (a SyntaxWarning for categorical cross-entropy on one unit) are
    # evidence for the report, not noise for the terminal.
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        try:
            raw = model.evaluate(x, y, batch_size=batch_size, return_dict=True, verbose=0)
        except Exception as exc:  # ValueError, TypeError, tf.errors.*: any Keras refusal
            return LiveEvaluation(
                error=f"{type(exc).__name__}: {_first_line(exc)}", keras_warnings=_warning_lines(records)
            )
    values, non_finite = _finite_values(dict(raw))
    return LiveEvaluation(values=values, non_finite=non_finite, keras_warnings=_warning_lines(records))


def predict_and_evaluate(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
    on_batch: BatchConsumer | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[np.ndarray | None, LiveEvaluation]:
    """One pass over ``x``: the model's outputs and the numbers ``model.evaluate`` would report.

    Each batch is predicted once; its outputs go through the model's compiled loss and metric
    objects (reset first, as ``evaluate`` resets them), so the values equal ``evaluate``'s on the
    same batches (see the module docstring for the calls, by Keras family). What Keras refuses
    (labels that do not fit the loss, no loss compiled) is recorded in the evaluation, as
    :func:`evaluate_live` records it, and the predictions still come back.

    Parameters
    ----------
    model : a Keras 3 or tf-keras model with one output.
    x : array of shape (n, ...) matching the model's input (conformed as :func:`conform_input`
        says); a memory-mapped array is read one batch at a time.
    y : the labels, one row per sample of ``x``.
    batch_size : samples per batch, for the predictions and for the loss's per-batch mean.
    progress : as for :func:`predict_in_batches`.
    on_batch : as for :func:`predict_in_batches`: each batch's outputs go to it, none is kept.
    on_progress : as for :func:`predict_in_batches`.

    Returns
    -------
    (predictions, evaluation)
        Predictions as :func:`predict_in_batches` returns them (float64, shape (n, units)); None
        with ``on_batch``.

    Raises
    ------
    BadInputError
        As :func:`predict_in_batches`: a wrong input shape, several outputs, or a model that
        fails to predict.
    """
    import numpy as np

    if batch_size < 1:
        raise BadInputError(f"batch size must be at least 1, got {batch_size}")
    n = int(x.shape[0]) if x.ndim else 0
    if n == 0:
        raise BadInputError("the eval data has no samples")
    x = conform_input(model, x)
    check_input_shape(model, x)

    def predict_rest(start: int) -> np.ndarray | None:
        """Rows ``start`` on, predicted without the metrics (a model that fails to predict raises
        here, as in :func:`predict_in_batches`)."""
        told = None if on_progress is None else (lambda done, _rest: on_progress(start + done, n))
        if on_batch is None:
            return predict_in_batches(
                model, x[start:], batch_size=batch_size, progress=progress, on_progress=told
            )
        consumer = on_batch
        predict_in_batches(
            model,
            x[start:],
            batch_size=batch_size,
            progress=progress,
            on_batch=lambda first, outputs: consumer(start + first, outputs),
            on_progress=told,
        )
        return None

    def predictions_only(
        error: str, records: list[warnings.WarningMessage] | None = None
    ) -> tuple[np.ndarray | None, LiveEvaluation]:
        return predict_rest(0), LiveEvaluation(error=error, keras_warnings=_warning_lines(records or []))

    if getattr(model, "loss", None) is None:
        return predictions_only("the model is not compiled with a loss; evaluate skipped")
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != n:
        rows = "no rows" if y.ndim == 0 else f"{y.shape[0]} rows"
        return predictions_only(f"ValueError: x has {n} rows but y has {rows}")
    out: np.ndarray | None = None
    error: str | None = None
    stopped_at = 0
    # Keras's own warnings (a SyntaxWarning for categorical cross-entropy on one unit) are
    # evidence for the report, not noise for the terminal.
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        try:
            scorer = _CompiledScorer(model)
        except Exception as exc:  # any Keras refusal is data
            return predictions_only(f"{type(exc).__name__}: {_first_line(exc)}", records)
        starts = range(0, n, batch_size)
        with _batches(starts, n, progress) as batches:
            for start in batches:
                stop = min(start + batch_size, n)
                try:
                    batch_out = scorer.step(x[start:stop], y[start:stop])
                except BadInputError:
                    raise
                except Exception as exc:  # the loss or a metric refused the labels, or the model failed
                    error = f"{type(exc).__name__}: {_first_line(exc)}"
                    stopped_at = start
                    break
                if on_batch is not None:
                    on_batch(start, batch_out)
                else:
                    if out is None:
                        out = np.empty((n, batch_out.shape[1]), dtype=np.float64)
                    out[start:stop] = batch_out
                release(x[start:stop])  # a memory-mapped x holds one batch in memory, not all of it
                if on_progress is not None:
                    on_progress(stop, n)
        if error is None:
            values, non_finite = _finite_values(scorer.values())
    if error is not None:
        # The rest is predicted without the metrics.
        rest = predict_rest(stopped_at)
        if out is None:
            out = rest
        elif rest is not None:
            out[stopped_at:] = rest
        return out, LiveEvaluation(error=error, keras_warnings=_warning_lines(records))
    return out, LiveEvaluation(values=values, non_finite=non_finite, keras_warnings=_warning_lines(records))


class _CompiledScorer:
    """A model's compiled loss and metrics, updated batch by batch with the outputs of the same step.

    Built with the model's metrics reset, as ``evaluate`` starts. :meth:`step` predicts one batch
    and updates the loss and metric states (the first batch eagerly, which builds Keras's
    compiled loss and metric containers as ``evaluate``'s first batch does, and raises plainly
    when they refuse the labels; later batches in one ``tf.function`` on TensorFlow, unless the
    model runs eagerly); :meth:`values` reads the results.
    """

    def __init__(self, model: Any) -> None:
        from lossaudit.core.head import KerasFamily
        from lossaudit.keras.live import model_family

        self.model = model
        self.tf_keras = model_family(model) is KerasFamily.TF_KERAS
        if self.tf_keras:
            import tf_keras

            self.floatx = str(tf_keras.backend.floatx())
            self.backend = "tensorflow"
        else:
            import keras

            self.floatx = str(keras.config.floatx())
            self.backend = str(keras.config.backend())
        self.graph: Any = None
        self.steps = 0
        model.reset_metrics()

    def _update(self, x: Any, y: Any) -> Any:
        """``evaluate``'s test step, returning ``y_pred`` too."""
        model = self.model
        if self.tf_keras:
            y_pred = model(x, training=False)
            model.compute_loss(x, y, y_pred, None)
            model.compute_metrics(x, y, y_pred, None)
            return y_pred
        y_pred = model(x, training=False) if getattr(model, "_call_has_training_arg", True) else model(x)
        compute_loss = getattr(model, "_compute_loss", None)
        if compute_loss is not None:
            loss = compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=None, training=False)
        else:
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=None)
        tracker = getattr(model, "_loss_tracker", None)
        if tracker is not None:
            tracker.update_state(_unscaled(loss), sample_weight=self._rows(x))
        model.compute_metrics(x, y, y_pred, sample_weight=None)
        return y_pred

    def _rows(self, x: Any) -> Any:
        if self.backend == "tensorflow":
            import tensorflow as tf

            return tf.shape(x)[0]
        return x.shape[0]

    def _fed(self, batch: np.ndarray) -> np.ndarray:
        """The batch as Keras's data adapters feed it: floating arrays as ``floatx``."""
        import numpy as np

        if batch.dtype.kind == "f" and batch.dtype != np.dtype(self.floatx):
            return batch.astype(self.floatx)
        return np.asarray(batch)

    def _tensor(self, batch: np.ndarray) -> Any:
        """The batch as the tensor a test step receives (tf-keras's losses read ``.shape.rank``)."""
        if self.backend == "tensorflow":
            import tensorflow as tf

            return tf.convert_to_tensor(batch)
        import keras

        return keras.ops.convert_to_tensor(batch)

    def _graph_step(self, x: np.ndarray, y: np.ndarray) -> Any:
        import tensorflow as tf

        signature = [
            tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype)),
            tf.TensorSpec((None, *y.shape[1:]), tf.as_dtype(y.dtype)),
        ]
        jit = getattr(self.model, "jit_compile", False) is True
        return tf.function(self._update, input_signature=signature, jit_compile=jit)

    def step(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Predict one batch and update the loss and metrics: its outputs, (rows, units) float64."""
        import numpy as np

        xb, yb = self._fed(x), self._fed(y)
        eager = (
            self.steps == 0 or self.backend != "tensorflow" or bool(getattr(self.model, "run_eagerly", False))
        )
        if eager:
            out = self._update(self._tensor(xb), self._tensor(yb))
        else:
            if self.graph is None:
                self.graph = self._graph_step(xb, yb)
            out = self.graph(xb, yb)
        self.steps += 1
        if isinstance(out, list | tuple | dict):
            raise BadInputError("the model returns several outputs; lossaudit audits single-output models")
        arr = np.asarray(out, dtype=np.float64)
        return arr.reshape(arr.shape[0], -1) if arr.ndim != 2 else arr

    def values(self) -> dict[str, Any]:
        """The results, as ``evaluate(return_dict=True)`` returns them (Keras 3 sorts the names)."""
        raw = dict(self.model.get_metrics_result())
        flat: dict[str, Any] = {}
        for name, value in raw.items():
            if isinstance(value, dict):  # Keras 3's CompileMetrics reports a dict of its metrics
                flat.update(value)
            else:
                flat[name] = value
        return flat if self.tf_keras else dict(sorted(flat.items()))


def _unscaled(loss: Any) -> Any:
    """Keras 3's ``unscale_loss_for_distribution`` (the identity outside a distribution strategy)."""
    try:
        from keras.src.losses.loss import unscale_loss_for_distribution
    except ImportError:  # another Keras 3 layout: no strategy scaling to undo
        return loss
    return unscale_loss_for_distribution(loss)


def _finite_values(raw: Mapping[str, Any]) -> tuple[dict[str, float], tuple[str, ...]]:
    """Numbers by name, and the names whose value was NaN or infinite (kept out of the numbers)."""
    import math

    import numpy as np

    values: dict[str, float] = {}
    non_finite: list[str] = []
    for name, value in raw.items():
        try:
            number = float(np.asarray(value))
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            values[str(name)] = number
        else:
            non_finite.append(str(name))
    return values, tuple(non_finite)


def _warning_lines(records: list[warnings.WarningMessage]) -> tuple[str, ...]:
    lines = (str(r.message).strip().splitlines()[0] for r in records if str(r.message).strip())
    return tuple(dict.fromkeys(line[:300] for line in lines))
