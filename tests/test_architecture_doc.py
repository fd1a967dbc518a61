"""docs/architecture.md's "Add a rule" recipe, followed literally, adds a working rule.

The recipe's code blocks are applied, as written, to a copy of the package and of the rule tests
in a temporary folder: the check and its ``Rule`` into ``core/catalogue.py`` (the rule in code
order), the cases into ``tests/test_rules.py`` and ``tests/test_script_rules.py``; docs/rules.md
is regenerated with the command the recipe gives; then the two test files run there. A recipe
that forgets a file the tests need, or whose code no longer fits the catalogue, fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def _recipe() -> tuple[str, list[str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Add a rule", 1)[1].split("\n## ", 1)[0]
    blocks = [
        re.sub(r"^   ", "", b, flags=re.MULTILINE) for b in re.findall(r"```python\n(.*?)```", section, re.S)
    ]
    return section, blocks


def _insert_after_opening(text: str, opening: str, block: str, indent: str) -> str:
    assert text.count(opening) == 1, opening
    body = "".join(f"{indent}{line}\n" if line else "\n" for line in block.rstrip().split("\n"))
    return text.replace(opening, opening + body, 1)


def test_the_recipe_names_every_file_it_touches() -> None:
    section, blocks = _recipe()
    for path in (
        "src/lossaudit/core/catalogue.py",
        "tests/test_rules.py",
        "tests/test_script_rules.py",
        "python -m lossaudit.formats.ruledoc --output docs/rules.md",
    ):
        assert path in section
    assert len(blocks) == 6, "check, Rule, FIRING and QUIET cases for test_rules and test_script_rules"


@pytest.mark.slow
def test_add_a_rule_followed_literally(tmp_path: Path) -> None:
    _, (check, rule, firing, quiet, script_firing, script_quiet) = _recipe()
    code = re.search(r'code="(LA\d{3})"', rule)
    assert code is not None
    new_code = code.group(1)
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tests").mkdir()
    for name in ("__init__.py", "conftest.py", "test_rules.py", "test_script_rules.py"):
        shutil.copy(ROOT / "tests" / name, tmp_path / "tests" / name)
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")

    catalogue = tmp_path / "src" / "lossaudit" / "core" / "catalogue.py"
    text = catalogue.read_text(encoding="utf-8")
    assert f'code="{new_code}"' not in text, f"{new_code} is taken: the recipe's example needs a free code"
    # The check before the first rule function of the next family; the Rule before the first
    # entry with a higher code, in code order.
    first_check = re.search(r"^def _\w+\(facts: AuditFacts\)", text, re.MULTILINE)
    assert first_check is not None
    text = text[: first_check.start()] + check.rstrip() + "\n\n\n" + text[first_check.start() :]
    later = [
        m
        for m in re.finditer(r'^    Rule\(\n        code="(LA\d{3})"', text, re.MULTILINE)
        if m.group(1) > new_code
    ]
    assert later, "no rule after the new one"
    text = text[: later[0].start()] + rule.rstrip("\n") + "\n" + text[later[0].start() :]
    catalogue.write_text(text, encoding="utf-8")

    rules = tmp_path / "tests" / "test_rules.py"
    text = rules.read_text(encoding="utf-8")
    text = _insert_after_opening(
        text, "FIRING: dict[str, list[tuple[str, Case, set[str]]]] = {\n", firing, "    "
    )
    text = _insert_after_opening(text, "QUIET: dict[str, list[tuple[str, Case]]] = {\n", quiet, "    ")
    rules.write_text(text, encoding="utf-8")
    scripts = tmp_path / "tests" / "test_script_rules.py"
    text = scripts.read_text(encoding="utf-8")
    text = _insert_after_opening(text, "FIRING: dict[str, Case] = {\n", script_firing, "    ")
    text = _insert_after_opening(text, "QUIET: dict[str, Case] = {\n", script_quiet, "    ")
    scripts.write_text(text, encoding="utf-8")

    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    subprocess.run(
        [sys.executable, "-m", "lossaudit.formats.ruledoc", "--output", "docs/rules.md"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    assert new_code in (tmp_path / "docs" / "rules.md").read_text(encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-x",
            "tests/test_rules.py",
            "tests/test_script_rules.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    # The new rule's own cases ran, in both files.
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-k",
            new_code,
            "tests",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    assert f"test_rules.py::test_rule_fires[{new_code}-" in listed
    assert f"test_script_rules.py::test_rule_fires_at_its_line[{new_code}]" in listed
