"""``mlflow run . -e audit`` end to end: the project run carries the outcome (``check`` and
``registry``: ``test_mlproject_check.py``).

`mlflow run` exits 1 for any failure; the project run it opened is tagged ``lossaudit.verdict``,
``lossaudit.codes`` and ``lossaudit.exit_code`` and carries the report folder. Each `mlflow run`
starts in ``tmp_path`` against the test's own SQLite store, in an experiment whose artifacts live
in ``tmp_path`` too; the project folder is the repository itself (``--env-manager local``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.mlflow.test_pipeline_run import (
    IRIS_EVAL,
    IRIS_MODEL,
    ONE_UNIT_CCE,
    PROJECT_EXPERIMENT,
    client,
    mlflow_run,
)

pytestmark = [pytest.mark.mlflow]

EXPERIMENT = PROJECT_EXPERIMENT
AUDIT_FOLDER = {
    "report.json",
    "report.md",
    "report.html",
    "findings.sarif",
    "junit.xml",
    "gx_result.json",
    "gx_docs",
    "confusion_matrix.png",
}
CHECK_FOLDER = {"report.json", "report.md", "report.html", "findings.sarif", "junit.xml"}


def project_run(uri: str, result: subprocess.CompletedProcess[str]) -> Any:
    """The one top-level run of the experiment: the project run."""
    c = client(uri)
    experiment = c.get_experiment_by_name(EXPERIMENT)
    runs = c.search_runs([experiment.experiment_id])
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(top) == 1, result.stdout[-2000:] + result.stderr[-3000:]
    return top[0]


def children(uri: str, run: Any) -> list[Any]:
    c = client(uri)
    runs = c.search_runs([run.info.experiment_id])
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]


def artifacts(uri: str, run_id: str, path: str | None = None) -> set[str]:
    return {Path(a.path).name for a in client(uri).list_artifacts(run_id, path)}


def report_json(uri: str, run_id: str, tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "downloaded" / run_id
    folder.mkdir(parents=True)
    local = client(uri).download_artifacts(run_id, "report.json", str(folder))
    return dict(json.loads(Path(local).read_text(encoding="utf-8")))


def outcome(run: Any) -> tuple[str, str, str]:
    tags = run.data.tags
    return tags["lossaudit.verdict"], tags["lossaudit.codes"], tags["lossaudit.exit_code"]


@pytest.fixture
def binary_iris(tmp_path: Path) -> Path:
    """Iris eval features with 0/1 labels: data for the 4-feature 1-unit fixture."""
    with np.load(IRIS_EVAL) as data:
        x, y = data["x"], data["y"]
    path = tmp_path / "iris_binary.npz"
    np.savez(path, x=x, y=(y == 0).astype("int64"))
    return path


@pytest.mark.keras
def test_audit_entry_point_tags_a_passing_project_run_with_its_folder(
    sqlite_store: str, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = mlflow_run(
        sqlite_store,
        tmp_path,
        "audit",
        f"model={IRIS_MODEL}",
        f"data={IRIS_EVAL}",
        f"out={out}",
        "min_accuracy=0.9",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    run = project_run(sqlite_store, result)
    assert run.info.status == "FINISHED"
    assert outcome(run) == ("pass", "", "0")
    assert run.data.tags["lossaudit.command"] == "audit"
    assert run.data.tags["mlflow.runName"] == f"lossaudit audit {IRIS_MODEL.name}: pass"
    assert run.data.tags["mlflow.project.entryPoint"] == "audit"
    assert "lossaudit.error" not in run.data.tags
    assert run.data.params["min_accuracy"] == "0.9"
    # The audit is the project run's nested child; both carry the folder.
    [audit] = children(sqlite_store, run)
    assert run.data.tags["lossaudit.audit_run"] == audit.info.run_id
    assert audit.data.metrics["recomputed.accuracy"] == pytest.approx(1.0)
    assert artifacts(sqlite_store, run.info.run_id) >= AUDIT_FOLDER
    assert artifacts(sqlite_store, audit.info.run_id) >= AUDIT_FOLDER
    assert report_json(sqlite_store, run.info.run_id, tmp_path)["verdict"] == "pass"
    assert json.loads((out / "report.json").read_text())["verdict"] == "pass"


@pytest.mark.keras
def test_audit_entry_point_tags_a_failing_project_run_although_mlflow_run_exits_1(
    sqlite_store: str, tmp_path: Path, binary_iris: Path
) -> None:
    result = mlflow_run(
        sqlite_store,
        tmp_path,
        "audit",
        f"model={ONE_UNIT_CCE}",
        f"data={binary_iris}",
        f"out={tmp_path / 'report'}",
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    run = project_run(sqlite_store, result)
    assert run.info.status == "FAILED"
    verdict, codes, exit_code = outcome(run)
    assert (verdict, exit_code) == ("fail", "1")
    assert "LA101" in codes.split(",")
    [audit] = children(sqlite_store, run)
    assert audit.data.tags["lossaudit.codes"] == codes
    assert artifacts(sqlite_store, run.info.run_id) >= AUDIT_FOLDER - {"confusion_matrix.png"}
    assert report_json(sqlite_store, run.info.run_id, tmp_path)["verdict"] == "fail"


def test_audit_entry_point_with_bad_input_tags_error_and_exit_code_2(
    sqlite_store: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.keras"
    result = mlflow_run(
        sqlite_store, tmp_path, "audit", f"model={missing}", f"data={IRIS_EVAL}", f"out={tmp_path / 'r'}"
    )
    assert result.returncode == 1  # mlflow run: every failure is 1
    assert f"lossaudit: error: model file not found: {missing}" in result.stderr
    run = project_run(sqlite_store, result)
    assert outcome(run) == ("error", "", "2")
    assert run.data.tags["lossaudit.error"] == f"model file not found: {missing}"
    assert children(sqlite_store, run) == []
