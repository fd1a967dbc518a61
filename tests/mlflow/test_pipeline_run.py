"""``lossaudit run PIPELINE.yaml`` and the MLproject, end to end against a SQLite MLflow store.

A pipeline whose outcome is in its JSON document, its report folders and the store runs in the
test process (typer's runner; TensorFlow is loaded here once); the one whose stderr and exit code
are the point runs the real ``python -m lossaudit``, and the MLproject tests start ``mlflow run``,
as a user does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from lossaudit.cli import app

ROOT = Path(__file__).resolve().parents[2]
IRIS_MODEL = ROOT / "tests" / "data" / "pipelines" / "iris_softmax_sparse.keras"
IRIS_EVAL = ROOT / "tests" / "data" / "pipelines" / "iris_eval.npz"
ONE_UNIT_CCE = ROOT / "tests" / "data" / "models" / "sigmoid1_cce.keras"

pytestmark = [pytest.mark.mlflow, pytest.mark.keras]

REPORT_ARTIFACTS = {
    "report.json",
    "report.md",
    "report.html",
    "findings.sarif",
    "junit.xml",
    "confusion_matrix.png",
    "gx_result.json",
    "gx_docs",
}


def environment(uri: str) -> dict[str, str]:
    """The tracking URI, and this interpreter's scripts first on PATH: `mlflow run` starts the
    entry point's `lossaudit ...` command through the shell."""
    scripts = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def lossaudit(*args: str, uri: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = environment(uri)
    return subprocess.run(
        [sys.executable, "-m", "lossaudit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def lossaudit_here(*args: str, uri: str, monkeypatch: pytest.MonkeyPatch) -> Result:
    """``lossaudit ARGS`` in this process against the store ``uri`` (the same command as the
    console script's; ``main`` adds only the one-line usage errors and `mlflow run`'s tags)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@pytest.fixture
def binary_iris(tmp_path: Path) -> Path:
    """Iris eval features with 0/1 labels (setosa or not): data for the 4-feature 1-unit fixture."""
    with np.load(IRIS_EVAL) as data:
        x, y = data["x"], data["y"]
    path = tmp_path / "iris_binary.npz"
    np.savez(path, x=x, y=(y == 0).astype("int64"))
    return path


def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


PROJECT_EXPERIMENT = "mlproject"


def mlflow_run(uri: str, cwd: Path, entry_point: str, *params: str) -> subprocess.CompletedProcess[str]:
    """`mlflow run <repo> -e ENTRY --env-manager local --experiment-name mlproject -P ...`, started
    in ``cwd`` (created), into an experiment whose artifacts stay under ``cwd``: the project run's
    and its nested runs' (the store's Default experiment keeps them where the store was made)."""
    cwd.mkdir(parents=True, exist_ok=True)
    c = client(uri)
    if c.get_experiment_by_name(PROJECT_EXPERIMENT) is None:
        c.create_experiment(PROJECT_EXPERIMENT, artifact_location=(cwd / "artifacts").as_uri())
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "run", str(ROOT), "-e", entry_point, "--env-manager", "local"]
    command += ["--experiment-name", PROJECT_EXPERIMENT]
    for param in params:
        command += ["-P", param]
    return subprocess.run(command, capture_output=True, text=True, env=environment(uri), cwd=cwd, timeout=600)


def runs_of(uri: str, experiment: str) -> list[Any]:
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment}"
    return list(c.search_runs([exp.experiment_id]))


def artifact_names(uri: str, run_id: str) -> set[str]:
    return {Path(a.path).name for a in client(uri).list_artifacts(run_id)}


def test_ci_pipeline_logs_one_passing_run_with_every_artifact(
    sqlite_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = tmp_path / "ci.yaml"
    pipeline.write_text(
        f"""
name: ci
kind: audit
out: {tmp_path / "reports"}
log: {{experiment: ci-test}}
thresholds: {{accuracy: 0.9}}
audits:
  - name: iris
    model: {IRIS_MODEL}
    data: {IRIS_EVAL}
"""
    )
    result = lossaudit_here("run", str(pipeline), "--json", uri=sqlite_store, monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["verdict"], doc["findings"]) == ("pass", [])
    [entry] = doc["entries"]
    [run] = runs_of(sqlite_store, "ci-test")
    assert run.info.run_id == entry["run_id"]
    assert run.data.tags["lossaudit.verdict"] == "pass"
    assert run.data.tags["mlflow.runName"] == "audit iris: pass"
    assert run.data.metrics["recomputed.accuracy"] == pytest.approx(1.0)
    assert artifact_names(sqlite_store, run.info.run_id) >= REPORT_ARTIFACTS
    local = json.loads((tmp_path / "reports" / "iris" / "report.json").read_text())
    assert local["verdict"] == "pass"
    assert [s["name"] for s in local["stages"]][:2] == ["validate_labels", "check_compatibility"]


def test_several_audits_are_nested_under_a_parent_with_the_worst_verdict(
    sqlite_store: str, tmp_path: Path, binary_iris: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = tmp_path / "two.yaml"
    pipeline.write_text(
        f"""
name: two
kind: audit
out: {tmp_path / "reports"}
log: {{experiment: two-test}}
audits:
  - name: good
    model: {IRIS_MODEL}
    data: {IRIS_EVAL}
  - name: broken
    model: {ONE_UNIT_CCE}
    data: {binary_iris}
"""
    )
    result = lossaudit_here("run", str(pipeline), "--json", uri=sqlite_store, monkeypatch=monkeypatch)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    verdicts = {e["name"]: (e["verdict"], "LA101" in e["codes"]) for e in doc["entries"]}
    assert verdicts == {"good": ("pass", False), "broken": ("fail", True)}
    runs = runs_of(sqlite_store, "two-test")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert parent.data.tags["lossaudit.verdict"] == "fail"
    assert "LA101" in parent.data.tags["lossaudit.codes"].split(",")
    assert parent.data.metrics["audits.failed"] == 1.0


def test_a_bad_entry_exits_2_and_the_others_still_run(sqlite_store: str, tmp_path: Path) -> None:
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text(
        f"""
name: bad
kind: audit
out: {tmp_path / "reports"}
log: {{experiment: bad-test}}
audits:
  - name: missing
    model: {tmp_path / "nope.keras"}
    data: {IRIS_EVAL}
  - name: good
    model: {IRIS_MODEL}
    data: {IRIS_EVAL}
"""
    )
    result = lossaudit("run", str(pipeline), uri=sqlite_store)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("lossaudit: error:")] == [
        f"lossaudit: error: model file not found: {tmp_path / 'nope.keras'}"
    ]
    assert (tmp_path / "reports" / "good" / "report.json").is_file()


def test_mlflow_run_pipeline_entry_nests_audits_under_the_project_run(
    sqlite_store: str, tmp_path: Path, binary_iris: Path
) -> None:
    pipeline = tmp_path / "gate.yaml"
    pipeline.write_text(
        f"""
name: gate
kind: audit
out: {tmp_path / "reports"}
audits:
  - name: broken
    model: {ONE_UNIT_CCE}
    data: {binary_iris}
"""
    )
    result = mlflow_run(sqlite_store, tmp_path / "work", "pipeline", f"file={pipeline}")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    runs = runs_of(sqlite_store, PROJECT_EXPERIMENT)
    project = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    audits = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(project) == 1 and len(audits) == 1
    assert audits[0].data.tags["mlflow.parentRunId"] == project[0].info.run_id
    assert audits[0].data.tags["lossaudit.verdict"] == "fail"
    tags = project[0].data.tags
    assert (tags["lossaudit.verdict"], tags["lossaudit.exit_code"]) == ("fail", "1")
    assert tags["lossaudit.codes"] == audits[0].data.tags["lossaudit.codes"]
    assert (tags["lossaudit.pipeline"], tags["lossaudit.audit_runs"]) == ("gate", audits[0].info.run_id)
    assert tags["mlflow.project.entryPoint"] == "pipeline"
    assert REPORT_ARTIFACTS - {"confusion_matrix.png"} <= artifact_names(sqlite_store, audits[0].info.run_id)
    # The project run carries the pipeline's document and each entry's folder under its name.
    assert {"pipeline.json", "broken"} <= artifact_names(sqlite_store, project[0].info.run_id)
    assert "report.json" in {
        Path(a.path).name for a in client(sqlite_store).list_artifacts(project[0].info.run_id, "broken")
    }


@pytest.mark.slow
def test_mlflow_run_demo_leaves_one_run_per_scenario_with_its_artifacts(
    sqlite_store: str, tmp_path: Path
) -> None:
    """The README's main job: `mlflow run . -e demo --env-manager local`, offline."""
    from lossaudit.demo.scenarios import SCENARIO_NAMES

    result = mlflow_run(sqlite_store, tmp_path, "demo")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    runs = runs_of(sqlite_store, PROJECT_EXPERIMENT)
    [project] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    scenarios = {r.data.tags["lossaudit.scenario"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(scenarios) == sorted(SCENARIO_NAMES)
    for name, run in scenarios.items():
        assert run.data.tags["mlflow.parentRunId"] == project.info.run_id
        assert run.data.tags["lossaudit.reproduced"] == "true", name
        names = artifact_names(sqlite_store, run.info.run_id)
        assert {
            "report.json",
            "report.md",
            "report.html",
            "findings.sarif",
            "junit.xml",
            "scenario.json",
        } <= names
    # Every scenario whose model ran has its confusion matrix and Great Expectations result.
    for name in ("one-unit-cce", "one-unit-softmax", "multi-label", "bce-softmax-multiclass"):
        assert {"confusion_matrix.png", "gx_result.json", "gx_docs"} <= artifact_names(
            sqlite_store, scenarios[name].info.run_id
        )
    assert "LA101" in scenarios["one-unit-cce"].data.tags["lossaudit.codes"].split(",")
    assert (project.data.tags["lossaudit.verdict"], project.data.tags["lossaudit.exit_code"]) == ("pass", "0")
    assert {"pipeline.json", *SCENARIO_NAMES} <= artifact_names(sqlite_store, project.info.run_id)
