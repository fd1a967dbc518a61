"""The project run of ``mlflow run`` (:mod:`lossaudit.pipeline.project_run`), in process: which verdict
and error line an exit gets, which store the project run is in, and what lands on it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from lossaudit.errors import BadInputError
from lossaudit.pipeline import project_run as project
from lossaudit.pipeline.project_run import (
    current_record,
    error_line,
    finish_project_run,
    project_run_id,
    project_run_verdict,
    project_tags,
    project_verdict,
    record_report,
)
from lossaudit.pipeline.runner import EntryOutcome, PipelineOutcome, record_project_outcome


@pytest.fixture(autouse=True)
def clean_record() -> Iterator[None]:
    project.reset_record()
    yield
    project.reset_record()


def check_report(loss: str) -> Any:
    from lossaudit.core.audit import check
    from lossaudit.core.head import HeadSpec

    head = HeadSpec.from_values(units=1, activation="sigmoid", loss=loss, metrics=("accuracy",))
    return check(head)


def exit_raised_while_handling(exc: BaseException, code: int) -> SystemExit:
    """What `guarded` and Typer leave: SystemExit <- typer.Exit <- the error it handled."""
    try:
        try:
            try:
                raise exc
            except BaseException:
                raise typer.Exit(code)  # noqa: B904 (implicit chaining, as in `guarded`)
        except typer.Exit as exit_:
            sys.exit(exit_.exit_code)
    except SystemExit as system_exit:
        return system_exit
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("exit_code", "recorded", "verdict"),
    [
        (0, None, "pass"),
        (1, None, "fail"),
        (0, "pass", "pass"),
        (1, "fail", "fail"),
        (3, "pass", "pass"),  # the audit passed; only its MLflow run is missing
        (3, None, "error"),
        (2, None, "error"),
        (2, "fail", "error"),  # a pipeline with a bad entry
        (4, "pass", "error"),
        (130, None, "error"),
    ],
)
def test_project_verdict(exit_code: int, recorded: str | None, verdict: str) -> None:
    assert project_verdict(exit_code, recorded) == verdict


def test_error_line_finds_the_handled_error_behind_the_exit() -> None:
    bad = exit_raised_while_handling(BadInputError("model file not found: m.keras"), 2)
    assert error_line(bad.__context__) == "model file not found: m.keras"
    internal = exit_raised_while_handling(KeyError("x"), 4)
    assert error_line(internal.__context__) == "internal error: KeyError: 'x'"
    try:
        sys.exit(typer.Exit(0).exit_code)
    except SystemExit as plain:
        assert error_line(plain.__context__) is None


def test_a_usage_error_is_its_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from lossaudit.cli import app

    with pytest.raises(SystemExit) as info:
        app(["check", "--units", "1.5"], prog_name="lossaudit")
    assert info.value.code == 2
    line = error_line(info.value.__context__)
    assert line is not None and line.startswith("Invalid value for '--units'")


def test_project_run_id_only_for_the_project_runs_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    assert project_run_id() is None
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_RUN_ID", "abc")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    assert project_run_id() == "abc"
    assert project_run_id(store) == "abc"
    assert project_run_id("") == "abc"
    assert project_run_id(f"sqlite:///{tmp_path / 'other.db'}") is None


def test_tags_without_a_report_carry_no_codes_and_the_error() -> None:
    record_report(check_report("categorical_crossentropy"))
    tags = project_tags(1, current_record(), command="check")
    assert (tags["lossaudit.verdict"], tags["lossaudit.codes"], tags["lossaudit.exit_code"]) == (
        "fail",
        "LA101",
        "1",
    )
    assert "LA101" in tags["mlflow.note.content"]
    # `mlflow run` names the run at random; the name says what ran and what it said.
    assert tags["mlflow.runName"] == "lossaudit check: fail LA101"
    project.reset_record()
    tags = project_tags(2, current_record(), error="model file not found: m.keras", command="audit")
    assert (tags["lossaudit.verdict"], tags["lossaudit.codes"], tags["lossaudit.exit_code"]) == (
        "error",
        "",
        "2",
    )
    assert tags["lossaudit.error"] == "model file not found: m.keras"
    assert tags["mlflow.runName"] == "lossaudit audit: error"


def test_nothing_happens_outside_mlflow_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    assert finish_project_run(1) == 1
    with pytest.raises(SystemExit) as info, project_run_verdict("check"):
        sys.exit(2)
    assert info.value.code == 2


def test_a_pipeline_records_each_folder_under_its_name(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    outcome = PipelineOutcome(
        "ci",
        "audit",
        (
            EntryOutcome("good", "pass", folder=str(good), run_id="r1"),
            EntryOutcome("broken", "fail", ("LA101", "LA501"), folder=str(bad), run_id="r2", exit_code=1),
            EntryOutcome("missing", "error", error="model file not found: x", exit_code=2),
        ),
    )
    record_project_outcome(outcome)
    record = current_record()
    assert (record.verdict, record.codes) == ("error", ("LA101", "LA501"))
    # Each folder is logged under its own (safe) folder name.
    assert record.folders == [("good", good), ("bad", bad)]
    assert record.tags["lossaudit.audit_runs"] == "r1,r2"
    assert record.error == "missing: model file not found: x"
    assert json.loads(record.files["pipeline.json"])["verdict"] == "error"


@pytest.mark.mlflow
def test_the_project_run_gets_tags_and_the_report_folder(
    sqlite_store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=sqlite_store)
    artifacts = Path(sqlite_store.removeprefix("sqlite:///")).parent / "artifacts"
    experiment = client.create_experiment("p", artifact_location=artifacts.as_uri())
    run_id = client.create_run(experiment).info.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    record_report(check_report("categorical_crossentropy"))
    with pytest.raises(SystemExit) as info, project_run_verdict("check"):
        sys.exit(1)
    assert info.value.code == 1
    run = client.get_run(run_id)
    tags = run.data.tags
    assert (tags["lossaudit.verdict"], tags["lossaudit.codes"], tags["lossaudit.exit_code"]) == (
        "fail",
        "LA101",
        "1",
    )
    assert tags["lossaudit.command"] == "check"
    names = {Path(a.path).name for a in client.list_artifacts(run_id)}
    assert {"report.json", "report.md", "report.html", "findings.sarif", "junit.xml"} <= names
    assert run.info.status == "RUNNING"  # `mlflow run` finishes its own run
    assert capsys.readouterr().err == ""


@pytest.mark.mlflow
def test_a_project_run_that_cannot_be_tagged_exits_3_with_one_line(
    sqlite_store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    monkeypatch.setenv("MLFLOW_RUN_ID", "0123456789abcdef0123456789abcdef")
    assert finish_project_run(0) == 3
    assert finish_project_run(2) == 2  # bad input stays bad input
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        "lossaudit: error: the MLflow project run 0123456789abcdef0123456789abcdef in "
        f"{sqlite_store} cannot be tagged: "
    )
