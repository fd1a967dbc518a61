"""The MLflow adapter: where audits are logged (``store``), how (``sink``), and models and reported
metrics read from MLflow (``source``).

Importing this package does not import MLflow: every module imports it inside the functions that
talk to a store, so ``lossaudit --help`` and the static checks stay fast.
"""

from __future__ import annotations

import hashlib

DEFAULT_EXPERIMENT = "lossaudit"
"""The experiment audits go to unless ``--experiment`` (or a pipeline's ``log.experiment``) names one."""

CONTEXT_KEY = "mlflow_source"
"""Key of the report context entry that says which MLflow model was audited (see ``source``)."""


def rules_version() -> str:
    """A short hash of the rule catalogue's codes and severities.

    Two audits with the same ``rules_version`` judged with the same rules at the same severities;
    a new rule or a changed severity changes it. Logged as the ``lossaudit.rules_version`` tag.
    """
    from lossaudit.core.catalogue import RULES

    text = "\n".join(f"{rule.code}:{rule.severity.value}" for rule in sorted(RULES, key=lambda r: r.code))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


__all__ = ["CONTEXT_KEY", "DEFAULT_EXPERIMENT", "rules_version"]
