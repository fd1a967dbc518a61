"""Report formats and the local report folder, on reports built by the real audit core.

The fixtures audit hand-made predictions whose numbers are known exactly: 12 samples, 3 classes,
9 predicted right (argmax accuracy 0.75, elementwise binary accuracy at 0.5 = 30/36 = 0.8333),
confusion matrix rows (3, 1, 0), (0, 3, 1), (1, 0, 3).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from lossaudit.core.audit import audit_predictions, check
from lossaudit.core.catalogue import RULES
from lossaudit.core.compare import ReportedMetric
from lossaudit.core.findings import Severity
from lossaudit.core.head import HeadSpec
from lossaudit.core.report import AuditReport, StageResult
from lossaudit.errors import BadInputError
from lossaudit.formats import plots
from lossaudit.formats.html import render_html
from lossaudit.formats.junit import render_junit
from lossaudit.formats.markdown import cell, render_markdown
from lossaudit.formats.plots import PNG_SIGNATURE, comparison_chart_png, confusion_matrix_png
from lossaudit.formats.sarif import DEFAULT_ARTIFACT_URI, FINGERPRINT_KEY, pascal_case, render_sarif
from lossaudit.sinks import local
from lossaudit.sinks.local import ALL_FILES, GX_DOCS_DIR, GX_RESULT_JSON, write_report_folder

SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
CHROMIUM = Path("/usr/bin/chromium")
Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
PREDICTED = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 0, 2])
CONFUSION = ((3, 1, 0), (0, 3, 1), (1, 0, 3))
BCE_SOFTMAX = HeadSpec.from_values(
    units=3, activation="softmax", loss="binary_crossentropy", metrics=("accuracy",)
)
SPARSE_SOFTMAX = HeadSpec.from_values(
    units=3, activation="softmax", loss="sparse_categorical_crossentropy", metrics=("accuracy",)
)
# Multi-label: 6 samples, 3 labels; per label (tn, fp, fn, tp) = (3,0,1,2), (3,0,0,3), (2,1,1,2).
Y_MULTI = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1]])
PRED_MULTI = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, 1], [0, 0, 0], [0, 1, 1]])
MULTI_CONFUSION = ((3, 0, 1, 2), (3, 0, 0, 3), (2, 1, 1, 2))
STAGES = (
    StageResult("labels", 0.012, "ok", "index labels, K = 3"),
    StageResult("compatibility", 0.004, "ok", "2 findings"),
    StageResult("recompute", 0.25, "ok", "scikit-learn"),
    StageResult("retrain", 3.5, "ok", "10 epochs"),
)
RETRAIN_SUMMARY = "sparse_categorical_crossentropy: argmax accuracy 0.7500 -> 0.9167 after 10 epochs"


def probabilities(predicted: np.ndarray, k: int = 3) -> np.ndarray:
    """0.6 on the predicted class, 0.2 elsewhere: argmax and 0.5-thresholding agree on it."""
    out = np.full((len(predicted), k), 0.2)
    out[np.arange(len(predicted)), predicted] = 0.6
    return out


def failing_report(fail_on: Severity = Severity.ERROR, **context: Any) -> AuditReport:
    reported = [
        ReportedMetric.parse("accuracy=0.8333", "keras"),
        ReportedMetric.parse("val_loss=0.31", "keras"),
        ReportedMetric.parse("f1_macro=0.5", "mlflow"),
    ]
    ctx = {"model": "models/iris_bce.keras", "retrain": {"summary": RETRAIN_SUMMARY, "epochs": 10}}
    ctx.update(context)
    return audit_predictions(
        BCE_SOFTMAX, Y, probabilities(PREDICTED), reported, fail_on=fail_on, context=ctx, stages=STAGES
    )


@pytest.fixture(scope="module")
def report() -> AuditReport:
    return failing_report()


@pytest.fixture(scope="module")
def passing_report() -> AuditReport:
    reported = [ReportedMetric.parse("accuracy=0.75", "keras")]
    return audit_predictions(
        SPARSE_SOFTMAX, Y, probabilities(PREDICTED), reported, context={"model": "m.keras"}
    )


@pytest.fixture(scope="module")
def multilabel_report() -> AuditReport:
    head = HeadSpec.from_values(
        units=3, activation="sigmoid", loss="binary_crossentropy", metrics=("accuracy",)
    )
    scores = np.where(PRED_MULTI == 1, 0.8, 0.1)
    return audit_predictions(head, Y_MULTI, scores, [ReportedMetric.parse("accuracy=0.8333", "keras")])


def test_fixture_reports_have_the_expected_findings_and_numbers(
    report: AuditReport, passing_report: AuditReport, multilabel_report: AuditReport
) -> None:
    assert [(f.code, f.severity) for f in report.findings] == [
        ("LA103", Severity.WARNING),
        ("LA203", Severity.ERROR),
        ("LA503", Severity.ERROR),
        ("LA504", Severity.WARNING),
    ]
    assert report.verdict == "fail"
    assert report.metrics is not None and report.metrics.confusion_matrix == CONFUSION
    assert report.metrics.values["accuracy"] == pytest.approx(0.75)
    assert [c.status for c in report.comparisons] == ["wrong_definition", "not_compared", "unexplained"]
    assert passing_report.verdict == "pass" and passing_report.findings == ()
    assert multilabel_report.metrics is not None
    assert multilabel_report.metrics.confusion_matrix == MULTI_CONFUSION
    assert multilabel_report.codes == ("LA402",)


# --- Markdown ---------------------------------------------------------------------------------


def test_markdown_has_verdict_findings_numbers_stages_and_retrain(report: AuditReport) -> None:
    md = render_markdown(report)
    assert md.startswith("## lossaudit compare: `models/iris_bce.keras`\n")
    assert "**❌ FAIL** — 2 error, 2 warning, 0 info; fails at `error` or above" in md
    for code in ("LA103", "LA203", "LA503", "LA504"):
        assert f"| `{code}` |" in md
    assert "| `accuracy` | 0.7500 | argmax of the outputs vs label (sklearn accuracy_score) |" in md
    assert "| `accuracy` | keras | 0.8333 | 0.7500 (argmax accuracy) | +0.0833 | ❌ wrong definition |" in md
    assert "| `val_loss` | keras | 0.3100 |  |  | ➖ not compared |" in md
    assert "| **0** | 3 | 1 | 0 |" in md and "| **2** | 1 | 0 | 3 |" in md
    assert "| retrain | ok | 3.50 | 10 epochs |" in md
    assert "| **total** |  | **3.77** |  |" in md
    assert RETRAIN_SUMMARY.replace(">", "&gt;") in md  # no raw ">" or "<" from report text
    assert "- **Labels:** index, shape \\[12\\], K = 3, counts \\[4, 4, 4\\]" in md
    assert "<details><summary><code>LA203</code>" in md
    assert md.endswith("\n")


def test_markdown_passing_report_says_pass(passing_report: AuditReport) -> None:
    md = render_markdown(passing_report)
    assert "**✅ PASS** — 0 error, 0 warning, 0 info" in md
    assert "No findings." in md
    assert "✅ agrees" in md


def test_markdown_multilabel_confusion_is_k_rows_of_four(multilabel_report: AuditReport) -> None:
    md = render_markdown(multilabel_report)
    assert "| label | tn | fp | fn | tp |" in md
    assert "| **label 0** | 3 | 0 | 1 | 2 |" in md
    assert "| **label 2** | 2 | 1 | 1 | 2 |" in md
    # 0.8333 reported vs 5/6 recomputed: a difference that rounds to zero carries no minus sign
    assert "| +0.0000 | ✅ agrees |" in md


def test_markdown_cell_escapes_pipes_newlines_and_tags() -> None:
    assert cell("a|b\nc <d>") == "a\\|b<br>c &lt;d&gt;"
    assert cell(None) == ""


# --- SARIF --------------------------------------------------------------------------------------


def sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    validator_class = jsonschema.validators.validator_for(schema)
    assert validator_class is jsonschema.Draft4Validator
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


@pytest.mark.parametrize("which", ["report", "passing_report", "multilabel_report"])
def test_sarif_validates_against_the_official_schema(which: str, request: pytest.FixtureRequest) -> None:
    audit: AuditReport = request.getfixturevalue(which)
    log = json.loads(json.dumps(render_sarif(audit)))  # what lands in findings.sarif
    errors = [e.message for e in sarif_validator().iter_errors(log)]
    assert errors == []
    assert log["version"] == "2.1.0"
    assert len(log["runs"][0]["results"]) == len(audit.findings)


def test_sarif_driver_rules_and_results(report: AuditReport, tmp_path: Path) -> None:
    log = render_sarif(report, repo_root=tmp_path)
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "lossaudit"
    assert driver["version"] == report.tool_version
    assert driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == [r.code for r in RULES]
    la101 = driver["rules"][0]
    assert la101["name"] == "CategoricalCrossentropyOnOneUnit"
    assert la101["shortDescription"]["text"] == RULES[0].title
    assert la101["fullDescription"]["text"] == RULES[0].why
    assert la101["help"]["text"] == RULES[0].fix
    assert la101["defaultConfiguration"]["level"] == "error"
    assert la101["properties"]["families"] == ["keras3", "tf_keras", "legacy"]
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in driver["rules"]}
    assert levels["LA103"] == "warning" and levels["LA305"] == "error"

    results = log["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("LA103", "warning"),
        ("LA203", "error"),
        ("LA503", "error"),
        ("LA504", "warning"),
    ]
    for result, finding in zip(results, report.findings, strict=True):
        assert result["message"]["text"] == finding.message
        assert driver["rules"][result["ruleIndex"]]["id"] == finding.code
        location = result["locations"][0]["physicalLocation"]
        assert location["region"] == {"startLine": 1}
    assert results[2]["properties"]["evidence"]["correct_value"] == pytest.approx(0.75)


def test_sarif_fingerprints_are_stable_and_distinct(report: AuditReport) -> None:
    first = [r["partialFingerprints"][FINGERPRINT_KEY] for r in render_sarif(report)["runs"][0]["results"]]
    again = failing_report()  # a new audit of the same model: same fingerprints
    second = [r["partialFingerprints"][FINGERPRINT_KEY] for r in render_sarif(again)["runs"][0]["results"]]
    assert first == second
    assert len(set(first)) == len(first)
    assert all(re.fullmatch(r"[0-9a-f]{64}", f) for f in first)


def _uri(log: dict[str, Any]) -> dict[str, str]:
    location: dict[str, str] = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
        "artifactLocation"
    ]
    return location


def test_sarif_location_is_the_model_file_relative_to_the_repo(tmp_path: Path) -> None:
    model = tmp_path / "models" / "my model.keras"
    audit = failing_report(model=str(model))
    assert _uri(render_sarif(audit, repo_root=tmp_path)) == {
        "uri": "models/my%20model.keras",
        "uriBaseId": "%SRCROOT%",
    }
    outside = _uri(render_sarif(audit, repo_root=tmp_path / "elsewhere"))
    assert outside == {"uri": model.as_uri()}


def test_sarif_location_falls_back_to_the_callers_uri_then_a_pseudo_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    registry = failing_report(model="models:/churn/3")
    assert _uri(render_sarif(registry, "pipelines/audit.yaml", repo_root=tmp_path))["uri"] == (
        "pipelines/audit.yaml"
    )
    assert _uri(render_sarif(registry, repo_root=tmp_path))["uri"] == "models/churn/3"
    bare = audit_predictions(BCE_SOFTMAX, Y, probabilities(PREDICTED))
    assert _uri(render_sarif(bare, repo_root=tmp_path))["uri"] == DEFAULT_ARTIFACT_URI
    labels = failing_report(model=None, labels_file=str(tmp_path / "data" / "y.npy"))
    assert _uri(render_sarif(labels, repo_root=tmp_path))["uri"] == "data/y.npy"
    # relative to the cwd and inside the root, or relative as typed when the cwd is elsewhere
    assert _uri(render_sarif(failing_report(model="m/a.keras"), repo_root=tmp_path))["uri"] == "m/a.keras"
    assert _uri(render_sarif(failing_report(model="m/a.keras"), repo_root=tmp_path / "x"))["uri"] == (
        "m/a.keras"
    )
    above = _uri(render_sarif(failing_report(model="../a.keras"), repo_root=tmp_path))
    assert above == {"uri": (tmp_path.parent / "a.keras").as_uri()}


def test_sarif_category_sets_automation_details(report: AuditReport) -> None:
    log = render_sarif(report, category="iris")
    assert log["runs"][0]["automationDetails"] == {"id": "lossaudit/iris/"}


def test_pascal_case() -> None:
    assert pascal_case("label-index-out-of-range") == "LabelIndexOutOfRange"
    assert pascal_case("already_Pascal") == "AlreadyPascal"


# --- JUnit --------------------------------------------------------------------------------------

APPLICABLE_KERAS3 = sum(1 for r in RULES if "keras3" in [f.value for f in r.families])


def _suite(xml_text: str) -> ET.Element:
    root = ET.fromstring(xml_text.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "lossaudit"
    return suites[0]


def test_junit_counts_failures_at_or_above_fail_on(report: AuditReport) -> None:
    suite = _suite(render_junit(report))
    cases = suite.findall("testcase")
    # every keras3 rule once (each fired at most once here) + 3 comparisons
    assert len(cases) == APPLICABLE_KERAS3 + 3 == int(suite.get("tests", "-1"))
    failed = [c for c in cases if c.find("failure") is not None]
    # LA203 and LA503 (errors) + the accuracy comparison judged by LA503
    assert [c.get("name") for c in failed] == [
        "LA203 label-width-mismatch",
        "LA503 reported-metric-wrong-definition",
        "reported accuracy (keras)",
    ]
    assert suite.get("failures") == "3" and suite.get("errors") == "0" and suite.get("skipped") == "1"
    la203 = failed[0].find("failure")
    assert la203 is not None and la203.get("message") == report.findings[1].message
    la103 = next(c for c in cases if c.get("name", "").startswith("LA103"))
    out = la103.find("system-out")
    assert out is not None and out.text is not None and "LA103 warning" in out.text
    skipped = next(c for c in cases if c.get("name") == "reported val_loss (keras)")
    assert skipped.find("skipped") is not None
    assert suite.get("time") == "3.766"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp", ""))


def test_junit_fail_on_warning_fails_warnings_too() -> None:
    suite = _suite(render_junit(failing_report(fail_on=Severity.WARNING)))
    assert suite.get("failures") == "6"  # 4 findings + accuracy and f1_macro comparisons


def test_junit_passing_report_has_no_failures(passing_report: AuditReport) -> None:
    suite = _suite(render_junit(passing_report))
    assert suite.get("failures") == "0"
    assert int(suite.get("tests", "0")) == APPLICABLE_KERAS3 + 1


def test_junit_repeated_rule_is_one_case_per_firing() -> None:
    reported = [ReportedMetric.parse("f1_macro=0.5", "a"), ReportedMetric.parse("precision_macro=0.1", "b")]
    audit = audit_predictions(SPARSE_SOFTMAX, Y, probabilities(PREDICTED), reported, fail_on=Severity.WARNING)
    assert audit.codes == ("LA504",)
    suite = _suite(render_junit(audit))
    names = [c.get("name") for c in suite.findall("testcase")]
    assert "LA504 reported-metric-unexplained #1" in names and "LA504 reported-metric-unexplained #2" in names
    assert suite.get("failures") == "4"


def test_junit_is_valid_xml_with_control_characters_in_context() -> None:
    audit = failing_report(model="bad\x01name<&>.keras")
    suite = _suite(render_junit(audit))
    values = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert values["model"] == "bad\\x01name<&>.keras"  # the control character shown, not dropped


# --- HTML ---------------------------------------------------------------------------------------


def _cm_counts(page: str) -> list[int]:
    return [int(v) for v in re.findall(r'<td class="cm[^"]*" data-count="(\d+)"', page)]


def test_html_is_self_contained_with_matrix_chart_and_png(report: AuditReport) -> None:
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert 'id="confusion-matrix"' in page
    assert _cm_counts(page) == [v for row in CONFUSION for v in row]
    assert 'id="comparison-chart"' in page
    assert len(re.findall(r'<rect class="bar"', page)) == 4  # accuracy and f1_macro, two bars each
    assert "data:image/png;base64," in page
    # nothing is fetched: no script, stylesheet link, remote src or CSS url()
    assert "<script" not in page and "<link" not in page and "url(" not in page
    sources = re.findall(r"\ssrc\s*=\s*(\S{0,12})", page)
    assert sources == ['"data:image/']
    assert not re.search(r"https?://", page)
    retrain = RETRAIN_SUMMARY.replace(">", "&gt;")
    for text in ("LA203", "0.8333", "0.7500", "+0.0833", "wrong definition", retrain, "3.50"):
        assert text in page


def test_html_escapes_report_text() -> None:
    page = render_html(failing_report(model="<script>alert(1)</script>"))
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_multilabel_matrix_is_k_rows_of_tn_fp_fn_tp(multilabel_report: AuditReport) -> None:
    page = render_html(multilabel_report)
    header = re.search(r'<table class="confusion".*?</thead>', page)
    assert header is not None
    assert re.findall(r'<th class="num">(\w+)</th>', header.group(0)) == ["tn", "fp", "fn", "tp"]
    assert _cm_counts(page) == [v for row in MULTI_CONFUSION for v in row]
    assert "Confusion per label" in page


def test_html_without_matplotlib_keeps_the_table(
    report: AuditReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert confusion_matrix_png(report) is None and comparison_chart_png(report) is None
    page = render_html(report)
    assert 'id="confusion-matrix"' in page and "data:image/png" not in page


def test_html_shows_a_very_wide_matrix_as_png_only() -> None:
    k = 70
    y = np.arange(2 * k) % k
    head = HeadSpec.from_values(units=k, activation="softmax", loss="sparse_categorical_crossentropy")
    page = render_html(audit_predictions(head, y, np.eye(k)[y] * 0.9 + 0.1 / k))
    assert 'id="confusion-matrix"' not in page
    assert "70 x 70: too large for a table; see confusion_matrix.png." in page
    assert 'id="confusion-png"' in page


# --- PNG ----------------------------------------------------------------------------------------


def test_pngs_have_the_png_signature(report: AuditReport, multilabel_report: AuditReport) -> None:
    for png in (
        confusion_matrix_png(report),
        comparison_chart_png(report),
        confusion_matrix_png(multilabel_report),
    ):
        assert png is not None and png.startswith(PNG_SIGNATURE) and len(png) > 2000
    assert confusion_matrix_png(report) == confusion_matrix_png(report)  # deterministic bytes


def _bar(metric: str, source: str, reported: float, recomputed: float) -> plots.ComparisonBar:
    return plots.ComparisonBar(metric, source, reported, recomputed, "argmax accuracy", "wrong_definition")


COMPARISON_CHARTS = {
    "seed-gap": [_bar("accuracy", "tf-keras graph-mode evaluate", 0.9943, 0.9741)],
    "equal": [_bar("accuracy", "keras", 0.75, 0.75)],
    "a-hair-apart": [_bar("accuracy", "keras", 0.75, 0.7501), _bar("precision", "keras", 0.7502, 0.75)],
    "far-apart-rows": [
        _bar("accuracy", "keras", 0.99, 0.97),
        _bar("loss", "keras", 2.3, 0.05),
        _bar("auc", "keras", 0.5, 0.51),
    ],
    "eight-long-names": [
        _bar(f"metric_{i}", "a source name " * 6, 0.1 * i, 0.1 * i + 0.02) for i in range(8)
    ],
    "one-unbroken-word": [_bar("accuracy", "x" * 150, 0.0, 1.0)],
}


@pytest.mark.parametrize("bars", list(COMPARISON_CHARTS.values()), ids=list(COMPARISON_CHARTS))
def test_comparison_chart_labels_never_overlap_and_stay_in_the_picture(
    bars: list[plots.ComparisonBar],
) -> None:
    from itertools import combinations

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = plots.comparison_figure(bars)
    FigureCanvasAgg(figure).draw()
    renderer = figure.canvas.get_renderer()
    (ax,) = figure.axes
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticklabels() if t.get_text() and low <= t.get_position()[0] <= high]
    texts = [
        *ax.texts,  # the values above and below their dots, the differences and their header
        *ax.get_yticklabels(),
        *ticks,
        *figure.legends[0].get_texts(),
        ax.title,
        ax.xaxis.label,
    ]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_visible() and t.get_text()]
    assert len(boxes) >= 4 * len(bars) + 5
    overlapping = [(a, b) for (a, box_a), (b, box_b) in combinations(boxes, 2) if box_a.overlaps(box_b)]
    assert overlapping == []
    page = figure.bbox
    outside = [
        t for t, box in boxes if box.x0 < page.x0 or box.x1 > page.x1 or box.y0 < page.y0 or box.y1 > page.y1
    ]
    assert outside == []
    # Each row's two dots: both inside the axis, the gap between them drawn to scale.
    for bar in bars:
        assert low < min(bar.reported, bar.recomputed) and max(bar.reported, bar.recomputed) < high


def test_the_comparison_axis_shows_a_small_gap() -> None:
    """0.9943 vs 0.9741 (the seed's numbers) on an axis from 0 would be 2% of its width apart."""
    (bar,) = COMPARISON_CHARTS["seed-gap"]
    low, high = plots.comparison_figure([bar]).axes[0].get_xlim()
    assert (bar.reported - bar.recomputed) / (high - low) > 0.4


def test_no_png_without_numbers() -> None:
    static = check(BCE_SOFTMAX, Y)
    assert static.metrics is None
    assert confusion_matrix_png(static) is None and comparison_chart_png(static) is None
    assert plots.comparison_bars(static) == []


def test_comparison_bars_use_the_definition_the_task_needs(report: AuditReport) -> None:
    bars = plots.comparison_bars(report)
    assert [(b.metric, b.reported, b.status) for b in bars] == [
        ("accuracy", 0.8333, "wrong_definition"),
        ("f1_macro", 0.5, "unexplained"),
    ]
    assert bars[0].recomputed == pytest.approx(0.75) and bars[0].recomputed_label == "argmax accuracy"
    assert bars[1].recomputed == pytest.approx(0.75)


# --- local report folder ------------------------------------------------------------------------


def test_write_report_folder_writes_every_file(report: AuditReport, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "iris"
    written = write_report_folder(report, out)
    rendered = [name for name in ALL_FILES if name != GX_RESULT_JSON]  # no attachment given
    assert list(written) == rendered
    assert list(written)[-1] == "report.json"  # written last: its presence means complete
    assert sorted(p.name for p in out.iterdir()) == sorted(rendered)
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report.to_dict()
    assert (out / "confusion_matrix.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (out / "comparison.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (out / "report.md").read_text(encoding="utf-8") == render_markdown(report)
    _suite((out / "junit.xml").read_text(encoding="utf-8"))
    errors = list(sarif_validator().iter_errors(json.loads((out / "findings.sarif").read_text("utf-8"))))
    assert errors == []


def test_attachments_land_before_report_json_and_are_replaced_next_time(
    report: AuditReport, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    (docs / "validations").mkdir(parents=True)
    (docs / "index.html").write_text("<html>data docs</html>")
    (docs / "validations" / "v.html").write_text("<html>one validation</html>")
    out = tmp_path / "out"
    written = write_report_folder(
        report, out, attachments={GX_RESULT_JSON: b'{"success": true}'}, attached_dirs={GX_DOCS_DIR: docs}
    )
    names = list(written)
    assert names[-1] == "report.json"
    assert names.index(GX_RESULT_JSON) < names.index("report.json")
    assert (out / GX_RESULT_JSON).read_bytes() == b'{"success": true}'
    assert (out / GX_DOCS_DIR / "validations" / "v.html").read_text() == "<html>one validation</html>"
    # A later audit without Great Expectations leaves none of the earlier one's files behind.
    write_report_folder(report, out)
    assert not (out / GX_RESULT_JSON).exists()
    assert not (out / GX_DOCS_DIR).exists()


def test_write_report_folder_removes_files_of_an_earlier_audit(report: AuditReport, tmp_path: Path) -> None:
    write_report_folder(report, tmp_path)
    written = write_report_folder(check(BCE_SOFTMAX, Y), tmp_path)
    assert "confusion_matrix.png" not in written and "comparison.png" not in written
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["report.md", "report.html", "findings.sarif", "junit.xml", "report.json"]
    )


def test_write_report_folder_refuses_a_file_or_an_impossible_folder(
    report: AuditReport, tmp_path: Path
) -> None:
    a_file = tmp_path / "report"
    a_file.write_text("x")
    with pytest.raises(BadInputError, match=r"^report folder .*report exists and is not a folder$"):
        write_report_folder(report, a_file)
    with pytest.raises(BadInputError, match=r"^cannot create report folder .*report/sub: ") as info:
        write_report_folder(report, a_file / "sub")
    assert "\n" not in str(info.value)


def test_interrupted_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.md"
    target.write_text("old complete file")

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(local.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        local.write_atomic(target, b"new")
    assert target.read_text() == "old complete file"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_local_sink_imports_neither_tensorflow_nor_mlflow(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from lossaudit.core.audit import audit_predictions\n"
        "from lossaudit.core.head import HeadSpec\n"
        "from lossaudit.sinks.local import write_report_folder\n"
        "head = HeadSpec.from_values(units=3, activation='softmax', loss='categorical_crossentropy')\n"
        "r = audit_predictions(head, np.eye(3)[[0, 1, 2, 1]], np.eye(3)[[0, 1, 2, 2]] * 0.8 + 0.066)\n"
        f"print(sorted(write_report_folder(r, {str(tmp_path)!r})))\n"
        "print([m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines()[-1] == "[]"
    assert "report.json" in done.stdout


# --- the HTML page in a real browser ------------------------------------------------------------


def _chromium(*args: str, profile: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless check needs Debian's chromium at /usr/bin/chromium"
)
def test_report_html_renders_in_headless_chromium(report: AuditReport, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    write_report_folder(report, folder)
    page = (folder / "report.html").resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="lossaudit-chromium-")
    try:
        dom = _chromium("--dump-dom", page, profile=profile)
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert 'id="confusion-matrix"' in dom.stdout
        assert _cm_counts(dom.stdout) == [v for row in CONFUSION for v in row]
        assert 'id="comparison-chart"' in dom.stdout and 'class="bar"' in dom.stdout
        assert 'id="confusion-png"' in dom.stdout
        shot = tmp_path / "report.png"
        done = _chromium(f"--screenshot={shot}", "--window-size=1200,1600", page, profile=profile)
        assert done.returncode == 0, done.stderr[-2000:]
        assert shot.read_bytes().startswith(PNG_SIGNATURE) and shot.stat().st_size > 20_000
        if os.environ.get("LOSSAUDIT_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["LOSSAUDIT_KEEP_SCREENSHOT"])
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_html_page_is_a_jinja2_template_with_autoescape_shipped_as_package_data() -> None:
    import tomllib
    from importlib.resources import files

    from lossaudit.formats import html as html_format

    env = html_format._environment()
    assert env.autoescape is True
    templates = files("lossaudit.formats").joinpath("templates")
    assert templates.joinpath("report.html.j2").is_file() and templates.joinpath("report.css").is_file()
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["lossaudit"]
    assert {"**/*.j2", "**/*.css"} <= set(shipped)
    assert "jinja2" in " ".join(pyproject["project"]["dependencies"]).lower()
    # a value that looks like markup stays text
    page = render_html(failing_report(model='"><b onmouseover=x>'))
    assert "<b onmouseover" not in page and "&lt;b onmouseover=x&gt;" in page
