"""The embedded SQLite store under concurrency (issue 9, item 1).

Audits started together on a fresh folder used to run MLflow's schema migrations at once and all
exit 4 (``duplicate column name: step``, ``table _alembic_tmp_tags already exists``), leaving a
half-migrated ``mlflow.db`` that broke every later run. Now the store is created once under a lock
(``mlflow.db.lock``), and any failure to log is exit 3 with the local report intact and the
``lossaudit log`` hint.

The concurrent processes are ``lossaudit log DIR`` of prepared report folders: the cheapest
command that opens the embedded store and logs a run (no TensorFlow), which is exactly the part
of an audit that raced.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lossaudit.cli import app
from lossaudit.errors import EXIT_PASS, EXIT_TRACKING_UNAVAILABLE, TrackingUnavailableError
from lossaudit.sinks.mlflow import UPLOAD_FILE, MlflowSink, log_report_folder, read_upload_record
from lossaudit.tracking.store import connect, resolve_tracking_uri
from tests.mlflow.conftest import copy_store, migrated_empty_db  # noqa: F401  (a fixture)

from .tracking_support import artifact_files, copies, local_files, start_logs, wait_all, write_report

pytestmark = [pytest.mark.reliability, pytest.mark.mlflow]

runner = CliRunner()
AUDITS = 20


@pytest.fixture(scope="module")
def report_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(tmp_path_factory.mktemp("template") / "report")


@pytest.mark.slow
def test_twenty_audits_at_once_on_a_fresh_folder_log_twenty_runs_and_leave_a_working_store(
    report_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    folders = copies(report_template, tmp_path / "reports", AUDITS + 1)
    work = tmp_path / "fresh"
    work.mkdir()
    assert not (work / "mlflow.db").exists()

    started = time.monotonic()
    done = wait_all(start_logs(folders[:AUDITS], work))
    seconds = time.monotonic() - started

    assert [d.returncode for d in done] == [EXIT_PASS] * AUDITS, [d.stderr for d in done]
    assert all(d.stderr == "" for d in done), [d.stderr for d in done if d.stderr]
    run_ids = [d.stdout.split("logged MLflow run ")[1].split()[0] for d in done]
    assert len(set(run_ids)) == AUDITS
    db = (work / "mlflow.db").resolve()
    assert (work / "mlflow.db.lock").is_file()

    # The store is whole: SQLite's own check, MLflow's schema check (opening it), every run there.
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("lossaudit")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert sorted(r.info.run_id for r in runs) == sorted(run_ids)
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["lossaudit.verdict"] for r in runs} == {"fail"}
    assert all(r.data.metrics["recomputed.accuracy"] == pytest.approx(0.7) for r in runs)
    expected = local_files(folders[0])
    assert artifact_files(client, run_ids[0]) == expected
    for folder, run_id in zip(folders, run_ids, strict=False):
        entry = read_upload_record(folder)[uri]
        assert (entry.run_id, entry.state) == (run_id, "complete")

    # A later `lossaudit log` in that folder works, and one of the twenty again does nothing.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(work)
    later = runner.invoke(app, ["log", str(folders[AUDITS]), "--json"])
    assert later.exit_code == EXIT_PASS, later.output
    assert json.loads(later.stdout)["action"] == "created"
    again = runner.invoke(app, ["log", str(folders[0])])
    assert again.exit_code == EXIT_PASS, again.output
    assert again.stdout.startswith(f"already uploaded: MLflow run {run_ids[0]} (experiment 'lossaudit') in ")
    assert len(client.search_runs([experiment.experiment_id], max_results=100)) == AUDITS + 1
    print(f"\n{AUDITS} concurrent `lossaudit log` on a fresh folder: all exit 0 in {seconds:.1f} s")


def test_opening_a_store_waits_for_the_schema_lock(migrated_empty_db: Path, tmp_path: Path) -> None:  # noqa: F811
    """connect() opens a SQLite store only while it holds ``<db>.lock``: another holder (here the
    test) keeps it waiting."""
    uri = copy_store(migrated_empty_db, tmp_path / "store")
    target = resolve_tracking_uri(uri)
    lock = (tmp_path / "store" / "mlflow.db.lock").open("a")
    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
    opened: list[Any] = []
    thread = threading.Thread(target=lambda: opened.append(connect(target)))
    try:
        thread.start()
        time.sleep(1.0)
        assert opened == []  # still waiting
    finally:
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        lock.close()
    thread.join(timeout=60)
    assert len(opened) == 1


def test_a_store_that_cannot_be_opened_is_exit_3_with_the_hint_and_the_folder_intact(
    report_template: Path, tmp_path: Path
) -> None:
    folder = copies(report_template, tmp_path, 1)[0]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    broken = tmp_path / "broken" / "mlflow.db"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not a SQLite database, it is what a crash left behind" * 100)
    uri = f"sqlite:///{broken}"
    result = runner.invoke(app, ["log", str(folder), "--tracking-uri", uri])
    assert result.exit_code == EXIT_TRACKING_UNAVAILABLE, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lossaudit: error: MLflow store {uri} cannot be opened: ")
    assert lines[0].endswith(
        f"; the local report is in {folder}; upload it later with `lossaudit log {folder}`"
    )
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no upload record either


def test_a_database_error_while_logging_is_exit_3_and_the_next_log_finishes_the_same_run(
    report_template: Path,
    tmp_path: Path,
    migrated_empty_db: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'database is locked' (or any other error) half-way through an upload: exit 3 with the hint,
    the run recorded in the folder; the next `lossaudit log` finishes that run, no second one."""
    import sqlalchemy.exc
    from mlflow import MlflowClient

    folder = copies(report_template, tmp_path, 1)[0]
    uri = copy_store(migrated_empty_db, tmp_path / "store")
    real = MlflowClient.log_artifact

    def locked(self: Any, *args: Any, **kwargs: Any) -> None:
        raise sqlalchemy.exc.OperationalError(
            "INSERT ...", {}, sqlite3.OperationalError("database is locked")
        )

    monkeypatch.setattr(MlflowClient, "log_artifact", locked)
    failed = runner.invoke(app, ["log", str(folder), "--tracking-uri", uri])
    assert failed.exit_code == EXIT_TRACKING_UNAVAILABLE, failed.output
    line = failed.stderr.strip()
    assert "\n" not in line
    assert f"MLflow store {uri} refused the audit run: OperationalError: " in line
    assert "database is locked" in line
    assert line.endswith(f"upload it later with `lossaudit log {folder}`")
    entry = read_upload_record(folder)[uri]
    assert entry.state == "started"
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(entry.run_id).info.status == "FAILED"  # the store was there to say so

    monkeypatch.setattr(MlflowClient, "log_artifact", real)
    resumed = runner.invoke(app, ["log", str(folder), "--tracking-uri", uri, "--json"])
    assert resumed.exit_code == EXIT_PASS, resumed.output
    doc = json.loads(resumed.stdout)
    assert (doc["action"], doc["run_id"]) == ("resumed", entry.run_id)
    assert doc["notes"] == [
        f"run {entry.run_id} was left FAILED by an interrupted upload: resumed and finished"
    ]
    runs = client.search_runs([doc["experiment_id"]])
    assert [r.info.run_id for r in runs] == [entry.run_id]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["recomputed.accuracy"] == pytest.approx(0.7)
    # Params and metrics were logged once: a metric sent twice would have two points.
    assert len(client.get_metric_history(entry.run_id, "recomputed.accuracy")) == 1
    assert artifact_files(client, entry.run_id) == local_files(folder)
    assert read_upload_record(folder)[uri].state == "complete"


def test_the_audit_sink_turns_any_logging_error_into_exit_3(
    report_template: Path,
    tmp_path: Path,
    migrated_empty_db: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `lossaudit audit` calls after writing the folder: an error that is no LossauditError
    (here a RuntimeError from MLflow) still ends as TrackingUnavailableError, not an internal
    error (exit 4)."""
    from mlflow import MlflowClient

    folder = copies(report_template, tmp_path, 1)[0]
    uri = copy_store(migrated_empty_db, tmp_path / "store")

    def boom(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the artifact store vanished")

    monkeypatch.setattr(MlflowClient, "log_batch", boom)
    with pytest.raises(TrackingUnavailableError) as caught:
        MlflowSink(tracking_uri=uri).log_folder(folder)
    assert caught.value.exit_code == EXIT_TRACKING_UNAVAILABLE
    assert "RuntimeError: the artifact store vanished" in str(caught.value)
    assert str(caught.value).endswith(f"upload it later with `lossaudit log {folder}`")
    assert (folder / UPLOAD_FILE).is_file()


def test_the_same_folder_logged_twice_at_once_makes_one_run(
    report_template: Path,
    tmp_path: Path,
    migrated_empty_db: Path,  # noqa: F811
) -> None:
    from mlflow import MlflowClient

    folder = copies(report_template, tmp_path, 1)[0]
    uri = copy_store(migrated_empty_db, tmp_path / "store")
    results: list[Any] = []

    def upload() -> None:
        results.append(log_report_folder(folder, tracking_uri=uri))

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(r.action for r in results) == ["created", "none"]
    assert results[0].run_id == results[1].run_id
    client = MlflowClient(tracking_uri=uri)
    assert len(client.search_runs([results[0].experiment_id])) == 1
