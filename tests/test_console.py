"""The console: headed tables and plain text when nobody watches, colour and progress in a terminal."""

from __future__ import annotations

import io
import os
import re
import select
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from lossaudit.cli import app, console
from lossaudit.cli.pipeline import _print_outcome
from lossaudit.pipeline.runner import EntryOutcome, PipelineOutcome


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _demo_outcome(run_ids: tuple[str | None, str | None]) -> PipelineOutcome:
    error = {"code": "LA101", "severity": "error"}
    return PipelineOutcome(
        "demo",
        "demo",
        (
            EntryOutcome(
                "one-unit-cce",
                "pass",
                ("LA101", "LA501"),
                "out/one-unit-cce",
                run_ids[0],
                findings=(error,),
                extra={"reproduced": True},
            ),
            EntryOutcome(
                "multi-label",
                "fail",
                ("LA105",),
                "out/multi-label",
                run_ids[1],
                findings=({"code": "LA105", "severity": "warning"},),
                extra={"reproduced": False},
            ),
        ),
    )


def _config(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(
        kind="demo",
        name="demo",
        out="out",
        resolve=lambda p: str(tmp_path / p),
        log=SimpleNamespace(enabled=True, tracking_uri=None, experiment="lossaudit"),
    )


def test_demo_table_has_a_header_words_a_newcomer_reads_and_where_the_runs_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    _print_outcome(_config(tmp_path), _demo_outcome(("a1", "b2")), None, logged=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["scenario", "reproduced?", "findings", "audited", "model", "MLflow", "run"]
    assert lines[1].split()[:2] == ["one-unit-cce", "yes"] and lines[1].split()[-2:] == ["fail", "a1"]
    assert lines[2].split()[:2] == ["multi-label", "no"] and lines[2].split()[-2:] == ["pass", "b2"]
    assert "1 of 2 scenario(s) reproduced" in lines[3]
    # The table says the second model passed its audit: the line must not say every model fails.
    assert "1 of the 2 audited model(s) failed their audit, on purpose" in lines[3]
    assert "each scenario's model is meant to fail" not in lines[3]
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'}" in lines[4]
    assert "\x1b[" not in "\n".join(lines)  # not a terminal: no colour codes


def test_closing_line_without_mlflow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _print_outcome(_config(tmp_path), _demo_outcome((None, None)), None, logged=False)
    assert (
        capsys.readouterr().out.splitlines()[-1] == f"reports in {tmp_path / 'out'}; nothing logged to MLflow"
    )


@pytest.mark.mlflow
def test_closing_line_under_mlflow_run_names_the_project_run_and_its_experiment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `mlflow run` the runs are children of the project run, in the project run's
    experiment, whatever the pipeline's log.experiment says."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    project = client.create_run(client.create_experiment("the-project", str(tmp_path / "art")))
    child = client.create_run(project.info.experiment_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", project.info.run_id)
    config = _config(tmp_path)
    config.log.experiment = "lossaudit-demo"
    _print_outcome(config, _demo_outcome((child.info.run_id, None)), None, logged=True)
    last = capsys.readouterr().out.splitlines()[-1]
    assert f"runs nested in the project run {project.info.run_id} in the MLflow store {uri}" in last
    assert "experiment 'the-project'" in last and "lossaudit-demo" not in last
    assert last.endswith(f"see them with `mlflow ui --backend-store-uri {uri}`")


def test_demo_progress_counts_the_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    from lossaudit.demo import scenarios

    ran: list[str] = []
    monkeypatch.setattr(scenarios, "prepare_keras", lambda: None)
    for name in scenarios.SCENARIO_NAMES:
        monkeypatch.setitem(scenarios.SCENARIOS, name, lambda settings, name=name: ran.append(name) or name)
    told: list[str] = []
    scenarios.run_scenarios(["multi-label", "one-unit-cce"], progress=told.append)
    # Catalogue order, each with its place among the chosen ones.
    assert told == ["one-unit-cce (1 of 2)", "multi-label (2 of 2)"]
    assert ran == ["one-unit-cce", "multi-label"]


def test_run_progress_names_the_pipeline_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lossaudit run` labels its live line with the file it runs (not `demo demo`)."""
    labels: list[str] = []

    class Status:
        def __init__(self, label: str) -> None:
            labels.append(label)

        def __enter__(self) -> object:
            return lambda _text: None

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(console, "progress", Status)
    import lossaudit.cli.pipeline as cli_pipeline

    outcome = _demo_outcome((None, None))
    monkeypatch.setattr(cli_pipeline, "kinds", lambda: {"demo": lambda config, context: outcome})
    pipeline = tmp_path / "nightly.yaml"
    pipeline.write_text("name: demo\nkind: demo\nout: out\nlog: {enabled: false}\n")
    done = CliRunner().invoke(app, ["run", str(pipeline), "--no-log"])
    assert "multi-label" in done.stdout, done.output
    assert labels == ["running nightly.yaml"]


def test_colour_only_in_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "LA101 error   categorical cross-entropy\nverdict: fail (1 error)"
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert console.severity_colours(text) == text
    monkeypatch.setattr("sys.stdout", _Tty())
    coloured = console.severity_colours(text)
    assert "\x1b[" in coloured and "categorical cross-entropy" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    assert console.severity_colours(text) == text


def test_a_narrow_terminal_cuts_no_cell_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `script` or a small window Rich has 80 columns: it used to print `bce-softmax-…` and
    `054229f613324…`. Names keep their width, the other cells wrap, and nothing is elided."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "80")
    out = _Tty()
    monkeypatch.setattr("sys.stdout", out)
    run_id = "054229f613324c0a9d3b4e0f6e2a1b7c"
    console.table(
        ("scenario", "reproduced?", "findings", "audited model", "MLflow run"),
        [
            ("bce-softmax-multiclass", "yes", "LA103, LA401, LA503", "pass", run_id),
            ("label-loss-mismatch", "yes", "LA201, LA202", "fail", "a30fddd3d2184c0a9d3b4e0f6e2a1b7c"),
        ],
        ["pass", "pass"],
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "bce-softmax-multiclass" in text and "label-loss-mismatch" in text
    # The run id, folded over lines, is whole: its pieces in the last column, read top to bottom.
    first_row = text.split("bce-softmax-multiclass", 1)[1].split("label-loss-mismatch", 1)[0]
    pieces = [line.rstrip(" │").split("│")[-1].strip() for line in first_row.splitlines() if "│" in line]
    assert "".join(pieces).endswith(run_id)
    for code in ("LA103", "LA401", "LA503"):
        assert code in first_row


def test_progress_is_silent_in_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with console.progress("demo") as update:
        update("one-unit-cce")
    assert err.getvalue() == ""


def test_progress_shows_in_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    err = _Tty()
    monkeypatch.setattr("sys.stderr", err)
    with console.progress("demo") as update:
        update("one-unit-cce")
    assert err.getvalue() != ""


def test_a_stderr_line_is_plain_in_a_pipe_and_above_the_status_line_in_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with console.progress("registry") as update:
        update("1 of 2 versions")
        console.stderr_line("lossaudit: m v1: pass (fresh)")
    assert err.getvalue() == "lossaudit: m v1: pass (fresh)\n"

    # A real terminal (a pty): typer.echo would find the file under the status's redirection and
    # write onto the end of the status line; stderr_line goes through the redirection.
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    main, side = os.openpty()
    tty = open(side, "w", encoding="utf-8")  # noqa: SIM115  (closed below)
    monkeypatch.setattr("sys.stderr", tty)
    try:
        with console.progress("registry") as update:
            update("1 of 2 versions")
            time.sleep(0.3)  # the status draws itself
            console.stderr_line("lossaudit: m v1: pass (fresh)")
        tty.flush()
        shown = b""
        while select.select([main], [], [], 0.2)[0]:
            shown += os.read(main, 65536)
    finally:
        tty.close()
        os.close(main)
    text = shown.decode("utf-8", errors="replace")
    assert "lossaudit: m v1: pass (fresh)" in text and "registry: 1 of 2 versions" in text
    assert re.search(r"versions[^\r\n]*lossaudit", text) is None, text


def _in_a_terminal(monkeypatch: pytest.MonkeyPatch, work: Any) -> str:
    """What ``work`` shows on a real terminal (a pty) as stderr."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    main, side = os.openpty()
    tty = open(side, "w", encoding="utf-8")  # noqa: SIM115  (closed below)
    monkeypatch.setattr("sys.stderr", tty)
    try:
        work()
        tty.flush()
        shown = b""
        while select.select([main], [], [], 0.2)[0]:
            shown += os.read(main, 65536)
    finally:
        tty.close()
        os.close(main)
    return shown.decode("utf-8", errors="replace")


def test_a_batch_bar_inside_the_status_line_stays_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's status line and the Keras adapter's batch bar used to run at once: each of the
    bar's 1,172 redraws on 300,000 rows became a line above the status, with `[?25l` in it."""
    import click

    from lossaudit.keras import predict

    seen: dict[str, bool] = {}

    def audit() -> None:
        seen["outside"] = predict._show_progress(1172, None)
        with console.progress("audit m") as update:
            update("predicting the eval set")
            seen["inside"] = predict._show_progress(1172, None)
            with click.progressbar(range(200), label="predicting 51200 samples", file=sys.stderr) as bar:
                for _ in bar:
                    time.sleep(0.002)
            time.sleep(0.3)  # the status draws itself
            console.stderr_line("lossaudit: a line of its own")
        seen["after"] = predict._show_progress(1172, None)

    text = _in_a_terminal(monkeypatch, audit)
    assert seen == {"outside": True, "inside": False, "after": True}
    assert "audit m: predicting the eval set" in text
    assert text.count("predicting 51200 samples") <= 1, text
    assert "?25l" not in text.replace("\x1b[?25l", "")
    assert "lossaudit: a line of its own" in text
    assert sys.stderr is not None and not isinstance(sys.stderr, console._BehindTheStatus)


def test_shell_completion_is_on() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "--install-completion" in result.output
