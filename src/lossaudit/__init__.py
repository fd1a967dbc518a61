"""lossaudit: check that a classifier's labels, head, loss and metrics fit, and that its numbers are true.

The Python API (each name imported on first use, so ``import lossaudit`` loads no framework):

* ``lossaudit.audit(model, x, y, ...)`` -- audit a ``keras.Model``, a model file or an MLflow
  model URI on eval data, as ``lossaudit audit`` does; returns an :class:`AuditReport`;
* ``lossaudit.check(model_or_head, labels=None)`` -- the rules on a head and labels;
* ``lossaudit.compare(y, predictions, head=..., reported=...)`` -- reported numbers against
  the ones recomputed from labels and predictions;
* ``lossaudit.AuditReport`` -- what they return: ``verdict``, ``findings``, ``metrics``,
  ``comparisons``, ``to_json()``, ``save(folder)``, and ``report.html`` inline in a notebook;
* ``lossaudit.keras.AuditCallback`` -- the audit inside ``model.fit``;
* ``mlflow.models.evaluate(..., evaluators=["lossaudit"])`` -- the MLflow evaluator plugin.

Errors are the CLI's, typed: :class:`~lossaudit.errors.BadInputError` (exit 2),
:class:`~lossaudit.errors.TrackingUnavailableError` (exit 3), :class:`~lossaudit.errors.AuditFailedError`
(exit 1), all :class:`~lossaudit.errors.LossauditError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from lossaudit.api.audit import audit, check, compare
    from lossaudit.api.report import AuditReport
    from lossaudit.errors import (
        AuditFailedError,
        BadInputError,
        LossauditError,
        RefusedError,
        TrackingUnavailableError,
    )

_API = ("audit", "check", "compare")
_ERRORS = ("LossauditError", "BadInputError", "RefusedError", "TrackingUnavailableError", "AuditFailedError")

__all__ = [
    "AuditFailedError",
    "AuditReport",
    "BadInputError",
    "LossauditError",
    "RefusedError",
    "TrackingUnavailableError",
    "__version__",
    "audit",
    "check",
    "compare",
]


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (PEP 562)."""
    value: Any
    if name in _API:
        from lossaudit.api import audit as api

        value = getattr(api, name)
    elif name == "AuditReport":
        from lossaudit.api.report import AuditReport

        value = AuditReport
    elif name in _ERRORS:
        from lossaudit import errors

        value = getattr(errors, name)
    else:
        raise AttributeError(f"module 'lossaudit' has no attribute {name!r}")
    globals()[name] = value
    return value
