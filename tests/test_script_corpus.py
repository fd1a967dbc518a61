"""The script corpus (tests/scripts/): each seed flagged at its line, the correct scripts passed.

Pure :mod:`ast`: no TensorFlow, no subprocess. ``# expect: LA101`` at the end of a line is the set
of codes that line must get (and no other line may get any): the seeds' programs in our own words,
and the examples shipped in ``examples/scripts/``. The README's console example is held to what
the command prints.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lossaudit.cli import app
from lossaudit.core.report import AuditReport
from lossaudit.script.check import check_paths

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).parent / "scripts"
SEEDS = SCRIPTS / "seeds"
CORRECT = SCRIPTS / "correct"
QUIET = SCRIPTS / "quiet"
EXAMPLES = ROOT / "examples" / "scripts"
EXPECT = re.compile(r"#\s*expect:\s*((?:LA\d{3}\s*)+)")


def expected(path: Path) -> set[tuple[int, str]]:
    """(line, code) of every ``# expect:`` marker in a file."""
    out: set[tuple[int, str]] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = EXPECT.search(line)
        if match:
            out.update((number, code) for code in match.group(1).split())
    return out


@cache
def report_of(folder: Path) -> AuditReport:
    return check_paths([folder])


def found(report: AuditReport, path: Path) -> set[tuple[int, str]]:
    out = set()
    for finding in report.findings:
        assert finding.location is not None
        if Path(finding.location.path).resolve() == path.resolve():
            out.add((finding.location.line, finding.code))
    return out


def models_in(report: AuditReport, path: Path) -> int:
    return sum(1 for m in report.context["models"] if Path(m["path"]).resolve() == path.resolve())


SEED_FILES = sorted(SEEDS.glob("*.py"))
CORRECT_FILES = sorted(p for p in CORRECT.iterdir() if p.suffix in (".py", ".ipynb"))
QUIET_FILES = sorted(QUIET.glob("*.py"))
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.py"))


def test_every_seed_has_its_program() -> None:
    """One script per seed question, named by the seed's number."""
    assert [p.name[:7] for p in SEED_FILES] == [f"seed{i:03d}" for i in range(5)]


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.stem)
def test_seed_is_flagged_at_its_line(path: Path) -> None:
    wanted = expected(path)
    assert wanted, f"{path.name} has no # expect: marker"
    assert found(report_of(SEEDS), path) == wanted


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_is_flagged_where_it_says(path: Path) -> None:
    assert found(report_of(EXAMPLES), path) == expected(path)


def test_the_corpus_is_large_enough() -> None:
    assert len(CORRECT_FILES) >= 30
    assert any(p.suffix == ".ipynb" for p in CORRECT_FILES)


@pytest.mark.parametrize("path", CORRECT_FILES, ids=lambda p: p.stem)
def test_correct_script_passes_and_is_judged(path: Path) -> None:
    report = report_of(CORRECT)
    assert found(report, path) == set()
    assert models_in(report, path) >= 1, f"no model of {path.name} was judged: the test would be vacuous"


def test_correct_scripts_all_parse() -> None:
    report = report_of(CORRECT)
    assert report.context["not_parsed"] == []
    assert report.context["files"] == len(CORRECT_FILES)
    assert report.verdict == "pass" and report.findings == ()


@pytest.mark.parametrize("path", QUIET_FILES, ids=lambda p: p.stem)
def test_unknown_facts_make_no_finding(path: Path) -> None:
    assert found(report_of(QUIET), path) == set()


def test_seed_findings_carry_the_fix_as_code_for_their_line() -> None:
    for finding in report_of(SEEDS).findings:
        assert finding.location is not None
        assert finding.suggestions, finding.code
        first = finding.suggestions[0]
        assert first.first_line == finding.location.line


def test_the_examples_folder_flags_only_its_deliberate_faults() -> None:
    """``lossaudit check examples/`` (the acceptance command): the marked lines of
    ``examples/scripts/`` and python_api.py's compile, which builds the seeds' 1-unit categorical
    cross-entropy on purpose for AuditCallback to stop; nothing else."""
    folder = ROOT / "examples"
    report = check_paths([folder])
    assert report.context["not_parsed"] == []
    api = folder / "python_api.py"
    [api_line] = [
        number
        for number, text in enumerate(api.read_text(encoding="utf-8").splitlines(), start=1)
        if ".compile(" in text and 'loss="categorical_crossentropy"' in text
    ]
    wanted = {(p.name, line, code) for p in EXAMPLE_FILES for line, code in expected(p)}
    wanted.add((api.name, api_line, "LA101"))
    got = set()
    for f in report.findings:
        assert f.location is not None
        got.add((Path(f.location.path).name, f.location.line, f.code))
    assert got == wanted
    assert report.verdict == "fail"


README_CONSOLE = re.compile(r"```console\n\$ lossaudit check (\S+)\n(.*?)\$ echo \$\?\n(\d+)\n```", re.S)


def test_readme_console_example_is_what_the_command_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [(path, printed, code)] = README_CONSOLE.findall(readme)
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["check", path], catch_exceptions=False)
    assert result.stdout == printed
    assert result.exit_code == int(code)
