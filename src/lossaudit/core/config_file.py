"""Finding and reading lossaudit's configuration, the way ruff does it.

Where the values come from, lowest precedence first (each layer overrides the one before):

1. the configuration file: ``--config PATH`` when given, else the first folder, from the working
   folder upwards, holding a ``lossaudit.toml`` (keys at top level, like ``ruff.toml``) or a
   ``pyproject.toml`` with a ``[tool.lossaudit]`` table (a ``lossaudit.toml`` wins in the same
   folder; a ``pyproject.toml`` without the table is passed over);
2. a pipeline file's top-level ``select``, ``ignore``, ``severity``, ``fail_on``, ``alpha`` and
   ``tolerance`` (:mod:`lossaudit.pipeline.config`);
3. the command line: ``--select``, ``--ignore``, ``--fail-on``.

Within a layer the keys mean what :class:`~lossaudit.core.config.RuleConfig` says. Across layers,
as in ruff: a layer that sets ``select`` starts the selection over (earlier ``select`` *and*
``ignore`` are dropped); a layer that sets only ``ignore`` removes those rules from what the
earlier layers enabled; ``severity`` tables merge code by code; ``fail_on``, ``alpha`` and
``tolerance`` replace. Every problem (a missing file, bad TOML, an unknown key, code or severity)
is one :class:`~lossaudit.errors.BadInputError` line naming it: exit 2 on the command line.

Imports only the standard library and the rule configuration (no numeric library).
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lossaudit.core.config import CONFIG_KEYS, RuleConfig
from lossaudit.errors import BadInputError

LOSSAUDIT_TOML = "lossaudit.toml"
PYPROJECT_TOML = "pyproject.toml"
CONFIG_FILE_NAMES = (LOSSAUDIT_TOML, PYPROJECT_TOML)
"""Looked for in each folder, in this order: the first that configures lossaudit is used."""
DEFAULT_SOURCE = "defaults"
COMMAND_LINE = "command line"


# --- reading one file --------------------------------------------------------------------------


def _parse_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise BadInputError(f"config file is a folder, not a file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"config file {path} cannot be read: {type(exc).__name__}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInputError(f"config file {path} is not valid TOML: {first}") from None


def _tool_table(doc: Mapping[str, Any]) -> Any:
    """The ``[tool.lossaudit]`` value of a parsed pyproject.toml (None when absent)."""
    tool = doc.get("tool")
    return tool.get("lossaudit") if isinstance(tool, Mapping) else None


def config_source(path: Path) -> str:
    """How a file is named in messages and in ``report.json``'s ``config.source``."""
    return f"{path} [tool.lossaudit]" if path.name == PYPROJECT_TOML else str(path)


def read_config_table(path: str | Path) -> dict[str, Any]:
    """The lossaudit keys of one file: ``[tool.lossaudit]`` of a file named ``pyproject.toml``,
    the top-level keys of any other (``lossaudit.toml``, as ``ruff.toml``).

    Raises :class:`BadInputError` for a missing file, bad TOML, or a pyproject.toml without the
    table.
    """
    p = Path(path)
    doc = _parse_toml(p)
    if p.name != PYPROJECT_TOML:
        return doc
    table = _tool_table(doc)
    if table is None:
        raise BadInputError(f"config file {p} has no [tool.lossaudit] table")
    if not isinstance(table, Mapping):
        raise BadInputError(f"{config_source(p)}: the lossaudit configuration must be a table")
    return dict(table)


def load_config_file(path: str | Path) -> RuleConfig:
    """A :class:`RuleConfig` from one file (its keys over the defaults); unknown keys, codes or
    severity values raise :class:`BadInputError` naming them."""
    p = Path(path)
    return apply_layer(RuleConfig(), read_config_table(p), source=config_source(p))


# --- discovery ---------------------------------------------------------------------------------


def _configures_lossaudit(path: Path) -> bool:
    """A lossaudit.toml always counts; a pyproject.toml only with a ``[tool.lossaudit]`` table."""
    if path.name != PYPROJECT_TOML:
        return True
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    # A pyproject.toml that never says "lossaudit" cannot configure it: skipping the parse keeps
    # an unrelated broken file in a parent folder from failing the command.
    if "lossaudit" not in text:
        return False
    return _tool_table(_parse_toml(path)) is not None


def find_config_file(start: str | Path | None = None) -> Path | None:
    """The configuration file that applies in ``start`` (default: the working folder): the first
    folder from ``start`` upwards with a ``lossaudit.toml`` or a ``pyproject.toml`` holding
    ``[tool.lossaudit]``; None when there is none up to the file-system root."""
    try:
        folder = (Path.cwd() if start is None else Path(start)).resolve()
    except OSError:  # the working folder was removed
        return None
    for candidate in (folder, *folder.parents):
        for name in CONFIG_FILE_NAMES:
            path = candidate / name
            try:
                found = path.is_file()
            except OSError:  # a folder we may not look into
                found = False
            if found and _configures_lossaudit(path):
                return path
    return None


def discover_config(start: str | Path | None = None) -> RuleConfig:
    """The configuration found from ``start`` (default: the working folder) upwards, else the
    defaults (``source`` says which file, or ``defaults``)."""
    path = find_config_file(start)
    return RuleConfig() if path is None else load_config_file(path)


def base_config(config_path: str | Path | None = None, *, start: str | Path | None = None) -> RuleConfig:
    """The file layer: ``--config PATH`` when given, else what :func:`discover_config` finds."""
    return load_config_file(config_path) if config_path is not None else discover_config(start)


# --- layering ----------------------------------------------------------------------------------


def _covers(ignore: str, select: str) -> bool:
    """True when ignoring ``ignore`` takes away everything ``select`` selected."""
    return ignore == "ALL" or (select != "ALL" and select.startswith(ignore))


def _dedup(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def apply_layer(base: RuleConfig, data: Mapping[str, Any], *, source: str) -> RuleConfig:
    """``base`` with the keys of one layer (a file's table, a pipeline file, the command line)
    applied over it, as ruff layers configurations (see the module docstring).

    ``data`` is validated first: unknown keys, codes and severity values raise
    :class:`BadInputError` prefixed with ``source``. An empty layer returns ``base`` unchanged.
    """
    layer = RuleConfig.from_mapping(data, source=source)
    keys = set(data)
    if not keys:
        return base
    changes: dict[str, Any] = {}
    if "select" in keys:
        changes["select"] = layer.select
        changes["ignore"] = layer.ignore if "ignore" in keys else ()
    elif "ignore" in keys:
        changes["select"] = tuple(s for s in base.select if not any(_covers(i, s) for i in layer.ignore))
        changes["ignore"] = _dedup((*base.ignore, *layer.ignore))
    if "severity" in keys:
        changes["severity"] = {**base.severity, **layer.severity}
    for key in ("fail_on", "alpha", "tolerance"):
        if key in keys:
            changes[key] = getattr(layer, key)
    changes["source"] = source if base.source == DEFAULT_SOURCE else f"{base.source} + {source}"
    return replace(base, **changes)


def split_codes(values: Iterable[str] | None) -> tuple[str, ...] | None:
    """``--select LA1,LA2 --select LA5`` -> ``("LA1", "LA2", "LA5")``; None when not given."""
    if values is None:
        return None
    out = [part.strip() for value in values for part in value.split(",")]
    return tuple(part for part in out if part)


def command_line_layer(
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    fail_on: str | None = None,
) -> dict[str, Any]:
    """The keys the command line sets (only flags actually given), each checked on its own so a
    bad value is named by its flag: ``--select: unknown rule code(s) LA999``."""
    layer: dict[str, Any] = {}
    for flag, key, value in (
        ("--select", "select", split_codes(select)),
        ("--ignore", "ignore", split_codes(ignore)),
        ("--fail-on", "fail_on", fail_on),
    ):
        if value is None:
            continue
        try:
            RuleConfig.from_mapping({key: value}, source=flag)
        except BadInputError as exc:
            message = str(exc).removeprefix(f"{flag}: ").removeprefix(f"{key}: ")
            raise BadInputError(f"{flag}: {message}") from None
        layer[key] = value
    return layer


def describe_flags(layer: Mapping[str, Any]) -> str:
    """``command line (--select, --ignore)`` for the ``source`` of a command-line layer."""
    flags = ", ".join("--" + key.replace("_", "-") for key in layer)
    return f"{COMMAND_LINE} ({flags})"


def resolve_config(
    *,
    config_path: str | Path | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    fail_on: str | None = None,
    pipeline: Mapping[str, Any] | None = None,
    pipeline_source: str = "pipeline",
    start: str | Path | None = None,
) -> RuleConfig:
    """The effective configuration: file (``config_path`` or discovered from ``start``) <
    ``pipeline`` keys < command-line flags. What every judging command uses."""
    config = base_config(config_path, start=start)
    if pipeline:
        config = apply_layer(config, pipeline, source=pipeline_source)
    flags = command_line_layer(select, ignore, fail_on)
    if flags:
        config = apply_layer(config, flags, source=describe_flags(flags))
    return config


def pipeline_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """The rule-configuration keys among a pipeline file's top-level keys.

    ``${VAR}`` expansion leaves text, so a string ``select``/``ignore`` is split on commas
    (``select: ${RULES:-LA1,LA4}``) and a string ``alpha``/``tolerance`` read as a number.
    """
    keys = {key: data[key] for key in CONFIG_KEYS if key in data}
    for key in ("select", "ignore"):
        if isinstance(keys.get(key), str):
            keys[key] = list(split_codes([keys[key]]) or ())
    for key in ("alpha", "tolerance"):
        value = keys.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # else RuleConfig names the bad value
                keys[key] = float(value)
    return keys
