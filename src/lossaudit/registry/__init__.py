"""Scheduled audits over the MLflow Model Registry (``lossaudit registry``).

:mod:`lossaudit.registry.audit` finds model versions, resolves their eval data, skips versions
already audited with the same data and rules, tags each version with its outcome and moves an
alias to passing versions only; :mod:`lossaudit.registry.workers` audits the versions in worker
processes. Python entry point::

    from lossaudit.registry.audit import RegistryOptions, run_registry_audit

    summary = run_registry_audit(RegistryOptions(name="digits*", workers=2, promote_alias="audited"))
    raise SystemExit(summary.exit_code)

Importing this package imports neither module (nor MLflow, nor TensorFlow).
"""
