"""Scheduled audits over the MLflow Model Registry (``lossaudit registry``).

:mod:`lossaudit.registry.audit` is the job: it finds model versions (:mod:`~.versions`), resolves
their eval data (:mod:`~.evaldata`), skips versions whose tags say they were already audited with
the same data and rules and tags each version with its outcome (:mod:`~.tags`), audits the others
in worker processes (:mod:`~.workers`) or as Spark jobs on the executors (:mod:`~.spark_workers`,
``engine="spark"``), moves an alias to passing versions only (:mod:`~.aliases`) and sums up
(:mod:`~.results`, :mod:`~.render`). Python entry point::

    from lossaudit.registry.audit import run_registry_audit
    from lossaudit.registry.options import RegistryOptions

    summary = run_registry_audit(RegistryOptions(name="digits*", workers=2, promote_alias="audited"))
    raise SystemExit(summary.exit_code)

Importing this package imports none of its modules (nor MLflow, nor TensorFlow).
"""
