"""Pipeline files: ``pipelines/*.yaml`` describe audits that ``lossaudit run`` executes.

A file has one ``kind``:

* ``audit`` -- audit one or more models (nested MLflow runs when several)::

      kind: audit
      fail_on: error                           # rule configuration keys, as in [tool.lossaudit]:
      ignore: [LA103]                          #   select, ignore, severity, fail_on, alpha,
      severity: {LA104: error}                 #   tolerance (top level; they override the file)
      log: {experiment: lossaudit-ci}          # tracking_uri defaults to MLFLOW_TRACKING_URI,
                                               # else ./mlflow.db
      thresholds: {accuracy: 0.90}             # recomputed metric floors
      engine: spark                            # local (default) or spark, for every audit below;
      master: spark://host:7077                #   master: default SPARK_MASTER, else local[*]
      audits:
        - name: digits
          model: models/digits.keras           # a file, models:/name/1, models:/name@alias, runs:/id/path
          data: data/eval.npz                  # .npz with x and y, or a table + label_columns
          reported: {accuracy: 0.9979}         # numbers a past run stated (optional); add
                                               # measured_on: other (and n: 1200) when they
                                               # come from other data than this eval set
          retrain: {train: data/train.npz, epochs: 10, seeds: 3}

* ``demo`` -- the seed scenarios (``scenarios: all`` or a list of names).
* ``registry`` -- scheduled audits over the MLflow Model Registry (see ``lossaudit registry``);
  ``engine: spark`` and ``master:`` at the top audit the versions on Spark, as ``--engine spark``.

The rule configuration keys (``select``, ``ignore``, ``severity``, ``fail_on``, ``alpha``,
``tolerance``) sit at the top level of any kind and mean what they mean in ``[tool.lossaudit]``:
they are applied over the configuration file found from the working folder upwards (or named by
``--config``), and ``lossaudit run``'s ``--select``/``--ignore``/``--fail-on`` are applied over
them (:mod:`lossaudit.core.config_file`). The result is :attr:`PipelineConfig.rules`.

``${VAR}`` and ``${VAR:-default}`` in string values are expanded from the environment, so one file
serves CI and local runs. Relative paths are relative to the pipeline file's folder's parent when
the file sits in ``pipelines/`` (the project root), else to the file's folder.

Every key is typed and validated strictly by :mod:`lossaudit.pipeline.schema` (``epochs: ten`` and
``enabled: "maybe"`` are refused, ``enabled: "false"`` is false), with one
:class:`~lossaudit.errors.BadInputError` line naming the key path::

    pipeline p.yaml: audits[0].retrain.epochs: expected an integer, got 'ten'

The same schema is published as JSON Schema for editors at ``docs/pipeline.schema.json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.core.config import CONFIG_KEYS, RuleConfig
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    from lossaudit.pipeline.schema import AuditSection, RegistrySection

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
KINDS = ("audit", "demo", "registry")
MAX_VALUES = 100_000
"""Most values (scalars, lists, mappings) a pipeline file may hold once YAML aliases are followed."""


@dataclass(frozen=True)
class LogConfig:
    enabled: bool = True
    tracking_uri: str | None = None
    experiment: str = "lossaudit"


@dataclass(frozen=True)
class AuditEntry:
    name: str
    model: str
    data: str
    label_columns: tuple[str, ...] = ()
    reported: Mapping[str, float] = field(default_factory=dict)
    reported_from_source_run: bool = True
    reported_on: str = "this"
    """Where ``reported`` was measured: this eval set, or ``other`` data (judged by sampling)."""
    reported_n: int | None = None
    """Samples ``reported`` was measured on, when ``reported_on`` is ``other``."""
    train: str | None = None
    retrain: bool = False
    epochs: int = 10
    batch_size: int = 32
    seed: int = 0
    seeds: int = 3
    unsafe: bool = False
    engine: str = "local"
    """``local`` or ``spark`` (:mod:`lossaudit.pipeline.spark_audit`)."""
    master: str | None = None
    """The Spark master for ``engine: spark`` (None: ``SPARK_MASTER``, else ``local[*]``)."""
    roc_auc: str = "exact"
    """``exact`` or ``bounds`` (:attr:`lossaudit.pipeline.stages.AuditRequest.roc_auc`)."""


@dataclass(frozen=True)
class RegistryConfig:
    name: str | None = None
    alias: str | None = None
    filter: str | None = None
    workers: int = 1
    force: bool = False
    promote_alias: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    """Registered model name (or glob) -> eval data path."""
    label_columns: tuple[str, ...] = ()
    engine: str = "local"
    """``local`` or ``spark``: where the versions are audited (the file's top-level ``engine``)."""
    master: str | None = None
    """The Spark master for ``engine: spark`` (the file's top-level ``master``)."""


@dataclass(frozen=True)
class PipelineConfig:
    name: str
    kind: str
    path: Path
    root: Path
    fail_on: str = "error"
    out: str = "lossaudit-reports"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    log: LogConfig = field(default_factory=LogConfig)
    audits: tuple[AuditEntry, ...] = ()
    scenarios: tuple[str, ...] = ()
    """For ``kind: demo``: scenario names; empty means all."""
    registry: RegistryConfig | None = None
    rules: RuleConfig = field(default_factory=RuleConfig)
    """The effective rule configuration: configuration file < this file's keys < command line
    (``fail_on`` above is its ``fail_on``)."""

    def resolve(self, path: str) -> str:
        """A path from the file, made absolute against the pipeline root; URIs pass through."""
        if "://" in path or path.startswith(("models:", "runs:")):
            return path
        p = Path(path)
        return str(p if p.is_absolute() else (self.root / p))


def expand(value: Any, where: str = "pipeline") -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string of a loaded YAML tree (``where``
    names the file in messages)."""
    return _expand(value, [MAX_VALUES], where)


def _expand(value: Any, budget: list[int], where: str) -> Any:
    # YAML aliases share one object; followed, ten aliases of ten aliases ... make billions.
    budget[0] -= 1
    if budget[0] < 0:
        raise BadInputError(f"{where} holds more than {MAX_VALUES} values (YAML aliases?)")
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            env = os.environ.get(m.group(1))
            if env is None:
                if m.group(2) is None:
                    raise BadInputError(f"{where} uses ${{{m.group(1)}}} but it is not set")
                return m.group(2)
            return env

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, budget, where) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, budget, where) for k, v in value.items()}
    return value


def _audit_entry(
    section: AuditSection, index: int, engine: str = "local", master: str | None = None
) -> AuditEntry:
    reported = section.reported
    retrain = section.retrain
    extra: dict[str, Any] = {}
    if reported is not None:
        extra.update(
            reported=reported.metrics,
            reported_from_source_run=reported.from_source_run,
            reported_on=reported.measured_on,
            reported_n=reported.n,
        )
    if retrain is not None:
        extra.update(
            train=retrain.train,
            retrain=True,
            epochs=retrain.epochs,
            batch_size=retrain.batch_size,
            seed=retrain.seed,
            seeds=retrain.seeds,
        )
    return AuditEntry(
        name=section.name or Path(section.model).stem or f"audit-{index}",
        model=section.model,
        data=section.data,
        label_columns=tuple(section.label_columns or ()),
        unsafe=section.unsafe,
        engine=section.engine or engine,
        master=section.master if section.master is not None else master,
        roc_auc=section.roc_auc,
        **extra,
    )


def _registry(
    section: RegistrySection | None, engine: str = "local", master: str | None = None
) -> RegistryConfig:
    if section is None:
        return RegistryConfig(engine=engine, master=master)
    return RegistryConfig(
        name=section.name,
        alias=section.alias,
        filter=section.filter,
        workers=section.workers,
        force=section.force,
        promote_alias=section.promote_alias,
        data=dict(section.data or {}),
        label_columns=tuple(section.label_columns or ()),
        engine=engine,
        master=master,
    )


def _read_yaml(p: Path) -> Any:
    import yaml

    try:
        if not p.is_file():
            what = "is a folder, not a file" if p.is_dir() else "not found"
            raise BadInputError(f"pipeline file {what}: {p}")
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"pipeline file {p} is not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise BadInputError(f"pipeline file {p} cannot be read: {reason}") from None
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise BadInputError(f"pipeline file {p} is nested too deeply") from None
    except Exception as exc:  # yaml.YAMLError; ValueError of a 5000-digit integer or a bad date
        lines = str(exc).splitlines()
        first = lines[0] if lines else type(exc).__name__
        raise BadInputError(f"pipeline file {p} is not valid YAML: {first}") from None


def load_pipeline(
    path: str | Path,
    *,
    base: RuleConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """Read and validate a pipeline file; every problem is one :class:`BadInputError` line.

    ``base`` is the configuration file's layer (default: discovered from the working folder
    upwards); the file's rule keys go over it, then ``overrides`` (the command line's keys, from
    :func:`lossaudit.core.config_file.command_line_layer`).
    """
    from lossaudit.core.config_file import apply_layer, describe_flags, discover_config, pipeline_keys
    from lossaudit.pipeline.schema import AuditPipeline, DemoPipeline, validate_pipeline

    p = Path(path)
    source = f"pipeline {p}"
    raw = _read_yaml(p)
    try:
        data = expand(raw, source) if isinstance(raw, dict) else raw
    except RecursionError:
        raise BadInputError(f"pipeline file {p} is nested too deeply") from None
    typed = validate_pipeline(data, source)  # refuses anything but a mapping
    rules = discover_config() if base is None else base
    # A rule key set to null is not set; the values are judged by RuleConfig.
    rule_keys = {k: v for k, v in dict(data).items() if k in CONFIG_KEYS and v is not None}
    rules = apply_layer(rules, pipeline_keys(rule_keys), source=source)
    if overrides:
        rules = apply_layer(rules, overrides, source=describe_flags(overrides))
    log_section = typed.log
    log = (
        LogConfig()
        if log_section is None
        else LogConfig(
            enabled=log_section.enabled,
            tracking_uri=log_section.tracking_uri or None,
            experiment=log_section.experiment,
        )
    )
    root = p.resolve().parent
    if root.name == "pipelines":
        root = root.parent
    audits: tuple[AuditEntry, ...] = ()
    registry: RegistryConfig | None = None
    scenarios: tuple[str, ...] = ()
    thresholds: dict[str, float] = {}
    if isinstance(typed, AuditPipeline):
        audits = tuple(
            _audit_entry(item, i, typed.engine, typed.master) for i, item in enumerate(typed.audits)
        )
        names = [a.name for a in audits]
        if len(set(names)) != len(names):
            raise BadInputError(f"{source}: audit names must be unique, got {names}")
        thresholds = dict(typed.thresholds or {})
    elif isinstance(typed, DemoPipeline):
        chosen = typed.scenarios or []
        scenarios = () if chosen in ([], ["all"]) else tuple(chosen)
    else:
        registry = _registry(typed.registry, typed.engine, typed.master)
    return PipelineConfig(
        name=typed.name or p.stem,
        kind=typed.kind,
        path=p,
        root=root,
        fail_on=rules.fail_on.value,
        out=typed.out,
        thresholds=thresholds,
        log=log,
        audits=audits,
        scenarios=scenarios,
        registry=registry,
        rules=rules,
    )
