"""The demo's output: a compact text block per scenario (:func:`render_scenario`) and the
``--json`` document (:func:`demo_document`), with NaN and infinities as null.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from lossaudit.demo.harness import ScenarioResult


def render_scenario(result: ScenarioResult) -> str:
    """A compact text block: per case the findings, reported vs recomputed numbers, retrain."""
    seeds = f" (seeds {', '.join(result.seeds)})" if result.seeds else ""
    mark = "reproduced" if result.reproduced else "NOT REPRODUCED"
    out = [f"== {result.name}{seeds}: {result.title} [{mark}, {result.seconds:.1f} s]"]
    out.append(f"   data: {result.data}; {result.training}")
    for case in result.cases:
        out.append(f"   [{case.label}] {case.description}")
        out.append(f"      source: {case.source}")
        codes = " ".join(case.codes) or "none"
        expected = "" if case.codes_as_expected else f" (expected {' '.join(case.expected_codes) or 'none'})"
        out.append(f"      findings: {codes}{expected}")
        for finding in case.findings:
            out.append(f"        {finding.code} {finding.severity.value}: {finding.title}")
        if case.keras_error:
            out.append(f"      Keras refused: {case.keras_error}")
        if case.keras_reported:
            shown = ", ".join(f"{k} {_num(v)}" for k, v in case.keras_reported.items())
            built = ""
            if case.built_metrics:
                built = " (" + ", ".join(f"{a} = {b}" for a, b in case.built_metrics) + ")"
            out.append(f"      Keras reported: {shown}{built}")
        if case.recomputed:
            shown = ", ".join(f"{k} {_num(v)}" for k, v in case.recomputed.items())
            out.append(f"      recomputed: {shown}")
        for comp in case.comparisons:
            if comp.status != "not_compared":
                out.append(f"      attribution [{comp.status}]: {comp.explanation}")
        for warning in case.keras_warnings[:2]:
            out.append(f"      Keras warned: {_short(warning)}")
        if case.retrain is not None:
            from lossaudit.keras.retrain import describe_fix

            out.append(f"      retrain ({describe_fix(case.retrain.fix)}): {case.retrain.summary}")
        for check in case.checks:
            out.append(f"      {'ok  ' if check.passed else 'FAIL'} {check.description}")
        for note in case.notes:
            out.append(f"      note: {note}")
    for note in result.notes:
        out.append(f"   note: {note}")
    return "\n".join(out)


def _num(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4f}"


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def demo_document(results: Iterable[ScenarioResult], seconds: float) -> dict[str, Any]:
    """The ``--json`` document: verdict, every finding with its scenario, every scenario."""
    items = list(results)
    reproduced = sum(1 for r in items if r.reproduced)
    document: dict[str, Any] = _jsonable(
        {
            "verdict": "pass" if reproduced == len(items) else "fail",
            "reproduced": reproduced,
            "scenarios_run": len(items),
            "seconds": round(seconds, 3),
            "findings": [f for r in items for f in r.findings()],
            "scenarios": [r.to_dict() for r in items],
        }
    )
    return document


def _jsonable(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become null (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)
