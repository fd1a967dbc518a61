"""The script corpus (tests/scripts/): each seed flagged at its line, the correct scripts passed.

Pure :mod:`ast`: no TensorFlow, no subprocess. ``# expect: LA101`` at the end of a line is the set
of codes that line must get (and no other line may get any): the seeds' programs in our own words,
and the examples shipped in ``examples/scripts/``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

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
