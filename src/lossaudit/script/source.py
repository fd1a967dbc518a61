"""The files ``lossaudit check PATH...`` reads: Python files, notebooks' code cells, folders of both.

Nothing is imported or run: a file is read as bytes, decoded the way Python decodes source (a
coding cookie or a BOM), and handed to :mod:`ast` by the caller. A notebook is read as JSON with the
position of every string kept, so a finding in a code cell points at the line of the ``.ipynb``
file that holds it (what GitHub annotates) and also names the cell and its line (what a person
reads). IPython syntax in a cell (``%magic``, ``!shell``, ``x = !ls``, ``obj?``) becomes ``pass``,
line for line; a cell whose first line is a non-Python cell magic (``%%bash``) is skipped.

A file that never says ``keras`` is not parsed at all: it cannot build a Keras model.
"""

from __future__ import annotations

import bisect
import json.decoder
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossaudit.errors import BadInputError

NOTEBOOK_SUFFIX = ".ipynb"
PYTHON_SUFFIX = ".py"
MODEL_SUFFIXES = frozenset({".keras", ".h5", ".hdf5", ".pb", ".npz", ".npy", ".csv", ".parquet"})
"""Files that are models or data: ``check PATH`` refuses them with a hint (``--model``/``--labels``)."""
EXCLUDED_FOLDERS = frozenset(
    {
        "__pycache__",
        "__pypackages__",
        "_build",
        "buck-out",
        "build",
        "dist",
        "node_modules",
        "site-packages",
        "venv",
    }
)
"""Folders a folder walk never enters, besides hidden ones (``.git``, ``.venv``,
``.ipynb_checkpoints``, ...): ruff's default excludes."""
MAX_FILE_BYTES = 20 * 1024 * 1024
"""Larger files are not read (a notice says so): no training script is that large."""
KERAS_MARK = b"keras"

_CELL_MAGICS_OF_PYTHON = frozenset({"time", "timeit", "capture", "prun", "debug", "memit"})
_SHELL_ASSIGNMENT = re.compile(r"^\s*[\w.,\s()\[\]]+=\s*[!%]")
_SUPPRESSION = re.compile(r"#\s*lossaudit:\s*ignore\b(?:\[([^\]]*)\])?", re.IGNORECASE)


@dataclass(frozen=True)
class Notice:
    """A file (or a notebook cell) that could not be read or parsed: said, and the rest goes on."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "column": self.column, "message": self.message}

    def text(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class CodeUnit:
    """Python code parsed as one module: a whole ``.py`` file, or one notebook code cell.

    ``lines`` are the code's lines as parsed (IPython syntax already replaced). For a cell,
    ``file_lines[i]`` and ``file_columns[i]`` are the line (1-based) and column (0-based) of the
    ``.ipynb`` file where code line ``i + 1`` starts.
    """

    text: str
    lines: tuple[str, ...]
    cell: int | None = None
    file_lines: tuple[int, ...] = ()
    file_columns: tuple[int, ...] = ()
    suppressions: Mapping[int, frozenset[str] | None] = field(default_factory=dict)
    """Code line -> the codes ``# lossaudit: ignore[...]`` names on it (None: every code)."""

    def column(self, line: int, byte_offset: int) -> int:
        """The 1-based character column of an :mod:`ast` offset (UTF-8 bytes) on a code line."""
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if text.isascii():
            return byte_offset + 1
        return len(text.encode("utf-8")[:byte_offset].decode("utf-8", "ignore")) + 1

    def file_position(self, line: int, column: int) -> tuple[int, int]:
        """(line, column) in the file of a code position (both 1-based)."""
        if self.cell is None or not self.file_lines:
            return line, column
        index = min(max(line, 1), len(self.file_lines)) - 1
        return self.file_lines[index], self.file_columns[index] + column

    def suppressed(self, code: str, first_line: int, last_line: int) -> bool:
        """True when a ``# lossaudit: ignore`` comment on one of the lines covers ``code``."""
        for line in range(first_line, last_line + 1):
            if line in self.suppressions:
                codes = self.suppressions[line]
                if codes is None or any(code.startswith(c) for c in codes):
                    return True
        return False


@dataclass(frozen=True)
class SourceFile:
    """One file to check: its code units, or why it could not be read."""

    path: Path
    display: str
    """The path as the user named it (joined with the folder they named), for every output."""
    units: tuple[CodeUnit, ...] = ()
    notices: tuple[Notice, ...] = ()
    mentions_keras: bool = True

    @property
    def is_notebook(self) -> bool:
        return self.path.suffix.lower() == NOTEBOOK_SUFFIX


# --- finding the files -------------------------------------------------------------------------


def collect_files(paths: Sequence[Path]) -> list[Path]:
    """Every Python file and notebook named or under a named folder, in order, once each.

    Raises :class:`BadInputError` for a path that does not exist and for a saved model or a data
    file named as a script.
    """
    found: list[Path] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = os.path.normpath(os.path.abspath(path))  # no system call per file
        if key not in seen:
            seen.add(key)
            found.append(path)

    for path in paths:
        if path.is_dir():
            for file in _walk(path):
                add(file)
        elif path.is_file():
            if path.suffix.lower() in MODEL_SUFFIXES:
                raise BadInputError(
                    f"{path} is a saved model or a data file, not a training script: give a model "
                    "with --model and labels with --labels"
                )
            add(path)
        elif path.exists():
            raise BadInputError(f"{path} is neither a file nor a folder")
        else:
            raise BadInputError(f"no such file or folder: {path}")
    return found


def _walk(folder: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in EXCLUDED_FOLDERS)
        for name in sorted(files):
            if name.endswith((PYTHON_SUFFIX, NOTEBOOK_SUFFIX)) and not name.startswith("."):
                yield Path(root) / name


# --- reading one file --------------------------------------------------------------------------


def read_source(path: Path, display: str | None = None) -> SourceFile:
    """A file's code units; a file that cannot be read is a :class:`Notice`, never an exception."""
    shown = display if display is not None else str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return SourceFile(
                path, shown, notices=(Notice(shown, f"not read: larger than {MAX_FILE_BYTES} bytes"),)
            )
        data = path.read_bytes()
    except OSError as exc:
        return SourceFile(path, shown, notices=(Notice(shown, f"cannot be read ({type(exc).__name__})"),))
    if KERAS_MARK not in data:
        return SourceFile(path, shown, mentions_keras=False)
    if path.suffix.lower() == NOTEBOOK_SUFFIX:
        return _read_notebook(path, shown, data)
    try:
        text = _decode_python(data)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        return SourceFile(path, shown, notices=(Notice(shown, f"cannot be decoded as Python source: {exc}"),))
    lines = tuple(text.split("\n"))
    return SourceFile(path, shown, units=(CodeUnit(text, lines, suppressions=_suppressions(lines)),))


def _decode_python(data: bytes) -> str:
    """Source bytes as Python decodes them (coding cookie, BOM), with universal newlines."""
    from importlib.util import decode_source

    return decode_source(data)


def _suppressions(lines: Sequence[str]) -> dict[int, frozenset[str] | None]:
    out: dict[int, frozenset[str] | None] = {}
    for number, line in enumerate(lines, start=1):
        if "lossaudit" not in line:
            continue
        match = _SUPPRESSION.search(line)
        if match is None:
            continue
        listed = match.group(1)
        if listed is None:
            out[number] = None
        else:
            codes = frozenset(c.strip().upper() for c in listed.split(",") if c.strip())
            out[number] = codes or None
    return out


# --- notebooks ---------------------------------------------------------------------------------


# The C string scanner the json module uses (not in typeshed's stubs): JSON string at an offset.
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


class _At(str):
    """A JSON string that knows the offset of its opening quote in the file."""

    offset: int = 0


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _skip(text: str, i: int) -> int:
    """The offset of the first non-whitespace character at or after ``i``."""
    match = _WS.match(text, i)
    return match.end() if match is not None else i


def _json_value(text: str, i: int) -> tuple[Any, int]:
    """JSON at ``text[i:]`` (strings as :class:`_At`) and the offset after it."""
    i = _skip(text, i)
    ch = text[i : i + 1]
    if ch == '"':
        value, end = _scanstring(text, i + 1, True)
        at = _At(value)
        at.offset = i
        return at, end
    if ch == "{":
        obj: dict[str, Any] = {}
        i = _skip(text, i + 1)
        if text[i : i + 1] == "}":
            return obj, i + 1
        while True:
            if text[i : i + 1] != '"':
                raise ValueError(f"expected a key at offset {i}")
            key, i = _scanstring(text, i + 1, True)
            i = _skip(text, i)
            if text[i : i + 1] != ":":
                raise ValueError(f"expected ':' at offset {i}")
            obj[key], i = _json_value(text, i + 1)
            i = _skip(text, i)
            if text[i : i + 1] == ",":
                i = _skip(text, i + 1)
                continue
            if text[i : i + 1] == "}":
                return obj, i + 1
            raise ValueError(f"expected ',' or '}}' at offset {i}")
    if ch == "[":
        items: list[Any] = []
        i = _skip(text, i + 1)
        if text[i : i + 1] == "]":
            return items, i + 1
        while True:
            item, i = _json_value(text, i)
            items.append(item)
            i = _skip(text, i)
            if text[i : i + 1] == ",":
                i += 1
                continue
            if text[i : i + 1] == "]":
                return items, i + 1
            raise ValueError(f"expected ',' or ']' at offset {i}")
    for word, literal in _LITERALS.items():
        if text.startswith(word, i):
            return literal, i + len(word)
    number = _NUMBER.match(text, i)
    if number is None:
        raise ValueError(f"unexpected {ch!r} at offset {i}")
    return float(number.group(0)), number.end()


def _read_notebook(path: Path, shown: str, data: bytes) -> SourceFile:
    try:
        text = data.decode("utf-8-sig")
        doc, end = _json_value(text, 0)
        if _skip(text, end) != len(text):
            raise ValueError("text after the JSON document")
    except (UnicodeDecodeError, ValueError, IndexError, RecursionError) as exc:
        return SourceFile(path, shown, notices=(Notice(shown, f"not a readable notebook: {exc}"),))
    cells = _code_cells(doc)
    if cells is None:
        return SourceFile(path, shown, notices=(Notice(shown, "not a notebook: no list of cells"),))
    newlines = [m.start() for m in re.finditer("\n", text)]
    units: list[CodeUnit] = []
    for number, source in enumerate(cells, start=1):
        unit = _cell_unit(text, newlines, number, source)
        if unit is not None:
            units.append(unit)
    return SourceFile(path, shown, units=tuple(units))


def _code_cells(doc: Any) -> list[list[_At]] | None:
    """The source pieces of each code cell (nbformat 4 ``source``, nbformat 3 ``input``)."""
    if not isinstance(doc, dict):
        return None
    cells = doc.get("cells")
    if cells is None and isinstance(doc.get("worksheets"), list) and doc["worksheets"]:
        first = doc["worksheets"][0]
        cells = first.get("cells") if isinstance(first, dict) else None
    if not isinstance(cells, list):
        return None
    out: list[list[_At]] = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", cell.get("input", ""))
        pieces = source if isinstance(source, list) else [source]
        out.append([p for p in pieces if isinstance(p, _At)])
    return out


def _cell_unit(text: str, newlines: list[int], number: int, pieces: list[_At]) -> CodeUnit | None:
    """One code cell as a unit, with the file position where each of its lines starts."""
    starts: list[tuple[int, int]] = []
    at_line_start = True
    for piece in pieces:
        raw = piece.offset + 1
        for ch in piece:
            if at_line_start:
                starts.append(_position(newlines, raw))
                at_line_start = False
            if text[raw] == "\\":
                raw += 12 if text[raw + 1] == "u" and ord(ch) > 0xFFFF else 6 if text[raw + 1] == "u" else 2
            else:
                raw += 1
            if ch == "\n":
                at_line_start = True
    code = "".join(pieces).replace("\r\n", "\n").replace("\r", "\n")
    lines = code.split("\n")
    while len(starts) < len(lines):  # a trailing empty line: where the last one ended
        starts.append(starts[-1] if starts else (1, 0))
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        magic = first[2:].split(maxsplit=1)[0] if first[2:].split() else ""
        if magic not in _CELL_MAGICS_OF_PYTHON:
            return None  # %%bash, %%html, %%writefile, ...: not Python
        lines[0] = "pass"
    lines = [_without_ipython(line) for line in lines]
    return CodeUnit(
        "\n".join(lines),
        tuple(lines),
        cell=number,
        file_lines=tuple(s[0] for s in starts[: len(lines)]),
        file_columns=tuple(s[1] for s in starts[: len(lines)]),
        suppressions=_suppressions(lines),
    )


def _without_ipython(line: str) -> str:
    stripped = line.lstrip()
    if not stripped or stripped.startswith("#"):
        return line
    if (
        stripped.startswith(("%", "!"))
        or _SHELL_ASSIGNMENT.match(line)
        or (stripped.endswith("?") and "#" not in stripped)
    ):
        return line[: len(line) - len(stripped)] + "pass"
    return line


def _position(newlines: list[int], offset: int) -> tuple[int, int]:
    """(1-based line, 0-based column) of a character offset."""
    index = bisect.bisect_left(newlines, offset)
    start = newlines[index - 1] + 1 if index > 0 else 0
    return index + 1, offset - start
