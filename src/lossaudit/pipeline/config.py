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
      audits:
        - name: digits
          model: models/digits.keras           # a file, models:/name/1, models:/name@alias, runs:/id/path
          data: data/eval.npz                  # .npz with x and y, or a table + label_columns
          reported: {accuracy: 0.9979}         # numbers a past run stated (optional); add
                                               # measured_on: other (and n: 1200) when they
                                               # come from other data than this eval set
          retrain: {train: data/train.npz, epochs: 10, seeds: 3}

* ``demo`` -- the seed scenarios (``scenarios: all`` or a list of names).
* ``registry`` -- scheduled audits over the MLflow Model Registry (see ``lossaudit registry``).

The rule configuration keys (``select``, ``ignore``, ``severity``, ``fail_on``, ``alpha``,
``tolerance``) sit at the top level of any kind and mean what they mean in ``[tool.lossaudit]``:
they are applied over the configuration file found from the working folder upwards (or named by
``--config``), and ``lossaudit run``'s ``--select``/``--ignore``/``--fail-on`` are applied over
them (:mod:`lossaudit.config_file`). The result is :attr:`PipelineConfig.rules`.

``${VAR}`` and ``${VAR:-default}`` in string values are expanded from the environment, so one file
serves CI and local runs. Relative paths are relative to the pipeline file's folder's parent when
the file sits in ``pipelines/`` (the project root), else to the file's folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossaudit.core.config import CONFIG_KEYS, RuleConfig
from lossaudit.errors import BadInputError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
KINDS = ("audit", "demo", "registry")


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


def expand(value: Any) -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string of a loaded YAML tree."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            env = os.environ.get(m.group(1))
            if env is None:
                if m.group(2) is None:
                    raise BadInputError(f"pipeline uses ${{{m.group(1)}}} but it is not set")
                return m.group(2)
            return env

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [expand(v) for v in value]
    if isinstance(value, dict):
        return {k: expand(v) for k, v in value.items()}
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInputError(f"pipeline: '{what}' must be a mapping")
    return value


def _unknown(data: Mapping[str, Any], allowed: set[str], what: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise BadInputError(f"pipeline: unknown key(s) in {what}: {', '.join(extra)}")


def _floats(data: Mapping[str, Any], what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in data.items():
        # Strings are allowed because ${VAR:-0.9} expands to text after YAML parsing.
        try:
            if isinstance(v, bool):
                raise ValueError
            number = float(v)
        except (TypeError, ValueError):
            raise BadInputError(f"pipeline: {what}.{k} must be a number, got {v!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise BadInputError(f"pipeline: {what}.{k} must be a finite number, got {v!r}")
        out[str(k)] = number
    return out


def _columns(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _audit_entry(raw: Any, index: int) -> AuditEntry:
    data = _mapping(raw, f"audits[{index}]")
    allowed = {"name", "model", "data", "label_columns", "reported", "retrain", "unsafe"}
    _unknown(data, allowed, f"audits[{index}]")
    for key in ("model", "data"):
        if not data.get(key):
            raise BadInputError(f"pipeline: audits[{index}] needs '{key}'")
    reported = _mapping(data.get("reported"), f"audits[{index}].reported")
    from_source = bool(reported.pop("from_source_run", True))
    reported_on = reported.pop("measured_on", "this")
    if reported_on not in ("this", "other"):
        raise BadInputError(
            f"pipeline: audits[{index}].reported.measured_on must be this or other, got {reported_on!r}"
        )
    reported_n = reported.pop("n", None)
    if reported_n is not None and (
        isinstance(reported_n, bool)
        or not isinstance(reported_n, int)
        or reported_n < 1
        or reported_on != "other"
    ):
        raise BadInputError(
            f"pipeline: audits[{index}].reported.n must be a positive integer, with measured_on: other"
        )
    retrain_raw = data.get("retrain") or {}
    if retrain_raw is True:
        raise BadInputError(f"pipeline: audits[{index}].retrain needs at least 'train: PATH'")
    retrain = _mapping(retrain_raw, f"audits[{index}].retrain")
    _unknown(retrain, {"train", "epochs", "batch_size", "seed", "seeds"}, f"audits[{index}].retrain")
    return AuditEntry(
        name=str(data.get("name") or Path(str(data["model"])).stem or f"audit-{index}"),
        model=str(data["model"]),
        data=str(data["data"]),
        label_columns=_columns(data.get("label_columns")),
        reported=_floats(reported, f"audits[{index}].reported"),
        reported_from_source_run=from_source,
        reported_on=str(reported_on),
        reported_n=reported_n,
        train=str(retrain["train"]) if retrain.get("train") else None,
        retrain=bool(retrain),
        epochs=int(retrain.get("epochs", 10)),
        batch_size=int(retrain.get("batch_size", 32)),
        seed=int(retrain.get("seed", 0)),
        seeds=int(retrain.get("seeds", 3)),
        unsafe=bool(data.get("unsafe", False)),
    )


def load_pipeline(
    path: str | Path,
    *,
    base: RuleConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """Read and validate a pipeline file; every problem is one :class:`BadInputError` line.

    ``base`` is the configuration file's layer (default: discovered from the working folder
    upwards); the file's rule keys go over it, then ``overrides`` (the command line's keys, from
    :func:`lossaudit.config_file.command_line_layer`).
    """
    import yaml

    from lossaudit.config_file import apply_layer, describe_flags, discover_config, pipeline_keys

    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"pipeline file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInputError(f"pipeline file {p} is not valid YAML: {first}") from None
    data = expand(_mapping(raw, "the file"))
    allowed = {"name", "kind", "out", "thresholds", "log", "audits", "scenarios", "registry"}
    _unknown(data, allowed | set(CONFIG_KEYS), str(p))
    kind = data.get("kind")
    if kind not in KINDS:
        raise BadInputError(f"pipeline {p}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    rules = discover_config() if base is None else base
    rules = apply_layer(rules, pipeline_keys(data), source=f"pipeline {p}")
    if overrides:
        rules = apply_layer(rules, overrides, source=describe_flags(overrides))
    log_raw = _mapping(data.get("log"), "log")
    _unknown(log_raw, {"enabled", "tracking_uri", "experiment"}, "log")
    log = LogConfig(
        enabled=bool(log_raw.get("enabled", True)),
        tracking_uri=log_raw.get("tracking_uri") or None,
        experiment=str(log_raw.get("experiment", "lossaudit")),
    )
    root = p.resolve().parent
    if root.name == "pipelines":
        root = root.parent
    audits: tuple[AuditEntry, ...] = ()
    registry: RegistryConfig | None = None
    scenarios: tuple[str, ...] = ()
    if kind == "audit":
        items = data.get("audits")
        if not isinstance(items, list) or not items:
            raise BadInputError(f"pipeline {p}: kind 'audit' needs a non-empty 'audits' list")
        audits = tuple(_audit_entry(item, i) for i, item in enumerate(items))
        names = [a.name for a in audits]
        if len(set(names)) != len(names):
            raise BadInputError(f"pipeline {p}: audit names must be unique, got {names}")
    elif kind == "demo":
        value = data.get("scenarios", "all")
        scenarios = () if value in (None, "all") else _columns(value)
    else:
        reg = _mapping(data.get("registry"), "registry")
        allowed_reg = {"name", "alias", "filter", "workers", "force", "promote_alias", "data"}
        _unknown(reg, allowed_reg | {"label_columns"}, "registry")
        registry = RegistryConfig(
            name=reg.get("name"),
            alias=reg.get("alias"),
            filter=reg.get("filter"),
            workers=int(reg.get("workers", 1)),
            force=bool(reg.get("force", False)),
            promote_alias=reg.get("promote_alias"),
            data={str(k): str(v) for k, v in _mapping(reg.get("data"), "registry.data").items()},
            label_columns=_columns(reg.get("label_columns")),
        )
    return PipelineConfig(
        name=str(data.get("name") or p.stem),
        kind=str(kind),
        path=p,
        root=root,
        fail_on=rules.fail_on.value,
        out=str(data.get("out", "lossaudit-reports")),
        thresholds=_floats(_mapping(data.get("thresholds"), "thresholds"), "thresholds"),
        log=log,
        audits=audits,
        scenarios=scenarios,
        registry=registry,
        rules=rules,
    )
