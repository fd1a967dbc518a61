"""The MLflow adapter: where audits are logged (``store``), how (``sink``), and models and reported
metrics read from MLflow (``source``).

Importing this package does not import MLflow: every module imports it inside the functions that
talk to a store, so ``lossaudit --help`` and the static checks stay fast.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

DEFAULT_EXPERIMENT = "lossaudit"
"""The experiment audits go to unless ``--experiment`` (or a pipeline's ``log.experiment``) names one."""

CONTEXT_KEY = "mlflow_source"
"""Key of the report context entry that says which MLflow model was audited (see ``source``)."""


def rules_version(config: Mapping[str, Any] | None = None) -> str:
    """A short hash of the rule catalogue's codes and severities, and of the rule configuration
    (``RuleConfig.to_dict()`` without its ``source``) when one is given.

    Two audits with the same ``rules_version`` judged with the same rules at the same severities;
    a new rule, a changed severity, or another select/ignore/alpha/tolerance changes it. Logged as
    the ``lossaudit.rules_version`` tag.
    """
    import json

    from lossaudit.core.catalogue import RULES

    text = "\n".join(f"{rule.code}:{rule.severity.value}" for rule in sorted(RULES, key=lambda r: r.code))
    if config:
        from lossaudit.core.config import DEFAULT_CONFIG

        # Only what differs from the defaults: the default configuration keeps the catalogue's
        # version, so versions audited before configurations existed are not all re-audited.
        defaults = DEFAULT_CONFIG.to_dict()
        # fail_on has its own tag (lossaudit.fail_on); the source says where, not what.
        judged = {k: v for k, v in config.items() if k not in ("source", "fail_on") and defaults.get(k) != v}
        if judged:
            text += "\n" + json.dumps(judged, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


__all__ = ["CONTEXT_KEY", "DEFAULT_EXPERIMENT", "rules_version"]
