"""``kind: registry`` pipelines: a registry job driven by a pipeline file.

The runner (:func:`lossaudit.pipeline.runner.run_pipeline`) gets :func:`run_registry` from the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lossaudit.pipeline.runner import PipelineOutcome, RunContext

if TYPE_CHECKING:
    from lossaudit.pipeline.config import PipelineConfig


def run_registry(config: PipelineConfig, context: RunContext) -> PipelineOutcome:
    """The registry job a ``kind: registry`` file describes."""
    from dataclasses import replace

    from lossaudit.errors import BadInputError
    from lossaudit.registry.audit import run_registry_audit
    from lossaudit.registry.options import RegistryOptions
    from lossaudit.registry.render import render_table

    tracking_uri, no_log = context.tracking_uri, context.no_log
    if no_log:
        raise BadInputError("a registry audit writes its verdicts to MLflow: --no-log does not apply")
    options = RegistryOptions.from_pipeline(config)
    # An empty --tracking-uri (the MLproject's default) means "not given".
    if tracking_uri is not None and tracking_uri.strip():
        options = replace(options, tracking_uri=tracking_uri)
    summary = run_registry_audit(options, progress=context.progress)
    return PipelineOutcome(
        config.name,
        config.kind,
        (),
        document=summary.to_dict(),
        exit_code_override=summary.exit_code,
        table=render_table(summary),
    )
