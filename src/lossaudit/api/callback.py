"""``lossaudit.keras.AuditCallback``: the audit inside ``model.fit``.

* ``on_train_begin`` -- the rules on the compiled model's head and the training labels (what
  ``lossaudit check`` says). A failing verdict stops the fit before its first step: by raising
  :class:`~lossaudit.errors.AuditFailedError` (``on_fail="raise"``, the default), or with
  ``on_fail="stop"`` by ending ``fit`` without a training step (``model.stop_training``, and the
  step function skipped for that fit).
* ``on_epoch_end`` -- what the history shows, judged by rules LA801-LA803: a NaN or infinite loss,
  a loss that reads exactly the same for ``patience`` epochs (a 1-unit categorical cross-entropy
  reads 0.0 in every epoch), an accuracy at the majority-class baseline for ``patience`` epochs;
  and, with a ``probe=(x, y)`` batch, predictions that are one class for every sample (LA501).
  New findings are printed (``verbose``); failing ones stop the fit as above.
* With an active MLflow run (``mlflow.start_run()``, ``mlflow.keras.autolog()``,
  ``mlflow.tensorflow.autolog()``) and ``log=True``, the audit is logged into that run once: when
  it stops the fit, else at ``on_train_end`` (metrics, ``lossaudit.*`` tags, the report files under
  ``lossaudit/``).

The latest report is ``callback.report`` (a :class:`lossaudit.AuditReport`).

Keras 3 models (any backend). This module imports Keras: reach it as ``lossaudit.keras.AuditCallback``.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterable
from typing import Any

import keras
from lossaudit.api.report import AuditReport, failure_line
from lossaudit.errors import AuditFailedError, BadInputError, LossauditError

ON_FAIL = ("raise", "stop")
ACCURACY_KEYS = ("accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy")
"""Keys of the epoch logs read as the training accuracy, first found wins."""
COMMAND = "callback"


def _skipped_step(iterator: Any) -> dict[str, Any]:
    """A step function that trains nothing (``on_fail="stop"`` before the first step)."""
    return {}


def _no_metrics() -> dict[str, Any]:
    """The epoch's metric results when no step ran (Keras's would refuse: nothing is built)."""
    return {}


class AuditCallback(keras.callbacks.Callback):  # type: ignore[misc]  # Keras ships no type hints
    """Audit a fit: the head and labels before the first step, the history after each epoch.

    Parameters
    ----------
    labels
        The training labels given to ``fit`` (an array, or a labels file): judged against the
        compiled head, and the majority-class baseline of LA803.
    fail_on
        Lowest severity that stops the fit (``"error"``, ``"warning"``, ``"info"``); default the
        configuration's (``fail_on`` of ``[tool.lossaudit]``), else ``error``.
    on_fail
        ``"raise"``: raise :class:`~lossaudit.errors.AuditFailedError` (the fit ends with it);
        ``"stop"``: end the fit quietly (``model.stop_training``), the reason in ``stopped``.
    log
        Log the audit into the active MLflow run, if any.
    config, select, ignore
        The rule configuration, as :func:`lossaudit.audit` takes it.
    probe
        ``(x, y)``: a small batch predicted after each epoch, to catch a model that predicts one
        class for everything (LA501).
    patience
        Epochs a flat loss (LA802) or an accuracy at the baseline (LA803) must last.
    verbose
        Print each new finding on stderr as it is found.
    """

    def __init__(
        self,
        labels: Any,
        *,
        fail_on: str | None = None,
        on_fail: str = "raise",
        log: bool = True,
        config: Any = None,
        select: Iterable[str] | str | None = None,
        ignore: Iterable[str] | str | None = None,
        probe: tuple[Any, Any] | None = None,
        patience: int = 3,
        verbose: bool = True,
    ) -> None:
        super().__init__()
        from lossaudit.api.audit import rule_config

        if on_fail not in ON_FAIL:
            raise BadInputError(f"on_fail must be one of {', '.join(ON_FAIL)}, got {on_fail!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise BadInputError(f"patience must be a positive integer, got {patience!r}")
        if probe is not None and (not isinstance(probe, tuple) or len(probe) != 2):
            raise BadInputError("probe must be a pair (x, y)")
        self.labels = _read_labels(labels)
        self.rules = rule_config(config, select=select, ignore=ignore, fail_on=fail_on)
        self.on_fail = on_fail
        self.log = log
        self.probe = probe
        self.patience = patience
        self.verbose = verbose
        self.report: AuditReport | None = None
        """The latest report: the head check at the start, then each epoch's."""
        self.stopped: str | None = None
        """When the audit stopped the fit (``"before the first step"``, ``"after epoch 3"``)."""
        self.mlflow_run: dict[str, Any] | None = None
        self._seen: set[str] = set()
        self._losses: list[float] = []
        self._accuracies: list[float] = []
        self._accuracy_key: str | None = None
        self._head: Any = None
        self._baseline: float | None = None
        self._saved_step: Any = None
        self._logged = False

    # --- Keras hooks --------------------------------------------------------------------------

    def on_train_begin(self, logs: Any = None) -> None:
        from lossaudit.core.audit import check
        from lossaudit.keras.live import head_from_model

        self._seen.clear()
        self._losses.clear()
        self._accuracies.clear()
        self._accuracy_key = None
        self.stopped = None
        self._logged = False
        self._head = head_from_model(self.model, source=f"fit:{self.model.name}")
        report = check(self._head, self.labels, config=self.rules, command=COMMAND, context=self._context())
        self._baseline = _majority_baseline(report.labels)
        self._judge(report, "before the first step")

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        from lossaudit.core.audit import check
        from lossaudit.core.facts import TrainingFacts

        logs = dict(logs or {})
        if self._head is None or "loss" not in logs:
            return  # a fit stopped before its first step, or logs without a loss
        self._losses.append(_number(logs["loss"]))
        key = self._accuracy_key or next((k for k in ACCURACY_KEYS if k in logs), None)
        if key is not None and key in logs:
            self._accuracy_key = key
            self._accuracies.append(_number(logs[key]))
        training = TrainingFacts(
            losses=tuple(self._losses),
            accuracy_name=self._accuracy_key,
            accuracies=tuple(self._accuracies),
            majority_baseline=self._baseline,
            patience=self.patience,
        )
        report = check(
            self._head,
            self.labels,
            config=self.rules,
            command=COMMAND,
            context=self._context(),
            training=training,
            predictions=self._probe_facts(),
        )
        self._judge(report, f"after epoch {epoch + 1}")

    def on_train_end(self, logs: Any = None) -> None:
        if self._saved_step is not None:
            self.model.train_function = self._saved_step
            self._saved_step = None
            del self.model.get_metrics_result  # the class's method again
        if self.log and not self._logged and self.report is not None:
            self._log(self.report)

    # --- judging --------------------------------------------------------------------------------

    def _judge(self, core_report: Any, when: str) -> None:
        self.report = AuditReport.of(core_report, mlflow_run=self.mlflow_run)
        new = [f for f in core_report.findings if f.code not in self._seen]
        self._seen.update(f.code for f in new)
        if self.verbose:  # what fails the fit is in the stop message
            for finding in new:
                if finding.severity.at_least(core_report.fail_on):
                    continue
                print(
                    f"lossaudit: {when}: {finding.code} {finding.severity.value}: {finding.message}",
                    file=sys.stderr,
                )
        if core_report.verdict != "fail":
            return
        self.stopped = when
        if self.log:
            self._log(self.report)
        message = f"lossaudit stopped the fit {when}: {failure_line(core_report)}"
        if self.on_fail == "raise":
            raise AuditFailedError(message, report=self.report)
        self.model.stop_training = True
        if not self._losses and self._saved_step is None:
            # Keras reads stop_training after a step: this fit's one step is skipped instead, and
            # the epoch's metric results (never built) read as none. Both restored at the end.
            self._saved_step = self.model.train_function
            self.model.train_function = _skipped_step
            self.model.get_metrics_result = _no_metrics
        if self.verbose:
            print(message, file=sys.stderr)

    def _probe_facts(self) -> Any:
        """What the probe batch's predictions show (None without a probe, or unscorable)."""
        if self.probe is None:
            return None
        from lossaudit.core.audit import score

        x, y = self.probe
        try:
            predictions = self.model.predict(x, verbose=0)
            return score(self._head, y, predictions).metrics.facts()
        except BadInputError:
            return None  # probe labels the head cannot score: the label rules say why

    def _context(self) -> dict[str, Any]:
        context: dict[str, Any] = {
            "model": f"fit:{self.model.name}",
            "model_format": "in_memory",
            "keras_version": keras.__version__,
            "keras_backend": keras.backend.backend(),
            "labels": "training labels",
            "n_samples": int(getattr(self.labels, "shape", (len(self.labels),))[0]),
        }
        if self._losses:
            context["epochs_seen"] = len(self._losses)
            context["training_loss"] = [v if math.isfinite(v) else str(v) for v in self._losses]
        if self._accuracy_key is not None:
            context["training_accuracy"] = {self._accuracy_key: list(self._accuracies)}
        return context

    def _log(self, report: AuditReport) -> None:
        """Log into the active MLflow run (once per fit); a store that refuses it is a warning:
        the fit is not the place to fail for it."""
        from lossaudit.api.audit import log_into_active_run

        try:
            logged = log_into_active_run(report)
        except LossauditError as exc:
            warnings.warn(f"lossaudit: the audit was not logged to MLflow: {exc}", stacklevel=2)
            return
        if logged is not None:
            self._logged = True
            self.mlflow_run = logged
            self.report = AuditReport.of(report, mlflow_run=logged)


def _read_labels(labels: Any) -> Any:
    import os

    import numpy as np

    if isinstance(labels, str | os.PathLike):
        from pathlib import Path

        from lossaudit.sources.files import load_labels

        return load_labels(Path(labels))
    return labels.to_numpy() if hasattr(labels, "to_numpy") else np.asarray(labels)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _majority_baseline(labels: Any) -> float | None:
    """max_k n_k / n of single-label labels (None for multi-label or unreadable labels)."""
    from lossaudit.core.labels import LabelEncoding

    if labels is None or not labels.is_valid or labels.encoding is LabelEncoding.MULTI_HOT:
        return None
    counts = labels.class_counts
    if not counts or labels.n_samples < 1:
        return None
    return float(max(counts)) / float(labels.n_samples)
