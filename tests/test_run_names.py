"""Run names say what was audited and its verdict; a job's note says why its verdict is what it is."""

from __future__ import annotations

from typing import Any

import pytest

from lossaudit.pipeline.runner import EntryOutcome, verdict_explanation
from lossaudit.sinks.mlflow import default_run_name


def _report(verdict: str, findings: list[tuple[str, str]], **context: Any) -> dict[str, Any]:
    return {
        "command": "audit",
        "verdict": verdict,
        "fail_on": "error",
        "findings": [{"code": c, "severity": s} for c, s in findings],
        "context": context,
    }


@pytest.mark.parametrize(
    ("report", "subject", "name"),
    [
        (
            _report("fail", [("LA101", "error"), ("LA402", "warning"), ("LA501", "error")]),
            "audit digits",
            "audit digits: fail LA101,LA501",
        ),
        (
            _report(
                "fail", [("LA101", "error")], mlflow_source={"model_name": "digits", "model_version": "3"}
            ),
            None,
            "audit digits v3: fail LA101",
        ),
        (_report("pass", [("LA402", "warning")], model="models/cce.keras"), None, "audit cce.keras: pass"),
        (
            _report("fail", [(f"LA10{i}", "error") for i in range(1, 6)]),
            "demo x",
            "demo x: fail LA101,LA102,LA103 +2",
        ),
    ],
)
def test_run_name_says_what_was_audited_and_why_it_failed(
    report: dict[str, Any], subject: str | None, name: str
) -> None:
    assert default_run_name(report, subject) == name


def test_warning_codes_name_a_failure_when_fail_on_is_warning() -> None:
    report = _report("fail", [("LA402", "warning"), ("LA901", "info")])
    report["fail_on"] = "warning"
    assert default_run_name(report, "audit m") == "audit m: fail LA402"


def _entry(name: str, verdict: str, codes: tuple[str, ...] = (), **extra: Any) -> EntryOutcome:
    return EntryOutcome(name, verdict, codes, extra=extra)


def test_a_demo_says_it_passes_because_its_models_fail_on_purpose() -> None:
    entries = [
        _entry("one-unit-cce", "pass", ("LA101",), reproduced=True, model_verdict="fail"),
        _entry("bce-softmax", "pass", ("LA103",), reproduced=True, model_verdict="pass"),
    ]
    text = verdict_explanation("demo", entries)
    assert text.startswith(
        "The demo passes: all 2 scenario(s) reproduced their fault, and 1 of the 2 audited models "
        "failed their audit, on purpose"
    )


def test_a_demo_names_the_scenario_that_did_not_reproduce() -> None:
    entries = [_entry("a", "pass", reproduced=True), _entry("b", "fail", reproduced=False)]
    assert verdict_explanation("demo", entries).startswith("The demo fails: b did not reproduce")


def test_an_audit_pipeline_names_its_failed_audits() -> None:
    entries = [_entry("iris", "pass"), _entry("digits", "fail", ("LA101", "LA501"))]
    assert verdict_explanation("audit", entries) == (
        "The pipeline fails: 1 of 2 audit(s) failed: digits (LA101, LA501)."
    )
    assert verdict_explanation("audit", entries[:1]) == "The pipeline passes: all 1 audit(s) passed."


def test_an_entry_that_could_not_run_is_named_with_its_error() -> None:
    entries = [EntryOutcome("x", "error", error="eval data x.npz: no such file", exit_code=2)]
    assert verdict_explanation("audit", entries) == (
        "The pipeline could not run 1 of 1 entries: x: eval data x.npz: no such file"
    )
