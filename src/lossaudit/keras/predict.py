"""Run a live Keras model on the eval data: predictions in batches, and one live ``evaluate``.

The predictions are what the model returns (what Keras metrics see); whether they are logits or
probabilities is read from the head, never guessed from the values. ``evaluate`` gives the numbers
Keras itself reports for the compiled metrics; they are compared with the recomputed ones like any
other reported number, with source ``"evaluate"``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lossaudit.core.compare import ReportedMetric
from lossaudit.core.head import PROBABILITY_ACTIVATIONS, HeadSpec
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_BATCH_SIZE = 256
PROGRESS_MIN_BATCHES = 20
"""A progress bar is shown (on a terminal) only for runs of more batches than this."""
EVALUATE_SOURCE = "evaluate"


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


def predict_in_batches(
    model: Any,
    x: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
) -> np.ndarray:
    """The model's outputs on ``x``, batch by batch, as float64 of shape (n, units).

    Parameters
    ----------
    model : a Keras 3 or tf-keras model with one output.
    x : array of shape (n, ...) matching the model's input (a 1-D x of n values is fed as (n, 1)
        to a model taking (None, 1), as Keras feeds it: :func:`conform_input`).
    batch_size : samples per ``predict_on_batch`` call.
    progress : force the progress bar on or off; by default it is shown on stderr when stderr
        is a terminal and the run has more than :data:`PROGRESS_MIN_BATCHES` batches.

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
        chunks.append(arr.reshape(rows, -1) if arr.ndim != 2 else arr)

    try:
        if _show_progress(len(starts), progress):
            import click

            with click.progressbar(
                starts, label=f"predicting {n} samples", file=sys.stderr, show_pos=True
            ) as bar:
                for start in bar:
                    run_batch(start)
        else:
            for start in starts:
                run_batch(start)
    except BadInputError:
        raise
    except Exception as exc:  # a Keras/TensorFlow error: one line, never a traceback
        raise BadInputError(
            f"the model failed to predict: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    return np.concatenate(chunks, axis=0)


@dataclass(frozen=True)
class LiveEvaluation:
    """What ``model.evaluate`` reported, or why it could not run."""

    values: Mapping[str, float] = field(default_factory=dict)
    """Keras's own numbers by compiled name (``loss``, ``accuracy``...); empty when it failed."""
    error: str | None = None
    """``TypeName: first line`` of the exception evaluate raised (incompatible labels, no loss)."""
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
    import math

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
    values: dict[str, float] = {}
    non_finite: list[str] = []
    for name, value in dict(raw).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            values[str(name)] = number
        else:
            non_finite.append(str(name))
    return LiveEvaluation(values=values, non_finite=tuple(non_finite), keras_warnings=_warning_lines(records))


def _warning_lines(records: list[warnings.WarningMessage]) -> tuple[str, ...]:
    lines = (str(r.message).strip().splitlines()[0] for r in records if str(r.message).strip())
    return tuple(dict.fromkeys(line[:300] for line in lines))
