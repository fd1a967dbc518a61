"""What one registry audit job does: :class:`RegistryOptions`, built by ``lossaudit registry``
(with :func:`parse_data_mapping` for its ``--data MODEL=PATH``) or from a ``kind: registry``
pipeline file (:meth:`RegistryOptions.from_pipeline`). Checked when built, so the job itself
never meets a bad option.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    from lossaudit.pipeline.config import PipelineConfig

DEFAULT_OUT_DIR = "lossaudit-reports/registry"
_SEVERITIES = ("error", "warning", "info")
ENGINES = ("local", "spark")


@dataclass(frozen=True)
class RegistryOptions:
    """What one registry audit job does; built by ``lossaudit registry`` and by pipeline files
    of ``kind: registry`` (:meth:`from_pipeline`)."""

    name: str | None = None
    """Registered model name or glob (``digits*``); None means every registered model."""
    alias: str | None = None
    """Audit only the version this alias points to, in each model."""
    filter: str | None = None
    """An extra ``search_model_versions`` filter, e.g. ``tags.team = 'vision'``."""
    workers: int = 1
    """Worker processes; 1 audits in this process. With ``engine="spark"``: the versions audited
    at once, when above 1 (else the Spark context's default parallelism)."""
    engine: str = "local"
    """``local`` (this process or worker processes) or ``spark`` (one Spark task per version,
    :mod:`lossaudit.registry.spark_workers`)."""
    master: str | None = None
    """The Spark master for ``engine="spark"`` (None: ``SPARK_MASTER``, else ``local[*]``)."""
    force: bool = False
    """Audit versions again even when their tags say they were audited with the same data and rules."""
    promote_alias: str | None = None
    """Point this alias of each model at its highest passing version."""
    data: Mapping[str, str] = field(default_factory=dict)
    """Registered model name (or glob) -> eval data path or artifact URI."""
    label_columns: tuple[str, ...] = ()
    """Label column(s) of CSV/Parquet eval data."""
    fail_on: str = "error"
    """Lowest finding severity that fails a version."""
    rules: Mapping[str, Any] = field(default_factory=dict)
    """The rule configuration (``RuleConfig.to_dict()``) every version is audited with; empty:
    defaults at ``fail_on``. It is part of the rules version, so a new configuration re-audits."""
    tracking_uri: str | None = None
    """Tracking and registry URI; default ``MLFLOW_TRACKING_URI``, else ``./mlflow.db``."""
    experiment: str = "lossaudit"
    """Experiment of the summary run and the per-version audit runs."""
    out_dir: str | None = DEFAULT_OUT_DIR
    """Folder for one report folder per version (``<model>-v<version>``); None writes none."""
    batch_size: int = 256
    """Samples per predict/evaluate batch."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise BadInputError(f"--workers must be at least 1, got {self.workers}")
        if self.engine not in ENGINES:
            raise BadInputError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.master is not None and not self.master.strip():
            object.__setattr__(self, "master", None)  # empty (``${SPARK_MASTER:-}``): not given
        if self.master is not None and self.engine != "spark":
            raise BadInputError("--master goes with --engine spark")
        if self.fail_on not in _SEVERITIES:
            raise BadInputError(f"--fail-on must be one of {', '.join(_SEVERITIES)}, got {self.fail_on!r}")
        if self.batch_size < 1:
            raise BadInputError(f"--batch-size must be at least 1, got {self.batch_size}")
        for what, value in (("--alias", self.alias), ("--promote-alias", self.promote_alias)):
            if value is not None and not value.strip():
                raise BadInputError(f"{what} is empty")
        if self.promote_alias is not None and self.promote_alias.strip().lower() == "latest":
            raise BadInputError("--promote-alias: 'latest' is reserved by MLflow")
        object.__setattr__(self, "data", dict(self.data))
        object.__setattr__(self, "label_columns", tuple(self.label_columns))
        if self.rules:
            rules = dict(self.rules)
            if rules.get("fail_on", self.fail_on) != self.fail_on:
                raise BadInputError(
                    f"--fail-on {self.fail_on} disagrees with the rule configuration's {rules['fail_on']}"
                )
            object.__setattr__(self, "rules", rules)

    @classmethod
    def from_pipeline(cls, config: PipelineConfig) -> RegistryOptions:
        """Options from a ``kind: registry`` pipeline file (data paths made absolute against the
        pipeline root, reports under ``<out>/registry``, MLflow from its ``log`` section)."""
        registry = config.registry
        if config.kind != "registry" or registry is None:
            raise BadInputError(f"pipeline {config.path}: not a 'kind: registry' pipeline")
        if not config.log.enabled:
            raise BadInputError(
                f"pipeline {config.path}: a registry audit logs to MLflow; remove 'log: {{enabled: false}}'"
            )
        return cls(
            name=registry.name,
            alias=registry.alias,
            filter=registry.filter,
            workers=registry.workers,
            engine=registry.engine,
            master=registry.master,
            force=registry.force,
            promote_alias=registry.promote_alias,
            data={pattern: config.resolve(path) for pattern, path in registry.data.items()},
            label_columns=tuple(registry.label_columns),
            fail_on=config.fail_on,
            rules=config.rules.to_dict(),
            tracking_uri=config.log.tracking_uri,
            experiment=config.log.experiment,
            out_dir=str(Path(config.resolve(config.out)) / "registry"),
        )


def parse_data_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["digits*=data/digits.npz", ...]`` -> ``{"digits*": "data/digits.npz"}``."""
    mapping: dict[str, str] = {}
    for item in items:
        pattern, sep, path = item.partition("=")
        if not sep or not pattern.strip() or not path.strip():
            raise BadInputError(f"--data takes MODEL=PATH (a name or a glob), got {item!r}")
        mapping[pattern.strip()] = path.strip()
    return mapping
