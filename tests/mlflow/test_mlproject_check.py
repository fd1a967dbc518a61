"""``mlflow run . -e check|registry`` end to end: the project run carries the outcome.

The ``audit`` entry point is in ``test_mlproject.py``, with the helpers used here; the entry
points are in two files so that pytest-xdist runs their `mlflow run` processes on two workers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mlflow.test_mlproject import (
    CHECK_FOLDER,
    EXPERIMENT,
    artifacts,
    outcome,
    project_run,
    report_json,
)
from tests.mlflow.test_pipeline_run import ROOT, client, mlflow_run

pytestmark = [pytest.mark.mlflow]


def test_check_entry_point_tags_the_project_run_and_logs_its_report(
    sqlite_store: str, tmp_path: Path
) -> None:
    base = ("units=1", "activation=sigmoid")
    fine = mlflow_run(sqlite_store, tmp_path / "fine", "check", *base, "loss=binary_crossentropy")
    assert fine.returncode == 0, fine.stdout[-2000:] + fine.stderr[-3000:]
    broken = mlflow_run(sqlite_store, tmp_path / "broken", "check", *base)
    assert broken.returncode == 1, broken.stderr[-3000:]
    assert "LA101" in broken.stdout
    assert "no findings" in fine.stdout
    runs = {
        r.data.tags["lossaudit.verdict"]: r
        for r in client(sqlite_store).search_runs(
            [client(sqlite_store).get_experiment_by_name(EXPERIMENT).experiment_id]
        )
    }
    assert sorted(runs) == ["fail", "pass"]
    assert outcome(runs["pass"]) == ("pass", "", "0")
    assert outcome(runs["fail"]) == ("fail", "LA101", "1")
    for verdict, run in runs.items():
        assert run.data.tags["lossaudit.command"] == "check"
        assert run.data.params["units"] == "1"
        assert artifacts(sqlite_store, run.info.run_id) >= CHECK_FOLDER
        assert report_json(sqlite_store, run.info.run_id, tmp_path)["verdict"] == verdict


def test_check_entry_point_refuses_a_non_integer_units_with_one_usage_error(
    sqlite_store: str, tmp_path: Path
) -> None:
    result = mlflow_run(sqlite_store, tmp_path, "check", "units=1.5", "activation=sigmoid")
    assert result.returncode == 1
    assert "Invalid value for '--units'" in result.stderr
    assert "Traceback" not in result.stderr
    run = project_run(sqlite_store, result)
    assert outcome(run) == ("error", "", "2")
    assert run.data.tags["lossaudit.error"].startswith("Invalid value for '--units'")


def test_registry_entry_point_uses_mlflow_tracking_uri_not_a_local_store(
    sqlite_store: str, tmp_path: Path
) -> None:
    """The default `tracking_uri` is empty: the job reads the registry of MLFLOW_TRACKING_URI (the
    project run's store), not ./mlflow.db of the project folder."""
    c = client(sqlite_store)
    c.create_registered_model("stub-clf")
    c.create_model_version("stub-clf", source=(tmp_path / "no-model").as_uri())
    pipeline = tmp_path / "registry.yaml"
    pipeline.write_text(
        f"""
name: nightly
kind: registry
out: {tmp_path / "reports"}
log: {{experiment: registry-test}}
registry:
  name: stub-*
"""
    )
    stray = ROOT / "mlflow.db"
    before = stray.stat().st_mtime if stray.exists() else None
    result = mlflow_run(sqlite_store, tmp_path, "registry", f"pipeline={pipeline}")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    # The version was found in the test's store (and could not be audited: no eval data).
    assert "stub-clf" in result.stdout
    run = project_run(sqlite_store, result)
    assert outcome(run) == ("error", "", "2")
    assert run.data.tags["lossaudit.kind"] == "registry"
    assert run.data.tags["lossaudit.error"].startswith("stub-clf v1: ")
    summary_run = c.get_run(run.data.tags["lossaudit.summary_run"])
    assert summary_run.data.tags["lossaudit.verdict"] == "error"
    assert "summary.json" in artifacts(sqlite_store, run.info.run_id)
    assert (stray.stat().st_mtime if stray.exists() else None) == before
