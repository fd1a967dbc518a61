"""Which Keras a training script runs under: from its imports, its code and the project's pins.

What ``metrics=['accuracy']`` means depends on the Keras family (see
:mod:`lossaudit.core.resolution`), and source code rarely says which Keras it runs under:

* the package a model is built from: ``keras`` (standalone: Keras 1 or 2 -> legacy up to 2.3,
  tf_keras from 2.4, Keras 3), ``tensorflow.keras`` / ``tf.keras`` (TensorFlow <= 2.1 -> legacy,
  2.2 to 2.15 -> tf_keras, 2.16 and later -> Keras 3) or ``tf_keras`` (tf_keras);
* signs in the code that only a legacy Keras runs it: Keras 1 arguments (``init=``,
  ``border_mode=``, ``nb_epoch=``: refused by tf.keras and Keras 3), TF1 graph mode
  (``tf.compat.v1.disable_eager_execution()``, where tf.keras resolves metrics the legacy way);
* the project's pinned versions: the nearest ``requirements.txt`` or ``pyproject.toml``
  (``[project] dependencies`` and optional dependencies, ``[tool.poetry.dependencies]``) from the
  script's folder up to the repository root. A constraint (``keras>=3.10,<4``) counts as much as a
  pin: every version it allows is considered.

The result is the set of families the script may run under. The checker judges a model under
each and reports what every one of them agrees on (a rule that holds for one family only fires
when the family is known).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossaudit.core.head import KerasFamily
from lossaudit.script.names import KERAS, TF_KERAS, TF_KERAS_PACKAGE

ALL = frozenset(KerasFamily)
ORDER = (KerasFamily.KERAS3, KerasFamily.TF_KERAS, KerasFamily.LEGACY)
"""The order in which families are tried; the first candidate's wording is reported."""

TENSORFLOW_DISTRIBUTIONS = frozenset(
    {"tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos", "tensorflow-intel", "tf-nightly"}
)
_KERAS_VERSIONS = (
    "1.2.2",
    "2.0.0",
    "2.2.4",
    "2.3.1",
    "2.4.0",
    "2.6.0",
    "2.13.1",
    "2.15.0",
    "3.0.0",
    "3.10.0",
    "3.15.1",
)
_TF_VERSIONS = (
    "1.15.0",
    "2.0.0",
    "2.1.0",
    "2.2.0",
    "2.4.0",
    "2.10.0",
    "2.15.0",
    "2.16.1",
    "2.18.0",
    "2.21.0",
)
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")
_CLAUSE = re.compile(r"^\s*(===|==|!=|~=|<=|>=|<|>)\s*([0-9][0-9A-Za-z.*+!\-]*)\s*$")
_NUMBERS = re.compile(r"\d+")


@dataclass(frozen=True)
class Pins:
    """Version constraints of the Keras-related distributions, and the file they came from."""

    keras: tuple[tuple[str, str], ...] | None = None
    tensorflow: tuple[tuple[str, str], ...] | None = None
    tf_keras: tuple[tuple[str, str], ...] | None = None
    source: str | None = None

    @property
    def empty(self) -> bool:
        return self.keras is None and self.tensorflow is None and self.tf_keras is None


NO_PINS = Pins()


@dataclass(frozen=True)
class Family:
    """The Keras families a model may run under, and why."""

    candidates: frozenset[KerasFamily]
    reason: str

    @property
    def ordered(self) -> tuple[KerasFamily, ...]:
        return tuple(f for f in ORDER if f in self.candidates)

    def describe(self) -> str:
        names = ", ".join(f.value for f in self.ordered)
        return names if len(self.candidates) == 1 else f"one of {names}"


def decide(
    packages: Iterable[str],
    pins: Pins,
    legacy_signals: Iterable[str] = (),
    override: KerasFamily | None = None,
) -> Family:
    """The families for a model built from ``packages`` (``keras``, ``tf.keras``, ``tf_keras``)."""
    if override is not None:
        return Family(frozenset({override}), "--keras-family")
    signals = list(legacy_signals)
    if signals:
        return Family(
            frozenset({KerasFamily.LEGACY}), f"the code runs only under a legacy Keras: {signals[0]}"
        )
    used = sorted(set(packages)) or [KERAS]
    found: set[KerasFamily] = set()
    reasons: list[str] = []
    for package in used:
        families, reason = _families_of(package, pins)
        found |= families
        reasons.append(reason)
    return Family(frozenset(found) or ALL, "; ".join(reasons))


def _families_of(package: str, pins: Pins) -> tuple[set[KerasFamily], str]:
    where = f" ({pins.source})" if pins.source else ""
    if package == TF_KERAS_PACKAGE:
        return {KerasFamily.TF_KERAS}, "tf_keras"
    if package == TF_KERAS:
        if pins.tensorflow is None:
            return set(ALL), "tf.keras, TensorFlow version not pinned"
        families = {_tf_keras_family(v) for v in _allowed(pins.tensorflow, _TF_VERSIONS)}
        if KerasFamily.KERAS3 in families and pins.tf_keras is not None:
            families.add(KerasFamily.TF_KERAS)  # TF_USE_LEGACY_KERAS=1 with tf_keras installed
        return families or set(ALL), f"tf.keras with tensorflow{_spec(pins.tensorflow)}{where}"
    if pins.keras is not None:
        families = {_keras_family(v) for v in _allowed(pins.keras, _KERAS_VERSIONS)}
        return families or set(ALL), f"keras{_spec(pins.keras)}{where}"
    if pins.tensorflow is not None:
        # Without a keras pin, TensorFlow's own dependency decides: keras 3 from TF 2.16, a
        # tf.keras-backed keras 2 before (TF <= 2.1 did not depend on keras: unknown).
        families = set()
        for version in _allowed(pins.tensorflow, _TF_VERSIONS):
            if _tuple(version) >= (2, 16):
                families.add(KerasFamily.KERAS3)
            elif _tuple(version) >= (2, 2):
                families.add(KerasFamily.TF_KERAS)
            else:
                families |= set(ALL)
        return families or set(ALL), f"keras with tensorflow{_spec(pins.tensorflow)}{where}"
    return set(ALL), "keras, version not pinned"


def _keras_family(version: str) -> KerasFamily:
    v = _tuple(version)
    if v >= (3,):
        return KerasFamily.KERAS3
    if v >= (2, 4):
        return KerasFamily.TF_KERAS
    return KerasFamily.LEGACY


def _tf_keras_family(version: str) -> KerasFamily:
    v = _tuple(version)
    if v >= (2, 16):
        return KerasFamily.KERAS3
    if v >= (2, 2):
        return KerasFamily.TF_KERAS
    return KerasFamily.LEGACY


def _spec(clauses: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{op}{v}" for op, v in clauses) if clauses else " (any version)"


# --- version constraints -----------------------------------------------------------------------


def _tuple(version: str) -> tuple[int, ...]:
    numbers: list[int] = []
    for part in version.split("."):
        match = _NUMBERS.match(part)
        if match is None:
            break
        numbers.append(int(match.group(0)))
        if match.end() != len(part):
            break
    return tuple(numbers) or (0,)


def _satisfies(version: str, op: str, target: str) -> bool:
    v = _tuple(version)
    if target.endswith(".*"):
        prefix = _tuple(target[:-2])
        matches = v[: len(prefix)] == prefix
        return matches if op in ("==", "===") else not matches if op == "!=" else True
    t = _tuple(target)
    width = max(len(v), len(t))
    v, t = v + (0,) * (width - len(v)), t + (0,) * (width - len(t))
    if op in ("==", "==="):
        return v == t
    if op == "!=":
        return v != t
    if op == "<":
        return v < t
    if op == "<=":
        return v <= t
    if op == ">":
        return v > t
    if op == ">=":
        return v >= t
    if op == "~=":
        release = _tuple(target)
        upper = release[:-1] if len(release) > 1 else release
        return v >= t and v[: len(upper)] == upper
    return True


def _allowed(clauses: tuple[tuple[str, str], ...], known: tuple[str, ...]) -> list[str]:
    """The versions among ``known`` and the clauses' own that every clause allows."""
    candidates = list(known) + [target.rstrip(".*") for _, target in clauses if target.rstrip(".*")]
    return [v for v in candidates if all(_satisfies(v, op, target) for op, target in clauses)]


def parse_requirement(text: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """``"tensorflow[and-cuda]>=2.15,<2.16 ; sys_platform == 'linux'"`` -> ("tensorflow",
    ((">=", "2.15"), ("<", "2.16"))); None for a line that is no requirement."""
    text = text.split("#", 1)[0].split(";", 1)[0].strip()
    if not text or text.startswith(("-", "git+", "http:", "https:", "file:", ".", "/")):
        return None
    match = _REQUIREMENT.match(text)
    if match is None:
        return None
    name = re.sub(r"[._]+", "-", match.group(1)).lower()
    rest = match.group(2).strip().strip("()")
    if rest.startswith("@"):
        return name, ()
    clauses: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in rest.split(","))):
        clause = _CLAUSE.match(part)
        if clause is None:
            return name, ()
        clauses.append((clause.group(1), clause.group(2)))
    return name, tuple(clauses)


def _poetry_requirement(name: str, value: Any) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    if isinstance(value, Mapping):
        value = value.get("version")
    if not isinstance(value, str):
        return None
    spec = value.strip()
    if spec in ("", "*"):
        return name, ()
    if spec.startswith("^"):
        low = _tuple(spec[1:])
        upper = next((i for i, n in enumerate(low) if n != 0), len(low) - 1)
        bumped = [*low[:upper], low[upper] + 1] if low else [1]
        return name, ((">=", spec[1:]), ("<", ".".join(map(str, bumped))))
    if spec.startswith("~") and not spec.startswith("~="):
        low = _tuple(spec[1:])
        bumped = [low[0], low[1] + 1] if len(low) > 1 else [low[0] + 1]
        return name, ((">=", spec[1:]), ("<", ".".join(map(str, bumped))))
    if spec[:1].isdigit():
        return name, (("==", spec),)
    parsed = parse_requirement(f"{name}{spec}")
    return parsed


def _pins_from(requirements: Iterable[tuple[str, tuple[tuple[str, str], ...]] | None], source: str) -> Pins:
    keras = tensorflow = tf_keras = None
    for requirement in requirements:
        if requirement is None:
            continue
        name, clauses = requirement
        if name == "keras":
            keras = (keras or ()) + clauses
        elif name in TENSORFLOW_DISTRIBUTIONS:
            tensorflow = (tensorflow or ()) + clauses
        elif name == "tf-keras":
            tf_keras = (tf_keras or ()) + clauses
    return Pins(keras, tensorflow, tf_keras, source)


def read_requirements(path: Path) -> Pins:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return NO_PINS
    return _pins_from((parse_requirement(line) for line in text.splitlines()), path.name)


def read_pyproject(path: Path) -> Pins:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, tomllib.TOMLDecodeError):
        return NO_PINS
    requirements: list[tuple[str, tuple[tuple[str, str], ...]] | None] = []
    project = doc.get("project")
    if isinstance(project, Mapping):
        for line in project.get("dependencies") or ():
            if isinstance(line, str):
                requirements.append(parse_requirement(line))
        optional = project.get("optional-dependencies")
        if isinstance(optional, Mapping):
            for lines in optional.values():
                for line in lines if isinstance(lines, list) else ():
                    if isinstance(line, str):
                        requirements.append(parse_requirement(line))
    tool = doc.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, Mapping) else None
    if isinstance(poetry, Mapping) and isinstance(poetry.get("dependencies"), Mapping):
        for name, value in poetry["dependencies"].items():
            requirements.append(_poetry_requirement(re.sub(r"[._]+", "-", str(name)).lower(), value))
    return _pins_from(requirements, path.name)


class PinFinder:
    """The pins that apply in a folder: the nearest ``requirements.txt`` or ``pyproject.toml``
    that names a Keras distribution, from the folder up to the repository root (a folder holding
    ``.git``); cached per folder."""

    def __init__(self) -> None:
        self._cache: dict[Path, Pins] = {}
        self._by_parent: dict[str, Pins] = {}

    def for_file(self, path: Path) -> Pins:
        parent = str(path.parent)
        if parent not in self._by_parent:
            try:
                self._by_parent[parent] = self._for_folder(path.parent.resolve())
            except OSError:
                self._by_parent[parent] = NO_PINS
        return self._by_parent[parent]

    def _for_folder(self, folder: Path) -> Pins:
        if folder in self._cache:
            return self._cache[folder]
        pins = NO_PINS
        for name, reader in (("requirements.txt", read_requirements), ("pyproject.toml", read_pyproject)):
            candidate = folder / name
            if candidate.is_file():
                found = reader(candidate)
                if not found.empty:
                    pins = Pins(found.keras, found.tensorflow, found.tf_keras, str(candidate))
                    break
        if pins.empty and not (folder / ".git").exists() and folder.parent != folder:
            pins = self._for_folder(folder.parent)
        self._cache[folder] = pins
        return pins
