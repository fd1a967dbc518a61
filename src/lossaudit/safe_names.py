"""Folder names made from names users give (audit names, model names, registry names).

A name from a pipeline file, a model path or an MLflow URI never becomes a path as it is: it is
turned into one safe folder name (:func:`folder_name`), and :func:`child_folder` joins it to its
parent and checks that the result is still inside it. ``..``, absolute paths, separators, NUL and
other control characters cannot reach the file system.

The rules, in order:

* every run of characters outside ``A-Z a-z 0-9 _ . -`` becomes one ``-`` (separators, spaces,
  NUL, non-ASCII letters...);
* leading and trailing ``-`` and ``.`` are dropped: no hidden folder, no ``.`` or ``..``;
* a name left empty has no usable characters: :class:`~lossaudit.errors.BadInputError`, or the
  caller's ``fallback``;
* Windows device names (``CON``, ``NUL``, ``COM1``...) get a trailing ``-``;
* a name longer than :data:`MAX_NAME` characters keeps its first characters and gets the first
  10 hex digits of the original name's sha256, so two long names stay two folders.

Two different names can give one folder (``a/b`` and ``a-b``): callers that write several folders
side by side check :func:`clashes` first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from lossaudit.errors import BadInputError

MAX_NAME = 100
"""Longest folder name made (file systems allow 255 bytes; the rest of the path needs room)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_DEVICE = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?", re.IGNORECASE)


def folder_name(name: str, *, what: str = "name", fallback: str | None = None) -> str:
    """One safe folder name for ``name`` (see the module's rules).

    Raises
    ------
    BadInputError
        When ``name`` has no usable character and no ``fallback`` is given: one line naming
        ``what`` and the name.
    """
    slug = _UNSAFE.sub("-", name).strip("-.")
    if not slug:
        if fallback is not None:
            return fallback
        raise BadInputError(
            f"{what} {_shown(name)} has no letter or digit to name a folder with: use a plain name "
            "(letters, digits, '_', '.', '-')"
        )
    if _DEVICE.fullmatch(slug):
        slug += "-"
    if len(slug) > MAX_NAME:
        digest = hashlib.sha256(name.encode("utf-8", errors="surrogatepass")).hexdigest()[:10]
        slug = slug[: MAX_NAME - 11].rstrip("-.") + "-" + digest
    return slug


def child_folder(root: str | Path, name: str, *, what: str = "name", fallback: str | None = None) -> Path:
    """``root / folder_name(name)``, checked to stay inside ``root`` (it always does: the check
    guards the rules above against a future edit)."""
    base = Path(root)
    child = base / folder_name(name, what=what, fallback=fallback)
    if child.parent != base or child.name in ("", ".", ".."):
        raise BadInputError(f"{what} {_shown(name)} would write outside {base}")
    return child


def clashes(names: Iterable[str], *, what: str = "name") -> list[tuple[str, str, str]]:
    """(first name, second name, folder) for each pair of names that give one folder.

    Folders are compared without case: on macOS and Windows ``Digits`` and ``digits`` are one.
    """
    seen: dict[str, str] = {}
    found: list[tuple[str, str, str]] = []
    for name in names:
        folder = folder_name(name, what=what)
        key = folder.lower()
        if key in seen and seen[key] != name:
            found.append((seen[key], name, folder))
        else:
            seen.setdefault(key, name)
    return found


def _shown(name: str) -> str:
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."
