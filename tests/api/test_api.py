"""The Python API: ``lossaudit.audit`` on an in-memory model says what ``lossaudit audit`` says on
the saved file; ``check``, ``compare``; the report's notebook view and folder; typed errors; the
eval data logged as an MLflow dataset input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import lossaudit
from lossaudit.cli import app
from lossaudit.errors import EXIT_BAD_INPUT, EXIT_FINDINGS, AuditFailedError, BadInputError
from tests.api.conftest import IrisCase

pytestmark = pytest.mark.keras


def _findings(findings: Any) -> list[tuple[str, str, str]]:
    return [(f["code"], f["severity"], f["message"]) for f in findings]


def test_in_memory_audit_matches_the_cli_on_the_saved_file(iris_case: IrisCase, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "audit",
            str(iris_case.path),
            "--data",
            str(iris_case.data),
            "--no-gx",
            "--no-log",
            "--reported",
            "accuracy=0.99",
            "--out",
            str(tmp_path / "cli"),
            "--json",
        ],
    )
    cli = json.loads(result.stdout)
    report = lossaudit.audit(iris_case.model, iris_case.x, iris_case.y, gx=False, reported={"accuracy": 0.99})
    api = report.to_dict()
    assert result.exit_code == EXIT_FINDINGS and report.verdict == cli["verdict"] == "fail"
    assert _findings(api["findings"]) == _findings(cli["findings"])
    assert "LA504" in report.codes  # the reported 0.99 is not this model's accuracy
    assert api["metrics"]["values"] == cli["metrics"]["values"]
    assert api["comparisons"] == cli["comparisons"]
    assert api["context"]["data_sha256"] == cli["context"]["data_sha256"]
    assert api["context"]["model_format"] == "in_memory" and cli["context"]["model_format"] == "keras_zip"
    # The saved file through the API is the CLI's audit too.
    from_file = lossaudit.audit(iris_case.path, iris_case.data, gx=False, reported={"accuracy": 0.99})
    assert _findings(from_file.to_dict()["findings"]) == _findings(cli["findings"])


def test_report_renders_inline_and_saves_its_folder(iris_case: IrisCase, tmp_path: Path) -> None:
    report = lossaudit.audit(iris_case.model, iris_case.x, iris_case.y, gx=False)
    assert isinstance(report, lossaudit.AuditReport) and report.passed
    assert report.metrics is not None and report.metrics.values["accuracy"] == pytest.approx(
        float(np.mean(iris_case.model.predict(iris_case.x, verbose=0).argmax(axis=1) == iris_case.y))
    )
    page = report._repr_html_()
    assert page.startswith("<iframe srcdoc=") and "lossaudit PASS" in page
    assert "<script" not in page.lower()
    assert repr(report).startswith("<AuditReport pass: no findings")
    assert "verdict: pass" in str(report)
    files = report.save(tmp_path / "out")
    assert json.loads(files["report.json"].read_text())["verdict"] == "pass"
    assert {"report.html", "report.md", "findings.sarif", "junit.xml"} <= set(files)
    assert report.raise_for_verdict() is report


def test_check_and_compare(iris_case: IrisCase) -> None:
    one_unit_cce = {"units": 1, "activation": "sigmoid", "loss": "categorical_crossentropy"}
    checked = lossaudit.check(one_unit_cce, np.array([0, 1, 1, 0]))
    assert checked.verdict == "fail" and checked.codes == ("LA101",)
    assert lossaudit.check(iris_case.model, iris_case.y).verdict == "pass"
    saved, live = lossaudit.check(iris_case.path).head, lossaudit.check(iris_case.model).head
    assert saved is not None and live is not None
    assert saved.with_changes(source="") == live.with_changes(source="")
    predictions = iris_case.model.predict(iris_case.x, verbose=0)
    compared = lossaudit.compare(iris_case.y, predictions, head=iris_case.model, reported={"accuracy": 0.99})
    assert compared.command == "compare" and "LA504" in compared.codes
    implied = lossaudit.compare(iris_case.y, predictions, reported=["accuracy=0.99"])
    assert implied.head is not None and implied.head.units == 3
    assert [c.status for c in implied.comparisons] == [c.status for c in compared.comparisons]


def test_errors_are_the_clis_typed_exceptions(iris_case: IrisCase) -> None:
    with pytest.raises(BadInputError, match="rows") as bad:
        lossaudit.audit(iris_case.model, iris_case.x[:10], iris_case.y, gx=False)
    assert bad.value.exit_code == EXIT_BAD_INPUT
    with pytest.raises(BadInputError, match="units"):
        lossaudit.check({"activation": "softmax"})
    with pytest.raises(BadInputError, match=r"keras\.Model"):
        lossaudit.audit(object(), iris_case.x, iris_case.y)
    failing = lossaudit.check({"units": 1, "activation": "softmax", "loss": "binary_crossentropy"})
    with pytest.raises(AuditFailedError, match="LA102") as failed:
        failing.raise_for_verdict()
    assert failed.value.exit_code == EXIT_FINDINGS and failed.value.report is failing


def test_log_records_the_eval_data_as_a_dataset_input(iris_case: IrisCase, mlflow_store: str) -> None:
    import mlflow

    with mlflow.start_run() as run:
        inside = lossaudit.audit(iris_case.model, iris_case.x, iris_case.y, gx=False, log=True)
    own = lossaudit.audit(iris_case.path, iris_case.data, gx=False, log=True)
    assert inside.mlflow_run is not None and inside.mlflow_run["run_id"] == run.info.run_id
    assert own.mlflow_run is not None and own.mlflow_run["run_id"] != run.info.run_id
    client = mlflow.MlflowClient()
    for report, source_type in ((inside, "code"), (own, "local")):
        assert report.mlflow_run is not None
        logged = client.get_run(report.mlflow_run["run_id"])
        assert logged.data.tags["lossaudit.verdict"] == "pass"
        (item,) = logged.inputs.dataset_inputs
        assert [t.value for t in item.tags] == ["eval"]
        assert item.dataset.digest == report.context["data_sha256"][:16]
        assert item.dataset.source_type == source_type
        assert json.loads(item.dataset.profile)["targets_shape"] == [150]
    assert "lossaudit/report.json" in [a.path for a in client.list_artifacts(run.info.run_id, "lossaudit")]
