"""``lossaudit rules`` and ``lossaudit explain``: the rule catalogue, and one rule's page.

Light by design (tests/test_imports.py): the catalogue and the text renderer, no numeric library.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from lossaudit.cli.common import JsonOpt, bad_input, guarded
from lossaudit.errors import EXIT_PASS


def rules(as_json: JsonOpt = False) -> None:
    """List the rule catalogue."""

    def body() -> int:
        from lossaudit.core.catalogue import RULES
        from lossaudit.formats.text import render_rule_table

        if as_json:
            doc = {"verdict": "pass", "findings": [], "rules": [r.to_dict() for r in RULES]}
            typer.echo(json.dumps(doc, indent=2))
        else:
            typer.echo(render_rule_table(RULES))
        return EXIT_PASS

    guarded(body)


def explain(
    code: Annotated[str, typer.Argument(help="A rule code (LA101) or name (softmax-on-one-unit).")],
    as_json: JsonOpt = False,
) -> None:
    """Print a rule's page: what it finds, why (with the math), the fix, references."""

    def body() -> int:
        from lossaudit.core.catalogue import find_rule
        from lossaudit.formats.text import render_rule_page

        rule = find_rule(code)
        if rule is None:
            raise bad_input(f"unknown rule {code!r}; `lossaudit rules` lists them")
        if as_json:
            typer.echo(json.dumps({"verdict": "pass", "findings": [], "rule": rule.to_dict()}, indent=2))
        else:
            typer.echo(render_rule_page(rule))
        return EXIT_PASS

    guarded(body)


def register(app: typer.Typer) -> None:
    """Add ``rules`` and ``explain`` to the ``lossaudit`` app."""
    app.command(name="rules")(rules)
    app.command(name="explain")(explain)
