"""A finding's fix written as code for the lines it flags.

The core says what to change in a head (:class:`~lossaudit.core.head.HeadFix`: a loss, from_logits,
metrics, an activation, units); this module says it in the script's own terms, by editing the
call's arguments in place and leaving everything else on the lines as written: the loss argument
of ``compile`` (a string stays a string, a loss object keeps its module path and gets
``from_logits=True``), the accuracy entries of ``metrics=[...]``, the ``activation=`` or units of
the layer. Each edit is a :class:`~lossaudit.core.findings.SourceEdit`: the whole lines of the
call, rewritten.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from lossaudit.core.findings import SourceEdit, SourceLocation
from lossaudit.core.head import LossSpec
from lossaudit.core.resolution import ACCURACY_ALIASES
from lossaudit.script.names import LOSS_CLASS_NAMES
from lossaudit.script.source import CodeUnit


@dataclass(frozen=True)
class Change:
    """Replace the text from ``start`` to ``end`` ((line, utf-8 byte column) of a code unit)."""

    start: tuple[int, int]
    end: tuple[int, int]
    text: str


def replace(node: ast.AST, text: str) -> Change:
    return Change(
        (node.lineno, node.col_offset),  # type: ignore[attr-defined]
        (node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
        text,
    )


def add_keyword(call: ast.Call, text: str) -> Change:
    """``, name=value`` after the call's last argument (``name=value`` in empty parentheses)."""
    ends = [
        (n.end_lineno or n.lineno, n.end_col_offset or 0)
        for n in (*call.args, *(k.value for k in call.keywords))
    ]
    if not ends:
        end = (call.end_lineno or call.lineno, (call.end_col_offset or 1) - 1)
        return Change(end, end, text)
    at = max(ends)
    return Change(at, at, f", {text}")


def quoted(unit: CodeUnit, near: ast.AST | None, value: str) -> str:
    """``value`` as a string literal, in the quotes of the string at ``near`` (else single)."""
    quote = "'"
    if isinstance(near, ast.Constant) and isinstance(near.value, str):
        text = segment(unit, near)
        if text[:1] in ("'", '"'):
            quote = text[0]
    return f"{quote}{value}{quote}" if quote not in value and "\\" not in value else repr(value)


def segment(unit: CodeUnit, node: ast.AST) -> str:
    """The source text of ``node``."""
    first, last = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
    lines = list(unit.lines[first - 1 : last])
    if not lines:
        return ""
    end_col = _chars(unit, last, node.end_col_offset or 0)  # type: ignore[attr-defined]
    start_col = _chars(unit, first, node.col_offset)  # type: ignore[attr-defined]
    lines[-1] = lines[-1][:end_col]
    lines[0] = lines[0][start_col:]
    return "\n".join(lines)


def _chars(unit: CodeUnit, line: int, byte_offset: int) -> int:
    return unit.column(line, byte_offset) - 1


def apply(unit: CodeUnit, location: SourceLocation, changes: list[Change]) -> SourceEdit | None:
    """The lines the changes touch, rewritten; None when there is nothing to change."""
    if not changes:
        return None
    first = min(c.start[0] for c in changes)
    last = max(c.end[0] for c in changes)
    lines = list(unit.lines[first - 1 : last])
    if len(lines) != last - first + 1:
        return None
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    text = "\n".join(lines)

    def position(at: tuple[int, int]) -> int:
        return offsets[at[0] - first] + _chars(unit, at[0], at[1])

    ordered = sorted(changes, key=lambda c: (c.start, c.end), reverse=True)
    previous_start: int | None = None
    for change in ordered:
        start, end = position(change.start), position(change.end)
        if previous_start is not None and end > previous_start:
            return None  # overlapping changes: no suggestion rather than a wrong one
        text = text[:start] + change.text + text[end:]
        previous_start = start
    return SourceEdit(location, first, last, text)


def loss_text(unit: CodeUnit, loss_node: ast.expr, spec: LossSpec, losses_prefix: str) -> str:
    """The loss argument for ``spec``, in the form the script used: a string when it can be one,
    else ``<module path>.<LossClass>(from_logits=True, ...)``."""
    needs_object = spec.from_logits or spec.label_smoothing > 0.0
    if not needs_object:
        return quoted(unit, loss_node, spec.name)
    cls = LOSS_CLASS_NAMES.get(spec.name)
    if cls is None:
        return quoted(unit, loss_node, spec.name)
    prefix = losses_prefix
    if isinstance(loss_node, ast.Call) and isinstance(loss_node.func, ast.Attribute):
        prefix = segment(unit, loss_node.func.value) + "."
    args = ["from_logits=True"] if spec.from_logits else []
    if spec.label_smoothing > 0.0:
        args.append(f"label_smoothing={spec.label_smoothing:g}")
    return f"{prefix}{cls}({', '.join(args)})"


def metrics_changes(
    unit: CodeUnit, call: ast.Call, metrics_arg: ast.expr | None, wanted: tuple[str, ...]
) -> list[Change]:
    """Swap the accuracy entries of ``metrics=[...]`` for ``wanted`` (or add ``metrics=``)."""
    if metrics_arg is None:
        items = ", ".join(quoted(unit, None, m) for m in wanted)
        return [add_keyword(call, f"metrics=[{items}]")]
    if isinstance(metrics_arg, ast.List | ast.Tuple):
        aliases = [
            e
            for e in metrics_arg.elts
            if isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value in ACCURACY_ALIASES
        ]
        if aliases:
            texts = ", ".join(quoted(unit, aliases[0], m) for m in wanted)
            return [replace(aliases[0], texts), *(_remove_element(metrics_arg, e) for e in aliases[1:])]
    if isinstance(metrics_arg, ast.Constant) and metrics_arg.value in ACCURACY_ALIASES:
        return [replace(metrics_arg, "[" + ", ".join(quoted(unit, metrics_arg, m) for m in wanted) + "]")]
    return [replace(metrics_arg, "[" + ", ".join(quoted(unit, None, m) for m in wanted) + "]")]


def _remove_element(container: ast.List | ast.Tuple, element: ast.expr) -> Change:
    """Drop ``element`` and the comma before it."""
    index = container.elts.index(element)
    before = container.elts[index - 1]
    return Change(
        (before.end_lineno, before.end_col_offset),  # type: ignore[arg-type]
        (element.end_lineno, element.end_col_offset),  # type: ignore[arg-type]
        "",
    )
