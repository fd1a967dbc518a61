"""What the commands print for a person: colour by severity, progress, headed tables.

Plain text whenever a person is not watching: when stdout is not a terminal, when ``NO_COLOR`` is
set (https://no-color.org) or ``TERM=dumb``. Progress goes to stderr and only to a terminal: a pipe
or a CI log gets the results and nothing else. Rich is imported only when it draws something.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer

SEVERITY_STYLE = {
    "error": "bold red",
    "fail": "bold red",
    "warning": "yellow",
    "info": "cyan",
    "pass": "green",
}


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def styled(stream: Any = None) -> bool:
    """Whether to draw with colour on ``stream`` (stdout by default)."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not _no_color()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], styles: Sequence[str | None] = ()) -> None:
    """A headed table on stdout: Rich with colour in a terminal, aligned plain text otherwise.

    ``styles`` gives each row's style name for its verdict cells (a key of :data:`SEVERITY_STYLE`).
    In a terminal too narrow for the table no cell is cut short: the first column (the name a row
    is about) keeps its width and the others wrap, long words (a run id) folded onto the next line.
    """
    if styled():
        from rich.console import Console
        from rich.table import Table

        grid = Table(*headers, show_lines=False, header_style="bold")
        for column in grid.columns:
            column.overflow = "fold"
        if rows:
            grid.columns[0].no_wrap = True
            grid.columns[0].min_width = max(len(headers[0]), *(len(r[0]) for r in rows))
        for i, row in enumerate(rows):
            style = SEVERITY_STYLE.get(styles[i] or "") if i < len(styles) else None
            grid.add_row(*row, style=style)
        Console().print(grid)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [headers, *rows]
    for line in lines:
        typer.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())


_LINE_STYLE = (
    (re.compile(r"^(LA\d{3} error)"), "red"),
    (re.compile(r"^(LA\d{3} warning)"), "yellow"),
    (re.compile(r"^(LA\d{3} info)"), "cyan"),
    (re.compile(r"^(verdict: fail)"), "red"),
    (re.compile(r"^(verdict: pass)"), "green"),
)


def severity_colours(text: str) -> str:
    """A text report with finding codes and the verdict coloured by severity, in a terminal;
    unchanged otherwise (pipes, ``NO_COLOR``)."""
    if not styled():
        return text
    out = []
    for line in text.splitlines():
        for pattern, colour in _LINE_STYLE:
            match = pattern.match(line)
            if match:
                head = match.group(1)
                line = typer.style(head, fg=colour, bold=True) + line[len(head) :]
                break
        out.append(line)
    return "\n".join(out)


class _BehindTheStatus:
    """``sys.stderr`` while the status line is live: writes go to Rich's redirection (printed
    above the status line), and it answers ``isatty()`` with False, so a second live display
    (the Keras adapter's batch bar, a library's progress bar) stays off instead of printing each
    of its redraws as a line above the status, escape codes mangled."""

    def __init__(self, proxied: Any) -> None:
        self._proxied = proxied

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        return int(self._proxied.write(text))

    def flush(self) -> None:
        self._proxied.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._proxied, name)


@contextmanager
def progress(label: str) -> Iterator[Any]:
    """A live status line on stderr while a slow stage runs, in a terminal only; yields a
    function that updates the line (a no-op in a pipe). It is the only live display meanwhile:
    see :class:`_BehindTheStatus`."""
    if not styled(sys.stderr):
        yield lambda _text: None
        return
    from rich.console import Console

    with Console(stderr=True).status(label) as status:
        redirected = sys.stderr
        sys.stderr = _BehindTheStatus(redirected)
        try:
            yield lambda text: status.update(f"{label}: {text}")
        finally:
            sys.stderr = redirected  # before Rich restores the terminal's own stderr


def stderr_line(text: str) -> None:
    """One line on stderr that keeps clear of a live :func:`progress` line.

    It goes through ``sys.stderr``, which the live status redirects above itself in a terminal;
    ``typer.echo(..., err=True)`` finds the terminal underneath and would write into the status
    line. Anywhere else it is a plain line on stderr.
    """
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
