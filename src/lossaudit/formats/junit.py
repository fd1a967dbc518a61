"""JUnit XML of a report, for CI systems that show test results (GitLab, Jenkins, Azure, ...).

One ``<testsuite name="lossaudit">`` inside ``<testsuites>``:

* every catalogue rule that applies to the head's Keras family is a test case; a rule that did not
  fire passes; a rule that fired is one test case per firing, failed when the finding's severity is
  at or above ``report.fail_on`` (the failure message is the finding's message), else passed with
  the finding in ``system-out``;
* every reported-vs-recomputed comparison is a test case too: ``agrees`` passes, ``not_compared``
  is skipped, ``wrong_definition`` and ``unexplained`` fail when their rule (LA503, LA504) is at or
  above ``report.fail_on``.

So the suite fails exactly when the audit's verdict is ``fail`` (or a comparison says so).

ElementTree escapes ``&``, ``<``, ``>`` and quotes (and line breaks in attribute values, as
``&#10;``); every text from the report goes through :func:`clean` first, which makes the
characters XML 1.0 cannot carry (``NUL``, ``ESC``, lone surrogates...) visible escapes, and keeps
line breaks only in element text, never in a test case's name or a property.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lossaudit.core.catalogue import RULES
from lossaudit.core.findings import Finding, Severity
from lossaudit.core.report import AuditReport
from lossaudit.formats.sanitize import printable

if TYPE_CHECKING:
    from lossaudit.core.compare import Comparison

SUITE_NAME = "lossaudit"


def clean(text: object, *, newlines: bool = True) -> str:
    """Report text XML 1.0 can carry: control characters (from a file or label name, say) and
    the other characters :func:`~lossaudit.formats.sanitize.printable` names as escapes; line
    breaks kept when ``newlines`` (message text), else ``\\n`` too (names, properties)."""
    return printable(text, newlines=newlines)


def junit_timestamp(created_at: str) -> str:
    """ISO 8601 in UTC without an offset: the JUnit schema's timestamp has none."""
    try:
        moment = datetime.fromisoformat(created_at)
    except ValueError:
        return created_at
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    attributes = {
        "classname": clean(classname, newlines=False),
        "name": clean(name, newlines=False),
        "time": "0",
    }
    return ET.SubElement(suite, "testcase", attributes)


def _finding_text(finding: Finding) -> str:
    return clean(
        f"{finding.code} {finding.severity.value}: {finding.title}\n{finding.message}\n\nfix:\n{finding.fix}"
    )


def _fails(report: AuditReport, severity: Severity) -> bool:
    return severity.at_least(report.fail_on)


def _comparison_case(suite: ET.Element, report: AuditReport, comp: Comparison) -> str:
    """Add the test case of one comparison; return its outcome (passed, failed, skipped)."""
    case = _case(suite, "lossaudit.comparisons", f"reported {comp.metric} ({comp.source})")
    if comp.status == "not_compared":
        ET.SubElement(case, "skipped", {"message": clean(comp.explanation)})
        return "skipped"
    finding = report.finding_for(comp)
    if finding is not None and _fails(report, finding.severity):
        attributes = {"message": clean(comp.explanation), "type": clean(finding.code, newlines=False)}
        failure = ET.SubElement(case, "failure", attributes)
        failure.text = clean(f"{finding.code} {finding.name}: {comp.explanation}")
        return "failed"
    ET.SubElement(case, "system-out").text = clean(f"[{comp.status}] {comp.explanation}")
    return "passed"


def render_junit(report: AuditReport) -> str:
    """The report as a JUnit XML document (UTF-8 declaration included).

    Parameters
    ----------
    report : AuditReport

    Returns
    -------
    str
        ``failures`` on the suite counts the findings at or above ``report.fail_on`` plus the
        comparisons that fail (see the module docstring).
    """
    suites = ET.Element("testsuites", {"name": SUITE_NAME})
    suite = ET.SubElement(suites, "testsuite", {"name": SUITE_NAME})
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("verdict", report.verdict),
        ("fail_on", report.fail_on.value),
        ("command", report.command),
        ("tool_version", report.tool_version),
        *((k, str(v)) for k, v in report.context.items() if isinstance(v, str | int | float)),
    ):
        ET.SubElement(
            properties,
            "property",
            {"name": clean(key, newlines=False), "value": clean(value, newlines=False)},
        )

    by_code: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_code.setdefault(finding.code, []).append(finding)
    family = report.head.keras_family if report.head is not None else None
    tests = failures = skipped = 0
    listed: set[str] = set()
    for rule in RULES:
        if family is not None and family not in rule.families:
            continue
        listed.add(rule.code)
        classname = f"lossaudit.rules.{rule.stage}"
        fired = by_code.get(rule.code, [])
        if not fired:
            _case(suite, classname, f"{rule.code} {rule.name}")
            tests += 1
            continue
        for number, finding in enumerate(fired, start=1):
            name = f"{rule.code} {rule.name}" + (f" #{number}" if len(fired) > 1 else "")
            tests += 1
            case = _case(suite, classname, name)
            if _fails(report, finding.severity):
                failure = ET.SubElement(
                    case,
                    "failure",
                    {"message": clean(finding.message), "type": clean(finding.code, newlines=False)},
                )
                failure.text = _finding_text(finding)
                failures += 1
            else:
                ET.SubElement(case, "system-out").text = _finding_text(finding)
    # Findings from codes outside the catalogue (none today) still count.
    for code, fired in by_code.items():
        if code in listed:
            continue
        for finding in fired:
            tests += 1
            case = _case(suite, "lossaudit.rules.other", f"{code} {finding.name}")
            if _fails(report, finding.severity):
                ET.SubElement(
                    case, "failure", {"message": clean(finding.message), "type": clean(code, newlines=False)}
                ).text = _finding_text(finding)
                failures += 1
            else:
                ET.SubElement(case, "system-out").text = _finding_text(finding)
    for comp in report.comparisons:
        tests += 1
        outcome = _comparison_case(suite, report, comp)
        failures += outcome == "failed"
        skipped += outcome == "skipped"

    seconds = f"{sum(s.seconds for s in report.stages):.3f}"
    counts = {"tests": str(tests), "failures": str(failures), "errors": "0", "skipped": str(skipped)}
    suite.attrib.update({**counts, "time": seconds, "timestamp": junit_timestamp(report.created_at)})
    suites.attrib.update({**counts, "time": seconds})
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=False).join(
        ('<?xml version="1.0" encoding="UTF-8"?>\n', "\n")
    )
