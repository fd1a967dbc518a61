"""Uploads are idempotent and resumable (issue 9, item 2).

A report folder records the run it is being logged to (``upload.json``, written as soon as the run
exists). ``lossaudit log DIR`` finishes that run after a killed server or process instead of making
a second one, marks the run of an earlier audit's interrupted upload FAILED (and says so), and does
nothing for a folder already uploaded.

Against a real ``mlflow server`` on 127.0.0.1 that the tests kill with SIGKILL and start again on the
same backend store, and against SQLite stores.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lossaudit.cli import app
from lossaudit.errors import EXIT_PASS, TrackingUnavailableError
from lossaudit.sinks.mlflow import (
    UPLOAD_FILE,
    UploadEntry,
    _write_upload_entry,
    log_report_folder,
    read_upload_record,
    report_digest,
)
from tests.mlflow.conftest import copy_store, free_port, migrated_empty_db  # noqa: F401  (a fixture)

from .tracking_support import (
    KillableServer,
    artifact_files,
    copies,
    local_files,
    start_logs,
    wait_all,
    write_report,
)

pytestmark = [pytest.mark.reliability, pytest.mark.mlflow]

runner = CliRunner()
CONCURRENT_UPLOADS = 8


@pytest.fixture(scope="module")
def report_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(tmp_path_factory.mktemp("template") / "report")


@pytest.fixture(scope="module")
def killable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KillableServer]:
    server = KillableServer(tmp_path_factory.mktemp("killable-server"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(killable: KillableServer) -> KillableServer:
    """The module's server, running (started again if a test left it dead)."""
    if killable.process is None or killable.process.poll() is not None:
        killable.start()
    return killable


def _runs(client: Any, experiment: str) -> list[Any]:
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else list(client.search_runs([found.experiment_id], max_results=200))


# --- a killed server --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_server_killed_during_an_upload_leaves_no_orphan_after_lossaudit_log(
    server: KillableServer, report_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a dead server fails at once
    folder = copies(report_template, tmp_path, 1)[0]
    created, go = threading.Event(), threading.Event()
    real_log_batch = MlflowClient.log_batch

    def paused(self: Any, *args: Any, **kwargs: Any) -> Any:
        created.set()  # the run exists; nothing else has been sent
        assert go.wait(120)
        return real_log_batch(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", paused)
    outcome: list[Any] = []

    def upload() -> None:
        try:
            outcome.append(log_report_folder(folder, tracking_uri=server.uri, experiment="killed"))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    assert created.wait(120)
    recorded = read_upload_record(folder)[server.uri]
    assert recorded.state == "started"
    server.kill()
    go.set()
    thread.join(120)
    error = outcome[0]
    assert isinstance(error, TrackingUnavailableError), error
    assert error.exit_code == 3
    assert str(error).startswith(f"MLflow tracking server at {server.uri} is unreachable: ")
    assert str(error).endswith(f"upload it later with `lossaudit log {folder}`")
    monkeypatch.setattr(MlflowClient, "log_batch", real_log_batch)

    server.start()  # same port, same backend store and artifacts
    client = MlflowClient(tracking_uri=server.uri)
    orphan = client.get_run(recorded.run_id)
    assert orphan.info.status == "RUNNING"  # what the issue saw: no metrics, no artifacts
    assert orphan.data.metrics == {} and artifact_files(client, recorded.run_id) == set()

    result = runner.invoke(app, ["log", str(folder), "--tracking-uri", server.uri, "--json"])
    assert result.exit_code == EXIT_PASS, result.output
    doc = json.loads(result.stdout)
    assert (doc["action"], doc["run_id"]) == ("resumed", recorded.run_id)
    assert doc["notes"] == [
        f"run {recorded.run_id} was left RUNNING by an interrupted upload: resumed and finished"
    ]
    runs = _runs(client, "killed")
    assert [r.info.run_id for r in runs] == [recorded.run_id]  # exactly one run, no orphan
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["lossaudit.verdict"] == "fail"
    assert run.data.params["head.loss"] == "categorical_crossentropy"
    assert run.data.metrics["recomputed.accuracy"] == pytest.approx(0.7)
    assert artifact_files(client, run.info.run_id) == local_files(folder)
    assert read_upload_record(folder)[server.uri].state == "complete"

    # Logging it again: nothing sent, and it says where the run is.
    again = runner.invoke(app, ["log", str(folder), "--tracking-uri", server.uri])
    assert again.exit_code == EXIT_PASS, again.output
    url = f"{server.uri}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    assert again.stdout.splitlines()[0] == (
        f"already uploaded: MLflow run {run.info.run_id} (experiment 'killed') in {url}; nothing to do"
    )
    assert len(_runs(client, "killed")) == 1
    assert (
        client.search_runs([run.info.experiment_id], filter_string="attributes.status = 'RUNNING'").to_list()
        == []
    )


@pytest.mark.slow
def test_eight_uploads_at_once_to_a_live_server_then_again_make_eight_runs(
    server: KillableServer, report_template: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    folders = copies(report_template, tmp_path / "reports", CONCURRENT_UPLOADS)
    args = ("--tracking-uri", server.uri, "--experiment", "concurrent", "--json")
    started = time.monotonic()
    first = wait_all(start_logs(folders, tmp_path, *args))
    seconds = time.monotonic() - started
    assert [d.returncode for d in first] == [EXIT_PASS] * CONCURRENT_UPLOADS, [d.stderr for d in first]
    docs = [json.loads(d.stdout) for d in first]
    assert {d["action"] for d in docs} == {"created"}
    run_ids = [d["run_id"] for d in docs]
    assert len(set(run_ids)) == CONCURRENT_UPLOADS

    second = wait_all(start_logs(folders, tmp_path, *args))
    assert [d.returncode for d in second] == [EXIT_PASS] * CONCURRENT_UPLOADS, [d.stderr for d in second]
    again = [json.loads(d.stdout) for d in second]
    assert [(d["action"], d["run_id"]) for d in again] == [("none", r) for r in run_ids]
    assert all(d["url"] and d["url"].endswith(f"/runs/{d['run_id']}") for d in again)

    client = MlflowClient(tracking_uri=server.uri)
    runs = _runs(client, "concurrent")
    assert sorted(r.info.run_id for r in runs) == sorted(run_ids)
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert artifact_files(client, run_ids[0]) == local_files(folders[0])
    print(f"\n{CONCURRENT_UPLOADS} concurrent `lossaudit log` to {server.uri}: all exit 0 in {seconds:.1f} s")


def test_the_upload_record_holds_no_password(
    server: KillableServer, report_template: Path, tmp_path: Path
) -> None:
    folder = copies(report_template, tmp_path, 1)[0]
    secret_uri = server.uri.replace("http://", "http://auditor:s3cr3t-pw@")
    logged = log_report_folder(folder, tracking_uri=secret_uri, experiment="credentials")
    text = (folder / UPLOAD_FILE).read_text(encoding="utf-8")
    assert "s3cr3t-pw" not in text
    shown = server.uri.replace("http://", "http://auditor:***@")
    assert read_upload_record(folder)[shown].run_id == logged.run_id
    assert log_report_folder(folder, tracking_uri=secret_uri, experiment="credentials").action == "none"


# --- what lossaudit log does with a record, against SQLite stores ---------------------------------


def _started_entry(uri: str, run: Any, digest: str) -> UploadEntry:
    return UploadEntry(
        tracking_uri=uri,
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        experiment="lossaudit",
        state="started",
        report_sha256=digest,
    )


def test_the_run_of_an_earlier_audit_interrupted_in_the_folder_is_marked_failed_and_said(
    report_template: Path,
    tmp_path: Path,
    migrated_empty_db: Path,  # noqa: F811
) -> None:
    """The process was killed mid-upload, then a new audit was written into the same folder: the
    old run cannot be resumed (another report.json), so it is marked FAILED and a new run made."""
    from mlflow import MlflowClient

    folder = copies(report_template, tmp_path, 1)[0]
    uri = copy_store(migrated_empty_db, tmp_path / "store")
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("lossaudit")
    orphan = client.create_run(experiment_id)
    _write_upload_entry(folder, _started_entry(uri, orphan, "0" * 64))  # an earlier report.json

    result = runner.invoke(app, ["log", str(folder), "--tracking-uri", uri])
    assert result.exit_code == EXIT_PASS, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"note: marked run {orphan.info.run_id} in {uri} FAILED: an upload of an earlier audit in this "
        "folder was interrupted and cannot be resumed"
    )
    assert lines[1].startswith("logged MLflow run ")
    new_id = lines[1].split("logged MLflow run ")[1].split()[0]
    assert client.get_run(orphan.info.run_id).info.status == "FAILED"
    assert client.get_run(new_id).info.status == "FINISHED"
    entry = read_upload_record(folder)[uri]
    assert (entry.run_id, entry.state, entry.report_sha256) == (new_id, "complete", report_digest(folder))


def test_a_recorded_run_that_no_longer_exists_is_replaced_by_a_new_one(
    report_template: Path,
    tmp_path: Path,
    migrated_empty_db: Path,  # noqa: F811
) -> None:
    from mlflow import MlflowClient

    folder = copies(report_template, tmp_path, 1)[0]
    uri = copy_store(migrated_empty_db, tmp_path / "store")
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("lossaudit"))
    _write_upload_entry(folder, _started_entry(uri, run, report_digest(folder)))
    client.delete_run(run.info.run_id)

    logged = log_report_folder(folder, tracking_uri=uri)
    assert logged.action == "created" and logged.run_id != run.info.run_id
    assert logged.notes == (
        f"run {run.info.run_id} of an interrupted upload of this folder was deleted in {uri}; "
        "logging a new run",
    )
    assert read_upload_record(folder)[uri].run_id == logged.run_id


def test_a_folder_already_uploaded_is_not_sent_again_but_another_store_gets_its_own_run(
    report_template: Path,
    tmp_path: Path,
    migrated_empty_db: Path,  # noqa: F811
) -> None:
    from mlflow import MlflowClient

    folder = copies(report_template, tmp_path, 1)[0]
    first_uri = copy_store(migrated_empty_db, tmp_path / "one")
    second_uri = copy_store(migrated_empty_db, tmp_path / "two")
    first = log_report_folder(folder, tracking_uri=first_uri)
    assert log_report_folder(folder, tracking_uri=first_uri).run_id == first.run_id
    second = log_report_folder(folder, tracking_uri=second_uri)
    assert second.action == "created"
    assert log_report_folder(folder, tracking_uri=second_uri).action == "none"
    assert set(read_upload_record(folder)) == {first_uri, second_uri}
    for uri in (first_uri, second_uri):
        client = MlflowClient(tracking_uri=uri)
        assert len(client.search_runs([first.experiment_id])) == 1
    # A new audit written into the folder is a new report: uploaded again.
    write_report(folder, model="retrained.keras")
    third = log_report_folder(folder, tracking_uri=first_uri)
    assert third.action == "created" and third.run_id != first.run_id
