"""The Python API: what ``lossaudit.audit``, ``lossaudit.check``, ``lossaudit.compare``,
``lossaudit.AuditReport``, ``lossaudit.keras.AuditCallback`` and the MLflow evaluator plugin are
made of. A thin layer over the same pipeline as the command line.

* :mod:`.report` -- :class:`~lossaudit.api.report.AuditReport`, the report with ``save`` and a
  notebook view (``_repr_html_``);
* :mod:`.audit` -- :func:`~lossaudit.api.audit.audit`, :func:`~lossaudit.api.audit.check`,
  :func:`~lossaudit.api.audit.compare`;
* :mod:`.evaluator` -- ``mlflow.models.evaluate(..., evaluators=["lossaudit"])``;
* :mod:`.callback` -- the Keras callback that audits a fit.

This package's ``__init__`` imports nothing: ``import lossaudit`` stays free of TensorFlow, MLflow
and Great Expectations, and each public name is imported on first use.
"""
