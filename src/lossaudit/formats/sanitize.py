"""Characters no report format should pass on as they are, made visible instead.

Report text comes partly from the user: file names, metric, layer and model names, pipeline and
audit names, and the finding messages that quote them. Besides each format's own escaping
(Markdown, HTML, XML, JSON), every format first runs such text through :func:`printable`, which
replaces what could rewrite a terminal, hide or reorder text, or make a file unwritable:

* C0 and C1 control characters and DEL (``ESC [31m`` recolours a terminal, ``CR`` overwrites a
  line, ``NUL`` is illegal in XML 1.0); a newline too, unless the field may span lines;
* Unicode bidirectional controls (``U+202E`` shows ``lekar.keras`` for ``sarek.keras``) and the
  line and paragraph separators;
* lone surrogates (what :func:`os.fsdecode` makes of a file name that is not UTF-8: they cannot be
  encoded, so the report could not be written) and the non-characters ``U+FFFE`` and ``U+FFFF``.

Each one becomes its Python escape (``\\n``, ``\\x1b``, ``\\u202e``, ``\\udcff``), so a name still
reads the same in every format and can be found on disk.
"""

from __future__ import annotations

import re
from typing import Any

_UNSAFE = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 (but tab and newline), DEL, C1
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks, embeddings, isolates
    "\u2028\u2029\ufeff\ufff9-\ufffb\ufffe\uffff"  # separators, BOM, interlinear annotation
    "\ud800-\udfff"  # lone surrogates
)
_UNSAFE_INLINE = re.compile(f"[\t\n{_UNSAFE}]")
_UNSAFE_BLOCK = re.compile(f"[\t{_UNSAFE}]")


_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: Any, *, newlines: bool = False) -> str:
    """``value`` as text, with every unsafe character (see the module) as its Python escape.

    Parameters
    ----------
    value : Any
        ``None`` is the empty string; anything else goes through :class:`str`.
    newlines : bool, default False
        Keep line feeds (for text that may span lines: a message, a fix). Otherwise a line feed
        is ``\\n`` too, so a one-line field (a file name) cannot start a line of its own.
    """
    text = "" if value is None else str(value)
    return (_UNSAFE_BLOCK if newlines else _UNSAFE_INLINE).sub(_escape, text)


def is_printable(text: str, *, newlines: bool = False) -> bool:
    """True when :func:`printable` would leave ``text`` as it is."""
    return (_UNSAFE_BLOCK if newlines else _UNSAFE_INLINE).search(text) is None
