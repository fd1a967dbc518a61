"""Credentials and TLS of a tracking server (issue 9, item 6).

A password in the tracking URI never appears in any output: stdout, stderr, the report folder
(report.json, upload records), the run logged on the server, the report context of a downloaded
model, the project run's error line. Servers behind HTTP basic auth (credentials in the URI, in
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, or ``MLFLOW_TRACKING_TOKEN``) and behind
TLS with a self-signed certificate (``MLFLOW_TRACKING_INSECURE_TLS``,
``MLFLOW_TRACKING_SERVER_CERT_PATH``) are reached; refused credentials and a certificate that does
not verify end in one line and exit 3.

The live tests talk to the session ``mlflow server`` through the forwarding proxies of
``tests/mlflow/conftest.py`` (basic auth, TLS), all on 127.0.0.1. The command that talks to the
server is ``lossaudit log REPORT_DIR`` on a report folder written without TensorFlow; the runs
that must show what really reaches stderr (warnings, tracebacks) are subprocesses, the others run
in this process.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from typer.testing import CliRunner

from lossaudit.cli import app
from lossaudit.errors import EXIT_PASS, EXIT_TRACKING_UNAVAILABLE, TrackingUnavailableError
from lossaudit.tracking import CONTEXT_KEY
from lossaudit.tracking.http import probe, redact_text, redact_uri
from lossaudit.tracking.store import TrackingTarget, resolve_tracking_uri, run_url
from tests.mlflow import conftest as live
from tests.mlflow.conftest import AUTH_PASSWORD, AUTH_TOKEN, AUTH_USER, ProxiedServer

pytestmark = pytest.mark.reliability

# The live fixtures of tests/mlflow: a conftest's fixtures are not visible from this folder. The
# session server is shared with tests/mlflow (see ``_RUNNING`` there).
mlflow_server = live.mlflow_server
basic_auth_server = live.basic_auth_server
basic_auth_open_health_server = live.basic_auth_open_health_server
tls_server = live.tls_server

WRONG_PASSWORD = "wr0ng-Pass:word@x"
SECRETS = (
    AUTH_PASSWORD,
    quote(AUTH_PASSWORD, safe=""),
    AUTH_TOKEN,
    WRONG_PASSWORD,
    quote(WRONG_PASSWORD, safe=""),
)
MLFLOW_SETTINGS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_RUN_ID",
)

runner = CliRunner()


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a secret shows in: {text[:300]}"


def _folder_texts(folder: Path) -> list[str]:
    """Every file of a report folder (report.json, report.md, upload records, ...) as text."""
    return [
        p.read_bytes().decode("utf-8", errors="replace") for p in sorted(folder.rglob("*")) if p.is_file()
    ]


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@pytest.fixture(autouse=True)
def _no_mlflow_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credential or TLS setting of the caller's environment leaks into a test."""
    for name in MLFLOW_SETTINGS[1:]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def written_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report folder as ``lossaudit audit`` writes it (a failing 1-unit CCE head), made without
    TensorFlow."""
    from lossaudit.core.audit import audit_predictions
    from lossaudit.core.compare import ReportedMetric
    from lossaudit.core.head import HeadSpec
    from lossaudit.sinks.local import write_report_folder

    head = HeadSpec.from_values(
        units=1, activation="sigmoid", loss="categorical_crossentropy", metrics=("accuracy",)
    )
    report = audit_predictions(
        head,
        np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 1]),
        np.full((10, 1), 0.6),
        (ReportedMetric.parse("accuracy=0.70", source="evaluate"),),
        context={"model": "cce_one_unit.keras", "data_hash": "sha256:0123abcd"},
        command="audit",
    )
    folder = tmp_path_factory.mktemp("written") / "report"
    write_report_folder(report, folder)
    return folder


@pytest.fixture
def report_dir(written_report: Path, tmp_path: Path) -> Path:
    """A copy of the report folder for one test: an uploaded folder records its upload."""
    return Path(shutil.copytree(written_report, tmp_path / "report"))


def _lossaudit(args: list[str], cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """``python -m lossaudit ARGS`` with the MLflow settings given and no others."""
    env = {k: v for k, v in os.environ.items() if k not in MLFLOW_SETTINGS}
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "lossaudit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _run_texts(server: ProxiedServer, run_id: str) -> list[str]:
    """The params and tags of a run, read from the server itself (no proxy)."""
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=server.upstream.uri).get_run(run_id)
    return [json.dumps(run.data.params), json.dumps(run.data.tags)]


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("lossaudit: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _hint(folder: Path) -> str:
    return f"; the local report is in {folder}; upload it later with `lossaudit log {folder}`"


# --- redaction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://alice:s3cret@mlflow.example:5000", "http://alice:***@mlflow.example:5000"),
        ("https://alice:pa%3Ass%40w0rd@host/mlflow/", "https://alice:***@host/mlflow/"),
        # An unescaped "@" in the password: the userinfo runs to the last "@" of the authority.
        ("http://alice:p@ss@host:5000/x", "http://alice:***@host:5000/x"),
        ("http://alice:@host", "http://alice:***@host"),
        # A lone name may be a token.
        ("https://ghp_abc123@host", "https://***@host"),
        ("postgresql://mlflow:dbpass@db:5432/mlflow", "postgresql://mlflow:***@db:5432/mlflow"),
        ("https://host/api?token=abc&run=1", "https://host/api?token=***&run=1"),
        (
            "https://host/x?access_token=abc&sig=xyz&api_key=k",
            "https://host/x?access_token=***&sig=***&api_key=***",
        ),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:////tmp/store/mlflow.db", "sqlite:////tmp/store/mlflow.db"),
        ("databricks://profile", "databricks://profile"),
        ("file:///tmp/mlruns", "file:///tmp/mlruns"),
    ],
)
def test_redact_uri_masks_the_password_and_secret_query_values(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
    assert redact_uri(shown) == shown


def test_redact_text_masks_every_uri_in_an_error_message() -> None:
    text = (
        "API request to http://alice:s3cret@127.0.0.1:5000/api/2.0/mlflow/runs/get failed with exception "
        "HTTPConnectionPool(host='127.0.0.1', port=5000); see https://tok@h/x?token=abc&run=1"
    )
    assert redact_text(text) == (
        "API request to http://alice:***@127.0.0.1:5000/api/2.0/mlflow/runs/get failed with exception "
        "HTTPConnectionPool(host='127.0.0.1', port=5000); see https://***@h/x?token=***&run=1"
    )
    # Text without URIs is left alone, models:/name@alias included.
    plain = "cannot get models:/digits@champion from MLflow: accuracy=0.9; see report.json"
    assert redact_text(plain) == plain


def test_a_resolved_uri_is_shown_redacted_and_given_to_mlflow_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = "http://alice:s3cret@127.0.0.1:5000"
    for target in (resolve_tracking_uri(raw), _from_environment(monkeypatch, raw)):
        assert target.uri == "http://alice:***@127.0.0.1:5000"
        assert target.client_uri == raw
        shown = [repr(target), str(target), target.describe(), str(run_url(target, "1", "abc"))]
        assert not any("s3cret" in text for text in shown), shown
        assert target.is_http
    plain = resolve_tracking_uri("http://127.0.0.1:5000")
    assert plain.secret_uri is None
    assert plain.client_uri == plain.uri == "http://127.0.0.1:5000"


def _from_environment(monkeypatch: pytest.MonkeyPatch, uri: str) -> TrackingTarget:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    target = resolve_tracking_uri(None)
    assert target.origin == "environment"
    return target


def test_error_lines_never_carry_a_uri_password(capsys: pytest.CaptureFixture[str]) -> None:
    from lossaudit.cli.common import guarded
    from lossaudit.pipeline.project_run import error_line

    quoted = "API request to http://alice:s3cret@h:5000/api/2.0/mlflow/runs/create failed"
    error = TrackingUnavailableError(f"MLflow store refused the audit run: {quoted}")
    assert "s3cret" not in str(error)
    assert "alice:***@h:5000" in str(error)

    def fail_internally() -> int:
        raise RuntimeError(quoted)

    with pytest.raises(SystemExit) as caught:
        guarded(fail_internally)
    assert caught.value.code == 4
    assert "s3cret" not in capsys.readouterr().err
    assert error_line(RuntimeError(quoted)) == (
        "internal error: RuntimeError: API request to http://alice:***@h:5000/api/2.0/mlflow/runs/create "
        "failed"
    )


def test_a_silent_server_fails_the_probe_in_two_seconds_without_retries(tmp_path: Path) -> None:
    """A port that accepts connections and never answers: no MLflow retry turns it into minutes."""
    import mlflow.utils.credentials
    import mlflow.utils.rest_utils  # noqa: F401  (imported before the clock starts)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://alice:s3cret@127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TrackingUnavailableError) as caught:
            probe(resolve_tracking_uri(uri), report_dir=tmp_path)
        elapsed = time.monotonic() - started
    assert elapsed < 4.0, elapsed
    assert str(caught.value) == (
        f"MLflow tracking server at http://alice:***@127.0.0.1:{uri.rsplit(':', 1)[1]} is unreachable: "
        f"no answer within 2 s{_hint(tmp_path)}"
    )


# --- basic auth ---------------------------------------------------------------------------------


@pytest.mark.mlflow
def test_credentials_in_the_uri_reach_a_basic_auth_server_and_never_show(
    basic_auth_server: ProxiedServer, report_dir: Path
) -> None:
    uri = basic_auth_server.with_userinfo(AUTH_USER, AUTH_PASSWORD)
    shown = f"http://{AUTH_USER}:***@127.0.0.1:{basic_auth_server.proxy.port}"
    done = _lossaudit(["log", str(report_dir), "--tracking-uri", uri, "--json"], report_dir.parent)
    assert done.returncode == EXIT_PASS, done.stderr
    doc = json.loads(done.stdout)
    assert doc["tracking_uri"] == shown
    assert doc["url"] == f"{shown}/#/experiments/{doc['experiment_id']}/runs/{doc['run_id']}"
    assert _basic(AUTH_USER, AUTH_PASSWORD) in basic_auth_server.proxy.authorizations
    _assert_no_secret(
        done.stdout, done.stderr, *_folder_texts(report_dir), *_run_texts(basic_auth_server, doc["run_id"])
    )


@pytest.mark.mlflow
def test_credentials_in_mlflow_tracking_uri_reach_a_basic_auth_server(
    basic_auth_server: ProxiedServer, report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", basic_auth_server.with_userinfo(AUTH_USER, AUTH_PASSWORD))
    result = runner.invoke(app, ["log", str(report_dir)])
    assert result.exit_code == EXIT_PASS, result.output
    shown = f"http://{AUTH_USER}:***@127.0.0.1:{basic_auth_server.proxy.port}/#/experiments/"
    assert shown in result.stdout
    _assert_no_secret(result.stdout, result.stderr, *_folder_texts(report_dir))


@pytest.mark.mlflow
@pytest.mark.parametrize(
    ("settings", "header"),
    [
        (
            {"MLFLOW_TRACKING_USERNAME": AUTH_USER, "MLFLOW_TRACKING_PASSWORD": AUTH_PASSWORD},
            _basic(AUTH_USER, AUTH_PASSWORD),
        ),
        ({"MLFLOW_TRACKING_TOKEN": AUTH_TOKEN}, f"Bearer {AUTH_TOKEN}"),
    ],
    ids=["username-password", "token"],
)
def test_credentials_from_mlflow_settings_reach_a_basic_auth_server(
    basic_auth_server: ProxiedServer,
    report_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, str],
    header: str,
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    before = len(basic_auth_server.proxy.authorizations)
    result = runner.invoke(app, ["log", str(report_dir), "--tracking-uri", basic_auth_server.uri, "--json"])
    assert result.exit_code == EXIT_PASS, result.output
    assert json.loads(result.stdout)["tracking_uri"] == basic_auth_server.uri
    # The probe (/health, then an API call) and every MLflow call carried the credentials.
    seen = basic_auth_server.proxy.authorizations[before:]
    assert len(seen) >= 4
    assert set(seen) == {header}
    _assert_no_secret(result.stdout, result.stderr, *_folder_texts(report_dir))


@pytest.mark.mlflow
def test_a_wrong_password_in_the_uri_is_one_line_naming_authentication(
    basic_auth_server: ProxiedServer, report_dir: Path
) -> None:
    uri = basic_auth_server.with_userinfo(AUTH_USER, WRONG_PASSWORD)
    done = _lossaudit(["log", "report", "--tracking-uri", uri], report_dir.parent)
    assert done.returncode == EXIT_TRACKING_UNAVAILABLE
    assert done.stdout == ""
    assert _one_error_line(done.stderr) == (
        f"lossaudit: error: MLflow tracking server at http://{AUTH_USER}:***@127.0.0.1:"
        f"{basic_auth_server.proxy.port} refused the credentials (HTTP 401: authentication failed); give "
        "them as user:password@ in the tracking URI, as MLFLOW_TRACKING_USERNAME and "
        f"MLFLOW_TRACKING_PASSWORD, or as MLFLOW_TRACKING_TOKEN{_hint(Path('report'))}"
    )
    _assert_no_secret(done.stderr, *_folder_texts(report_dir))


@pytest.mark.mlflow
@pytest.mark.parametrize(
    "case",
    ["no credentials", "wrong token", "wrong password, /health open", "no credentials, /health open"],
)
def test_refused_credentials_are_one_line_naming_authentication(
    basic_auth_server: ProxiedServer,
    basic_auth_open_health_server: ProxiedServer,
    report_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """Exit 3, like a server that is down: the audit's local report is complete and ``lossaudit
    log`` uploads it once the credentials are right. A server that leaves ``/health`` open (MLflow's
    basic-auth app) is caught by the probe's API call, before any run is created."""
    server = basic_auth_open_health_server if "/health open" in case else basic_auth_server
    uri = server.uri
    if case == "wrong token":
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "not-" + AUTH_TOKEN[::-1])
    if case.startswith("wrong password"):
        uri = server.with_userinfo(AUTH_USER, WRONG_PASSWORD)
    result = runner.invoke(app, ["log", str(report_dir), "--tracking-uri", uri])
    assert result.exit_code == EXIT_TRACKING_UNAVAILABLE, result.output
    assert result.stdout == ""
    line = _one_error_line(result.stderr)
    refused = "refused the credentials (HTTP 401: authentication failed)"
    assert f"MLflow tracking server at {redact_uri(uri)} {refused}" in line
    assert line.endswith(_hint(report_dir))
    _assert_no_secret(result.stderr, *_folder_texts(report_dir))


@pytest.mark.mlflow
def test_a_model_downloaded_through_basic_auth_names_its_server_without_the_password(
    basic_auth_server: ProxiedServer, tmp_path: Path
) -> None:
    """The report context of an audited MLflow model (``context.mlflow_source.tracking_uri`` in
    report.json) says where it came from, redacted; the download itself used the credentials."""
    from mlflow import MlflowClient

    from lossaudit.sources.mlflow import fetch_model

    upstream = MlflowClient(tracking_uri=basic_auth_server.upstream.uri)
    experiment_id = upstream.create_experiment(f"credentials-{tmp_path.name}")
    run_id = upstream.create_run(experiment_id).info.run_id
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.keras").write_bytes(b"not really a model")
    upstream.log_artifacts(run_id, str(tmp_path / "model"), artifact_path="model")
    upstream.set_terminated(run_id)

    uri = basic_auth_server.with_userinfo(AUTH_USER, AUTH_PASSWORD)
    fetched = fetch_model(f"runs:/{run_id}/model", tracking_uri=uri, dst_dir=tmp_path / "download")
    shown = f"http://{AUTH_USER}:***@127.0.0.1:{basic_auth_server.proxy.port}"
    assert fetched.model_file.read_bytes() == b"not really a model"
    assert fetched.tracking_uri == shown
    assert fetched.context()[CONTEXT_KEY]["tracking_uri"] == shown
    _assert_no_secret(json.dumps(fetched.context()))


@pytest.mark.mlflow
def test_the_project_run_is_tagged_through_basic_auth_and_a_refusal_names_no_password(
    basic_auth_server: ProxiedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Under ``mlflow run`` (``MLFLOW_RUN_ID``, ``MLFLOW_TRACKING_URI`` with the credentials)."""
    from mlflow import MlflowClient

    from lossaudit.pipeline.project_run import finish_project_run, reset_record

    upstream = MlflowClient(tracking_uri=basic_auth_server.upstream.uri)
    experiment_id = upstream.create_experiment(f"project-{tmp_path.name}")
    run_id = upstream.create_run(experiment_id).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    reset_record()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", basic_auth_server.with_userinfo(AUTH_USER, AUTH_PASSWORD))
    assert finish_project_run(EXIT_PASS, command="check") == EXIT_PASS
    assert upstream.get_run(run_id).data.tags["lossaudit.exit_code"] == "0"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", basic_auth_server.with_userinfo(AUTH_USER, WRONG_PASSWORD))
    assert finish_project_run(EXIT_PASS, command="check") == EXIT_TRACKING_UNAVAILABLE
    err = capsys.readouterr().err
    assert f"the MLflow project run {run_id} in http://{AUTH_USER}:***@127.0.0.1:" in err
    assert "refused the credentials (HTTP 401: authentication failed)" in err
    _assert_no_secret(err, *_run_texts(basic_auth_server, run_id))


# --- TLS with a self-signed certificate ---------------------------------------------------------


@pytest.mark.mlflow
def test_a_self_signed_certificate_without_trust_is_one_line_naming_tls_verification(
    tls_server: ProxiedServer, report_dir: Path
) -> None:
    done = _lossaudit(["log", "report", "--tracking-uri", tls_server.uri], report_dir.parent)
    assert done.returncode == EXIT_TRACKING_UNAVAILABLE
    assert done.stdout == ""
    assert _one_error_line(done.stderr) == (
        f"lossaudit: error: MLflow tracking server at {tls_server.uri} is unreachable: TLS certificate "
        "verification failed (self-signed certificate); set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA "
        "certificate that signed the server's certificate, or MLFLOW_TRACKING_INSECURE_TLS=true to skip "
        f"verification{_hint(Path('report'))}"
    )


@pytest.mark.mlflow
def test_a_self_signed_certificate_is_reached_with_insecure_tls_and_no_warning(
    tls_server: ProxiedServer, report_dir: Path
) -> None:
    """stderr stays empty: no urllib3 ``InsecureRequestWarning`` per request once the user chose
    not to verify."""
    done = _lossaudit(
        ["log", "report", "--tracking-uri", tls_server.uri, "--json"],
        report_dir.parent,
        MLFLOW_TRACKING_INSECURE_TLS="true",
    )
    assert done.returncode == EXIT_PASS, done.stderr
    assert done.stderr == ""
    doc = json.loads(done.stdout)
    assert doc["url"] == f"{tls_server.uri}/#/experiments/{doc['experiment_id']}/runs/{doc['run_id']}"


@pytest.mark.mlflow
def test_a_self_signed_certificate_is_reached_with_it_as_server_cert_path(
    tls_server: ProxiedServer, report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_server.cert_file is not None
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(tls_server.cert_file))
    result = runner.invoke(app, ["log", str(report_dir), "--tracking-uri", tls_server.uri, "--json"])
    assert result.exit_code == EXIT_PASS, result.output
    run_id = json.loads(result.stdout)["run_id"]
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=tls_server.upstream.uri).get_run(run_id)
    assert run.data.tags["lossaudit.verdict"] == "fail"


@pytest.mark.mlflow
def test_insecure_tls_together_with_a_server_certificate_is_one_line(
    tls_server: ProxiedServer, report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_server.cert_file is not None
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(tls_server.cert_file))
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    result = runner.invoke(app, ["log", str(report_dir), "--tracking-uri", tls_server.uri])
    assert result.exit_code == EXIT_TRACKING_UNAVAILABLE, result.output
    line = _one_error_line(result.stderr)
    assert line.startswith(f"lossaudit: error: MLflow tracking server at {tls_server.uri} cannot be used: ")
    assert "MLFLOW_TRACKING_INSECURE_TLS" in line and "MLFLOW_TRACKING_SERVER_CERT_PATH" in line
