"""The MLflow adapter: tracking URI resolution, logging a report folder as a run, models and reported
metrics from MLflow, the MLflow-down path, against a SQLite store and a real ``mlflow server``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from lossaudit.cli import app
from lossaudit.errors import (
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    EXIT_PASS,
    EXIT_TRACKING_UNAVAILABLE,
    BadInputError,
    TrackingUnavailableError,
)
from lossaudit.sinks.mlflow import (
    UPLOAD_FILE,
    MlflowSink,
    load_report_dict,
    log_report_folder,
    metric_key,
    read_upload_record,
    run_metrics,
    run_params,
    run_tags,
)
from lossaudit.sources.mlflow import attributable_metrics, find_model_file, parse_model_uri
from lossaudit.tracking import rules_version
from lossaudit.tracking.store import check_reachable, resolve_tracking_uri

from .conftest import MlflowServer, copy_store, fluent_tracking_uri, free_port

pytestmark = pytest.mark.mlflow

runner = CliRunner()


# --- a real report folder -----------------------------------------------------------------------


def _cce_one_unit_report_folder(out_dir: Path) -> dict[str, Path]:
    """A report of a 1-unit sigmoid head trained with categorical cross-entropy (LA101), with a
    reported accuracy that is the positive rate (argmax over one unit would be the negative rate)."""
    from lossaudit.core.audit import audit_predictions
    from lossaudit.core.compare import ReportedMetric
    from lossaudit.core.head import HeadSpec
    from lossaudit.sinks.local import write_report_folder

    y = np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 1])
    # A model stuck near 0.6 predicts class 1 for everyone: accuracy = positive rate 0.7.
    p = np.full((10, 1), 0.6)
    head = HeadSpec.from_values(
        units=1, activation="sigmoid", loss="categorical_crossentropy", metrics=("accuracy",)
    )
    report = audit_predictions(
        head,
        y,
        p,
        (ReportedMetric.parse("accuracy=0.70", source="evaluate"), ReportedMetric.parse("val_loss=0.0")),
        context={"model": "cce_one_unit.keras", "data_hash": "sha256:0123abcd"},
        command="audit",
    )
    assert report.verdict == "fail"
    return write_report_folder(report, out_dir)


# --- URIs and names -------------------------------------------------------------------------------


def test_tracking_uri_prefers_option_then_environment_then_local_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert resolve_tracking_uri("sqlite:///x.db").uri == "sqlite:///x.db"
    assert resolve_tracking_uri("sqlite:///x.db").origin == "option"
    assert resolve_tracking_uri(None).uri == "http://tracking.example:5000"
    assert resolve_tracking_uri(None).origin == "environment"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    target = resolve_tracking_uri(None, cwd=tmp_path)
    assert target.uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert target.artifact_root == str(tmp_path.resolve() / "mlruns")
    assert target.is_default and not target.is_http


def test_down_server_is_detected_in_seconds_and_names_the_folder(tmp_path: Path) -> None:
    import mlflow.utils.rest_utils  # noqa: F401  (the probe's HTTP client: imported before the clock starts)

    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(TrackingUnavailableError) as caught:
        check_reachable(resolve_tracking_uri(uri), report_dir=tmp_path / "report")
    assert time.monotonic() - started < 3.0
    assert str(caught.value) == (
        f"MLflow tracking server at {uri} is unreachable: connection refused; the local report is in "
        f"{tmp_path / 'report'}; upload it later with `lossaudit log {tmp_path / 'report'}`"
    )
    assert caught.value.exit_code == EXIT_TRACKING_UNAVAILABLE == 3


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/digits/3", {"kind": "version", "name": "digits", "version": "3"}),
        ("models:/digits@champion", {"kind": "alias", "name": "digits", "alias": "champion"}),
        ("models:/digits/latest", {"kind": "latest", "name": "digits"}),
        ("models:/digits/Production", {"kind": "stage", "name": "digits", "stage": "Production"}),
        ("models:/m-0a1b2c", {"kind": "logged_model", "model_id": "m-0a1b2c"}),
        ("runs:/abc123/model", {"kind": "run", "run_id": "abc123", "path": "model"}),
        ("runs:/abc123/sub/model", {"kind": "run", "run_id": "abc123", "path": "sub/model"}),
    ],
)
def test_model_uris_parse(uri: str, expected: dict[str, str]) -> None:
    ref = parse_model_uri(uri)
    assert {key: getattr(ref, key) for key in expected} == expected


@pytest.mark.parametrize(
    "uri", ["models:/", "runs:/onlyid", "models:/a/b/c", "s3://bucket/model", "models:/@x"]
)
def test_malformed_model_uris_are_bad_input(uri: str) -> None:
    with pytest.raises(BadInputError, match="not a usable MLflow model URI"):
        parse_model_uri(uri)


def test_metric_keys_keep_only_what_mlflow_accepts() -> None:
    assert metric_key("reported", "evaluate", "val_accuracy") == "reported.evaluate.val_accuracy"
    assert metric_key("class", 3, "f1") == "class.3.f1"
    assert metric_key("reported", "user", "top-5 acc(%)") == "reported.user.top-5_acc_"
    assert metric_key("a/../b", "..c") == "a_._b.c"


def test_rules_version_hashes_codes_and_severities(monkeypatch: pytest.MonkeyPatch) -> None:
    from lossaudit.core import catalogue

    text = "\n".join(f"{r.code}:{r.severity.value}" for r in sorted(catalogue.RULES, key=lambda r: r.code))
    assert rules_version() == hashlib.sha256(text.encode()).hexdigest()[:12]
    monkeypatch.setattr(catalogue, "RULES", catalogue.RULES[1:])
    assert rules_version() != hashlib.sha256(text.encode()).hexdigest()[:12]


def test_source_run_metrics_kept_are_the_attributable_ones() -> None:
    logged = {
        "accuracy": 0.9,
        "val_accuracy": 0.8,
        "loss": 0.3,
        "val_loss": 0.4,
        "learning_rate": 0.001,
        "epoch_time": 2.0,
        "val_auc": 0.7,
    }
    assert attributable_metrics(logged) == {
        "accuracy": 0.9,
        "loss": 0.3,
        "val_accuracy": 0.8,
        "val_auc": 0.7,
        "val_loss": 0.4,
    }


def test_keras_file_is_found_through_mlmodel(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    (model_dir / "data").mkdir(parents=True)
    (model_dir / "data" / "model.keras").write_bytes(b"PK")
    (model_dir / "MLmodel").write_text(
        "flavors:\n  keras:\n    data: data\n    save_exported_model: false\n  python_function: {}\n"
    )
    path, flavors = find_model_file(model_dir)
    assert path == model_dir / "data" / "model.keras"
    assert flavors == ("keras", "python_function")
    (model_dir / "MLmodel").write_text("flavors:\n  keras:\n    data: data\n    save_exported_model: true\n")
    with pytest.raises(BadInputError, match="save_exported_model=True"):
        find_model_file(model_dir)
    (model_dir / "data" / "model.keras").unlink()
    (model_dir / "MLmodel").write_text("flavors:\n  sklearn: {}\n")
    with pytest.raises(BadInputError, match=r"has no \.keras or \.h5 file; its flavours: sklearn"):
        find_model_file(model_dir)


# --- (a) a report folder logged to a SQLite store -----------------------------------------------


def test_report_folder_logs_params_metrics_tags_and_artifacts_to_sqlite(
    tmp_path: Path, sqlite_store: str
) -> None:
    from mlflow import MlflowClient

    files = _cce_one_unit_report_folder(tmp_path / "report")
    report = load_report_dict(tmp_path / "report")
    uri = sqlite_store

    logged = log_report_folder(tmp_path / "report", tracking_uri=uri, experiment="audits")

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(logged.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "audits"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["head.units"] == "1"
    assert params["head.activation"] == "sigmoid"
    assert params["head.loss"] == "categorical_crossentropy"
    assert params["head.from_logits"] == "false"
    assert params["head.metrics"] == "accuracy"
    assert params["labels.encoding"] == "binary"
    assert params["keras_family"] == "keras3"
    assert params["data_hash"] == "sha256:0123abcd"
    assert metrics["recomputed.accuracy"] == pytest.approx(0.7)
    assert metrics["reported.evaluate.accuracy"] == pytest.approx(0.7)
    assert metrics["difference.evaluate.accuracy"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["reported.user.val_loss"] == 0.0
    assert "difference.user.val_loss" not in metrics  # losses are listed, not recomputed
    assert metrics["class.1.recall"] == pytest.approx(1.0)
    assert metrics["class.0.recall"] == pytest.approx(0.0)
    assert metrics["class.1.support"] == 7.0
    assert metrics["findings.error"] == float(report["summary"]["error"])
    assert tags["lossaudit.verdict"] == "fail"
    assert tags["lossaudit.codes"] == ",".join(report["codes"])
    assert tags["lossaudit.codes"].split(",")[0] == "LA101"
    assert tags["lossaudit.version"] == report["tool_version"]
    assert tags["lossaudit.rules_version"] == rules_version()
    assert tags["lossaudit.model_uri"] == "cce_one_unit.keras"
    assert tags["lossaudit.comparison.evaluate.accuracy"] == "agrees"
    # The name says what was audited and why it failed: the codes at or above fail_on.
    failing = list(dict.fromkeys(f["code"] for f in report["findings"] if f["severity"] == "error"))
    assert failing[0] == "LA101"
    assert tags["mlflow.runName"] == f"audit cce_one_unit.keras: fail {','.join(failing[:3])}" + (
        f" +{len(failing) - 3}" if len(failing) > 3 else ""
    )
    assert "`LA101` error" in tags["mlflow.note.content"]
    # Every file of the folder is an artifact, at the same relative path, except the upload record.
    local = sorted(
        str(p.relative_to(tmp_path / "report"))
        for p in (tmp_path / "report").rglob("*")
        if p.is_file() and p.name != UPLOAD_FILE
    )
    assert {"report.json", "report.md", "report.html"} <= set(local)
    assert read_upload_record(tmp_path / "report")[uri].run_id == logged.run_id
    assert {str(p.relative_to(tmp_path / "report")) for p in files.values() if p.is_file()} <= set(local)
    remote = sorted(_artifact_files(client, logged.run_id))
    assert remote == local
    # Artifacts sit beside the database, not in the folder the tests run from.
    assert (
        run.info.artifact_uri
        == (tmp_path / "store" / "mlruns" / "audits" / logged.run_id / "artifacts").as_uri()
    )


def _artifact_files(client: Any, run_id: str, path: str | None = None) -> Iterator[str]:
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            yield from _artifact_files(client, run_id, info.path)
        else:
            yield info.path


def test_params_metrics_and_tags_are_derived_from_the_report_dict_alone() -> None:
    report: dict[str, Any] = {
        "tool": "lossaudit",
        "tool_version": "9.9",
        "schema_version": "1.0",
        "verdict": "pass",
        "codes": [],
        "summary": {"error": 0, "warning": 0, "info": 0},
        "head": {
            "units": 10,
            "activation": "softmax",
            "activation_chain": ["softmax"],
            "loss": {"name": "sparse_categorical_crossentropy", "from_logits": False, "label_smoothing": 0.0},
            "metrics": ["accuracy", "top_k_categorical_accuracy"],
            "keras_family": "tf_keras",
        },
        "labels": {"encoding": "index", "n_classes": 10, "n_samples": 360},
        "metrics": {"values": {"accuracy": 0.95, "roc_auc": None}, "per_class": []},
        "comparisons": [
            {"metric": "val_accuracy", "source": "source_run", "reported": 0.96, "difference": 0.01}
        ],
        "context": {"data": {"sha256": "ff00"}, "long": "x" * 7000, "nested": {"a": 1}},
    }
    params = run_params(report)
    assert params["head.metrics"] == "accuracy,top_k_categorical_accuracy"
    assert params["keras_family"] == "tf_keras"
    assert params["data_hash"] == "ff00"
    assert len(params["context.long"]) == 6000  # MLflow's param value limit
    assert "context.nested" not in params
    assert run_metrics(report) == {
        "recomputed.accuracy": 0.95,
        "reported.source_run.val_accuracy": 0.96,
        "difference.source_run.val_accuracy": 0.01,
        "findings.error": 0.0,
        "findings.warning": 0.0,
        "findings.info": 0.0,
    }
    tags = run_tags(report, parent_run_id="p1")
    assert tags["lossaudit.verdict"] == "pass"
    assert tags["lossaudit.codes"] == ""
    assert tags["mlflow.parentRunId"] == "p1"


def test_log_command_uploads_a_folder_and_exits_0(tmp_path: Path, sqlite_store: str) -> None:
    from mlflow import MlflowClient

    _cce_one_unit_report_folder(tmp_path / "report")
    uri = sqlite_store
    result = runner.invoke(app, ["log", str(tmp_path / "report"), "--tracking-uri", uri, "--json"])
    assert result.exit_code == EXIT_PASS, result.output
    doc = json.loads(result.stdout)
    assert doc["uploaded"] is True
    assert doc["report_verdict"] == "fail"
    assert doc["url"] is None
    assert (doc["action"], doc["notes"]) == ("created", [])
    run = MlflowClient(tracking_uri=uri).get_run(doc["run_id"])
    assert run.data.tags["lossaudit.verdict"] == "fail"
    # Logging it twice makes one run: the second call says where it already is.
    again = runner.invoke(app, ["log", str(tmp_path / "report"), "--tracking-uri", uri, "--json"])
    assert again.exit_code == EXIT_PASS, again.output
    assert {k: v for k, v in json.loads(again.stdout).items() if k != "action"} == {
        k: v for k, v in doc.items() if k != "action"
    }
    assert json.loads(again.stdout)["action"] == "none"
    assert len(MlflowClient(tracking_uri=uri).search_runs([doc["experiment_id"]])) == 1


def test_log_command_without_report_json_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["log", str(tmp_path / "empty")])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.strip() == (
        f"lossaudit: error: {tmp_path / 'empty'} has no report.json; is it a lossaudit report folder?"
    )


def test_log_command_with_mlflow_down_exits_3_with_one_line(tmp_path: Path) -> None:
    _cce_one_unit_report_folder(tmp_path / "report")
    uri = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["log", str(tmp_path / "report"), "--tracking-uri", uri])
    assert result.exit_code == EXIT_TRACKING_UNAVAILABLE
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"lossaudit: error: MLflow tracking server at {uri} is unreachable")


def test_without_tracking_uri_the_run_goes_to_a_local_store_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_empty_db: Path
) -> None:
    from mlflow import MlflowClient

    _cce_one_unit_report_folder(tmp_path / "report")
    copy_store(migrated_empty_db, tmp_path)  # what the first run creates, minus the migrations' time
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["log", "report"])
    assert result.exit_code == EXIT_PASS, result.output
    db = tmp_path.resolve() / "mlflow.db"
    assert f"the local MLflow store sqlite:///{db}" in result.stdout
    run_id = result.stdout.split("logged MLflow run ")[1].split()[0]
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    run = client.get_run(run_id)
    artifacts = tmp_path.resolve() / "mlruns" / "lossaudit" / run_id / "artifacts"
    assert run.info.artifact_uri == artifacts.as_uri()
    assert (artifacts / "report.json").is_file()


def test_several_audits_are_nested_under_one_parent_run(tmp_path: Path, sqlite_store: str) -> None:
    from mlflow import MlflowClient

    from lossaudit.core.audit import check
    from lossaudit.core.head import HeadSpec
    from lossaudit.sinks.local import write_report_folder

    _cce_one_unit_report_folder(tmp_path / "bad")
    good = check(HeadSpec.from_values(units=3, activation="softmax", loss="categorical_crossentropy"))
    assert good.verdict == "pass"
    write_report_folder(good, tmp_path / "good")
    uri = sqlite_store
    sink = MlflowSink(tracking_uri=uri, experiment="nested")
    with sink.parent("two models", explain=lambda: "The job fails: one model failed.") as parent_id:
        for name in ("bad", "good"):
            sink.log_folder(tmp_path / name)
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    # The parent's description: how many children failed, each child's name with its verdict, why.
    note = parent.data.tags["mlflow.note.content"].splitlines()
    assert note[0] == "**1 of 2 audited model(s) failed their audit.**"
    assert note[2].startswith("- audit cce_one_unit.keras: fail LA101")
    assert note[3] == "- check: pass"
    assert note[-1] == "The job fails: one model failed."
    assert parent.data.tags["lossaudit.verdict"] == "fail"
    assert parent.data.tags["lossaudit.codes"].startswith("LA101")
    assert parent.data.metrics == {"audits.failed": 1.0, "audits.total": 2.0}
    children = [client.get_run(logged.run_id) for logged in sink.logged]
    assert [c.data.tags["mlflow.parentRunId"] for c in children] == [parent_id, parent_id]
    assert [c.data.tags["lossaudit.verdict"] for c in children] == ["fail", "pass"]


# --- (b), (c) a real mlflow server ------------------------------------------------------------

MODEL_NAME = "cce_one_unit"


def _register(folder: Path, tracking_uri: str) -> dict[str, Any]:
    """Trains the seeds' LA101 model (1-unit sigmoid + categorical_crossentropy) on breast_cancer
    for 2 epochs inside an MLflow run, logs what the run "reported" (evaluate's accuracy and loss,
    and the last epoch's accuracy as val_accuracy), logs the model with mlflow.keras, registers it
    as version 1 with alias "champion", and saves the eval data and a local copy of the model.

    In this process (see ``fluent_tracking_uri``), and with the model's pip requirements given:
    MLflow would otherwise load the model in a child process to infer them (a TensorFlow import),
    and nothing here reads them."""
    import mlflow
    import mlflow.keras
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    import keras

    keras.utils.set_random_seed(0)
    x, y = load_breast_cancer(return_X_y=True)
    x = StandardScaler().fit_transform(x).astype("float32")
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    # Keras's and MLflow's warnings about these models (on purpose) stay out of the test output.
    with fluent_tracking_uri(tracking_uri), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = mlflow.MlflowClient()
        existing = client.get_experiment_by_name("training")
        experiment = existing.experiment_id if existing is not None else client.create_experiment("training")
        with mlflow.start_run(experiment_id=experiment) as run:
            history = model.fit(x, y, epochs=2, batch_size=64, verbose=0)
            evaluated = model.evaluate(x, y, verbose=0, return_dict=True)
            mlflow.log_metrics(
                {
                    "accuracy": float(evaluated["accuracy"]),
                    "loss": float(evaluated["loss"]),
                    "val_accuracy": float(history.history["accuracy"][-1]),
                }
            )
            info = mlflow.keras.log_model(
                model, name="model", registered_model_name=MODEL_NAME, pip_requirements=["keras"]
            )
        client.set_registered_model_alias(MODEL_NAME, "champion", "1")
    np.savez(folder / "eval.npz", x=x, y=y)
    model.save(folder / f"{MODEL_NAME}.keras")
    return {"run_id": run.info.run_id, "model_id": info.model_id, "accuracy": float(evaluated["accuracy"])}


@dataclass(frozen=True)
class RegisteredModel:
    server: MlflowServer
    folder: Path
    run_id: str
    model_id: str
    accuracy: float

    @property
    def eval_data(self) -> Path:
        return self.folder / "eval.npz"

    @property
    def model_file(self) -> Path:
        return self.folder / f"{MODEL_NAME}.keras"


def _env(tracking_uri: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {"MLFLOW_TRACKING_URI": tracking_uri, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
    )
    return env


def _lossaudit(args: list[str], tracking_uri: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lossaudit", *args],
        cwd=cwd,
        env=_env(tracking_uri),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def registered(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> RegisteredModel:
    folder = tmp_path_factory.mktemp("registered")
    facts = _register(folder, mlflow_server.uri)
    return RegisteredModel(mlflow_server, folder, facts["run_id"], facts["model_id"], facts["accuracy"])


@pytest.mark.keras
def test_audit_of_a_registered_model_logs_a_failing_run_over_http(
    registered: RegisteredModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit runs in this process (TensorFlow is loaded here once); the real process is
    ``test_with_mlflow_down_the_report_is_complete_and_log_uploads_it_later``'s."""
    from mlflow import MlflowClient

    uri = registered.server.uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(
        app,
        [
            "audit",
            f"models:/{MODEL_NAME}/1",
            "--data",
            str(registered.eval_data),
            "--out",
            "report",
            "--json",
        ],
    )
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    assert done.exit_code == EXIT_FINDINGS, done.output
    printed = json.loads(done.stdout)
    assert printed["verdict"] == "fail"
    logged_line = next(line for line in done.stderr.splitlines() if "logged MLflow run" in line)
    run_id = logged_line.split("logged MLflow run ")[1].split()[0]
    assert logged_line.endswith(f"{uri}/#/experiments/{_experiment_id(uri)}/runs/{run_id}")

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["lossaudit.verdict"] == "fail"
    assert "LA101" in tags["lossaudit.codes"].split(",")
    assert tags["lossaudit.model_uri"] == f"models:/{MODEL_NAME}/1"
    assert tags["lossaudit.model_name"] == MODEL_NAME
    assert tags["lossaudit.model_version"] == "1"
    assert tags["lossaudit.source_run_id"] == registered.run_id
    assert tags["lossaudit.logged_model_id"] == registered.model_id
    # A bare "accuracy" on a training run is taken as measured on the training data: listed, not
    # judged (the generalisation gap is expected); val_accuracy is judged against sampling error.
    assert tags["lossaudit.comparison.source_run.accuracy"] == "not_compared"
    assert run.data.params["head.loss"] == "categorical_crossentropy"
    assert run.data.params["head.units"] == "1"
    # The source run's numbers, compared like the live evaluate's.
    assert metrics["reported.source_run.accuracy"] == pytest.approx(registered.accuracy)
    assert metrics["recomputed.accuracy"] == pytest.approx(registered.accuracy, abs=1e-4)
    local = json.loads((tmp_path / "report" / "report.json").read_text())
    by_key = {(c["source"], c["metric"]): c for c in local["comparisons"]}
    assert by_key[("source_run", "accuracy")]["status"] == "not_compared"
    assert by_key[("source_run", "accuracy")]["measured_on"] == "training"
    assert by_key[("source_run", "loss")]["status"] == "not_compared"
    val = by_key[("source_run", "val_accuracy")]
    assert val["measured_on"] == "other" and val["status"] in ("consistent", "inconsistent")
    assert val["interval"]["n"] == 569
    assert local["context"]["mlflow_source"]["source_run_id"] == registered.run_id
    remote = set(_artifact_files(client, run_id))
    assert {"report.json", "report.md", "report.html", "findings.sarif", "junit.xml"} <= remote
    assert "confusion_matrix.png" in remote
    assert remote == {
        str(p.relative_to(tmp_path / "report"))
        for p in (tmp_path / "report").rglob("*")
        if p.is_file() and p.name != UPLOAD_FILE
    }


def _experiment_id(uri: str) -> str:
    from mlflow import MlflowClient

    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name("lossaudit")
    assert experiment is not None
    return str(experiment.experiment_id)


def test_a_registry_alias_names_the_same_version_and_source_run(registered: RegisteredModel) -> None:
    """The alias resolves, downloads and reads statically without TensorFlow; the full audit path
    is the test above."""
    from lossaudit.sources.mlflow import MlflowModelSource

    source = MlflowModelSource(f"models:/{MODEL_NAME}@champion", tracking_uri=registered.server.uri)
    static = source.read_static()
    assert static.head is not None
    assert (static.head.units, static.head.activation) == (1, "sigmoid")
    assert static.head.loss is not None and static.head.loss.name == "categorical_crossentropy"
    fetched = source.fetch()
    assert fetched.model_file.name == "model.keras"
    assert (fetched.model_name, fetched.model_version) == (MODEL_NAME, "1")
    assert fetched.source_run_id == registered.run_id
    assert fetched.logged_model_id == registered.model_id
    reported = {(m.source, m.name): m.value for m in source.reported_metrics()}
    assert reported[("source_run", "accuracy")] == pytest.approx(registered.accuracy)
    assert set(reported) == {
        ("source_run", "accuracy"),
        ("source_run", "loss"),
        ("source_run", "val_accuracy"),
    }
    assert source.context()["mlflow_source"]["model_uri"] == f"models:/{MODEL_NAME}@champion"


def test_run_and_logged_model_uris_reach_the_same_model(registered: RegisteredModel) -> None:
    from lossaudit.keras.static import read_model_file
    from lossaudit.sources.mlflow import fetch_model

    for uri in (f"runs:/{registered.run_id}/model", f"models:/{registered.model_id}"):
        fetched = fetch_model(uri, tracking_uri=registered.server.uri)
        assert fetched.model_file.name == "model.keras", uri
        assert fetched.source_run_id == registered.run_id, uri
        assert fetched.logged_model_id == registered.model_id, uri
        assert fetched.model_version is None, uri
        assert fetched.reported["accuracy"] == pytest.approx(registered.accuracy), uri
        downloaded, saved = (
            read_model_file(fetched.model_file).head,
            read_model_file(registered.model_file).head,
        )
        assert downloaded is not None and saved is not None
        assert downloaded.with_changes(source="") == saved.with_changes(source=""), uri
        fetched.cleanup()
        assert not fetched.model_dir.exists()


def test_a_registry_model_with_the_server_down_exits_3_with_one_line(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    done = _lossaudit(["audit", f"models:/{MODEL_NAME}/1", "--data", "eval.npz"], dead, tmp_path)
    assert done.returncode == EXIT_TRACKING_UNAVAILABLE
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"lossaudit: error: MLflow tracking server at {dead} is unreachable: connection refused; "
        f"cannot fetch models:/{MODEL_NAME}/1"
    ]
    assert not (tmp_path / "lossaudit-reports").exists()


@pytest.mark.keras
def test_with_mlflow_down_the_report_is_complete_and_log_uploads_it_later(
    registered: RegisteredModel, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    dead = f"http://127.0.0.1:{free_port()}"
    args = ["audit", str(registered.model_file), "--data", str(registered.eval_data), "--out", "report"]
    done = _lossaudit([*args, "--tracking-uri", dead], registered.server.uri, tmp_path)
    assert done.returncode == EXIT_TRACKING_UNAVAILABLE
    assert done.stderr.splitlines() == [
        f"lossaudit: error: MLflow tracking server at {dead} is unreachable: connection refused; the local "
        "report is in report; upload it later with `lossaudit log report`"
    ]
    folder = tmp_path / "report"
    written = {p.name for p in folder.iterdir()}
    assert {
        "report.json",
        "report.md",
        "report.html",
        "findings.sarif",
        "junit.xml",
        "confusion_matrix.png",
    } <= (written)
    local = load_report_dict(folder)
    assert local["verdict"] == "fail"
    assert local["codes"][0] == "LA101"

    result = runner.invoke(app, ["log", str(folder), "--tracking-uri", registered.server.uri, "--json"])
    assert result.exit_code == EXIT_PASS, result.output
    doc = json.loads(result.stdout)
    assert doc["url"] == f"{registered.server.uri}/#/experiments/{doc['experiment_id']}/runs/{doc['run_id']}"
    run = MlflowClient(tracking_uri=registered.server.uri).get_run(doc["run_id"])
    assert run.data.tags["lossaudit.verdict"] == "fail"
    assert run.data.tags["lossaudit.codes"] == ",".join(local["codes"])
    assert run.data.tags["lossaudit.model_uri"] == str(registered.model_file)
