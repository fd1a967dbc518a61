"""Which rules run, how severe their findings are, and where the gate falls: the rule configuration.

Modelled on ruff: ``select`` and ``ignore`` take codes or code prefixes (``LA5`` is every LA5xx
rule), ``severity`` overrides a rule's default per code, ``fail_on`` is the lowest severity that
fails. ``alpha`` and ``tolerance`` set how reported numbers are judged (see
:mod:`lossaudit.core.compare`). Finding files and reading them is the job of
:mod:`lossaudit.core.config_file`; this module only holds and applies the values, so the core stays free
of file formats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lossaudit.core.findings import Finding, Severity
from lossaudit.errors import BadInputError

DEFAULT_ALPHA = 0.001
"""Significance level at which a number measured on other data is judged inconsistent."""

CONFIG_KEYS = ("select", "ignore", "severity", "fail_on", "alpha", "tolerance")


def _known_codes() -> frozenset[str]:
    from lossaudit.core.catalogue import RULES_BY_CODE

    return frozenset(RULES_BY_CODE)


def _check_selectors(selectors: Iterable[str], key: str) -> tuple[str, ...]:
    """Codes or prefixes of codes (``LA1``, ``LA10``, ``LA101``, ``ALL``); unknown ones refused."""
    codes = _known_codes()
    out: list[str] = []
    unknown: list[str] = []
    for raw in selectors:
        sel = str(raw).strip().upper()
        if sel == "ALL" or (any(code.startswith(sel) for code in codes) and sel.startswith("LA")):
            out.append(sel)
        else:
            unknown.append(str(raw))
    if unknown:
        raise BadInputError(f"{key}: unknown rule code(s) {', '.join(unknown)}")
    return tuple(out)


def _matches(code: str, selectors: tuple[str, ...]) -> int:
    """Length of the longest selector matching ``code`` (0: none); ``ALL`` counts as length 1."""
    best = 0
    for sel in selectors:
        if sel == "ALL":
            best = max(best, 1)
        elif code.startswith(sel):
            best = max(best, len(sel))
    return best


@dataclass(frozen=True)
class RuleConfig:
    """The effective configuration of one audit (defaults: every rule, default severities)."""

    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    severity: Mapping[str, Severity] = field(default_factory=dict)
    fail_on: Severity = Severity.ERROR
    alpha: float = DEFAULT_ALPHA
    tolerance: float | None = None
    """Absolute tolerance for matching a reported number; None: half a unit of its last digit."""
    source: str = "defaults"
    """Where the values came from (a file path, ``cli``, a pipeline file), for the report."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "select", _check_selectors(self.select, "select"))
        object.__setattr__(self, "ignore", _check_selectors(self.ignore, "ignore"))
        known = _known_codes()
        severities: dict[str, Severity] = {}
        for code, value in dict(self.severity).items():
            key = str(code).strip().upper()
            if key not in known:
                raise BadInputError(f"severity: unknown rule code {code}")
            try:
                severities[key] = Severity(str(value).strip().lower())
            except ValueError:
                raise BadInputError(
                    f"severity.{code}: {value!r} is not one of error, warning, info"
                ) from None
        object.__setattr__(self, "severity", severities)
        try:
            object.__setattr__(self, "fail_on", Severity(str(self.fail_on).strip().lower()))
        except ValueError:
            raise BadInputError(f"fail_on: {self.fail_on!r} is not one of error, warning, info") from None
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 < float(alpha) < 0.5:
            raise BadInputError(f"alpha: must be a number in (0, 0.5), got {alpha!r}")
        object.__setattr__(self, "alpha", float(alpha))
        tol = self.tolerance
        if tol is not None:
            if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0.0 <= float(tol) < 1.0:
                raise BadInputError(f"tolerance: must be a number in [0, 1), got {tol!r}")
            object.__setattr__(self, "tolerance", float(tol))

    def enabled(self, code: str) -> bool:
        """Selected and not ignored; the more specific selector wins, as in ruff."""
        chosen = _matches(code, self.select)
        return chosen > 0 and chosen > _matches(code, self.ignore)

    def apply(self, findings: Iterable[Finding]) -> tuple[Finding, ...]:
        """Drop findings of rules not enabled; set configured severities (they win over defaults
        and over evidence, as the user said so)."""
        out: list[Finding] = []
        for finding in findings:
            if not self.enabled(finding.code):
                continue
            configured = self.severity.get(finding.code)
            out.append(finding if configured is None else replace(finding, severity=configured))
        return tuple(out)

    def with_overrides(self, **changes: Any) -> RuleConfig:
        """A copy with the given keys replaced (the CLI's flags over the file's values)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {
            "select": list(self.select),
            "ignore": list(self.ignore),
            "severity": {k: v.value for k, v in sorted(self.severity.items())},
            "fail_on": self.fail_on.value,
            "alpha": self.alpha,
            "tolerance": self.tolerance,
            "source": self.source,
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str) -> RuleConfig:
        """From a ``[tool.lossaudit]`` table or a pipeline file's keys; unknown keys refused."""
        if not isinstance(data, Mapping):
            raise BadInputError(f"{source}: the lossaudit configuration must be a table")
        unknown = sorted(set(data) - set(CONFIG_KEYS))
        if unknown:
            raise BadInputError(
                f"{source}: unknown configuration key(s) {', '.join(unknown)} "
                f"(known: {', '.join(CONFIG_KEYS)})"
            )
        kwargs: dict[str, Any] = {"source": source}
        for key in ("select", "ignore"):
            if key in data:
                value = data[key]
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                    raise BadInputError(f"{source}: {key} must be a list of rule codes")
                kwargs[key] = tuple(value)
        if "severity" in data:
            if not isinstance(data["severity"], Mapping):
                raise BadInputError(f'{source}: severity must be a table of CODE = "error"|...')
            kwargs["severity"] = dict(data["severity"])
        for key in ("fail_on", "alpha", "tolerance"):
            if key in data:
                kwargs[key] = data[key]
        try:
            return cls(**kwargs)
        except BadInputError as exc:
            raise BadInputError(f"{source}: {exc}") from None


DEFAULT_CONFIG = RuleConfig()
