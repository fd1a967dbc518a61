"""``lossaudit audit``: the stage pipeline end to end on saved tiny models.

Numbers are checked against scikit-learn computed here on the model's own predictions (Keras's
``model.predict``), never against constants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score
from typer.testing import CliRunner

from lossaudit.cli import app
from lossaudit.core.report import AuditReport
from lossaudit.errors import TrackingUnavailableError
from tests.keras.conftest import SavedCase

pytestmark = pytest.mark.keras

STAGES = [
    "validate_labels",
    "check_compatibility",
    "obtain_model",
    "predict",
    "recompute",
    "compare",
    "report",
]


def run_cli(*args: str) -> Any:
    # --no-log: these tests are about the audit; logging to MLflow is tested with the sink below
    # and in tests/mlflow.
    return CliRunner().invoke(app, ["audit", "--no-log", *args])


def audit_json(case: SavedCase, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run_cli(str(case.model), "--data", str(case.data), "--out", str(out), "--json", *extra)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def comparison(report: dict[str, Any], source: str, metric: str) -> dict[str, Any]:
    found = [c for c in report["comparisons"] if c["source"] == source and c["metric"] == metric]
    assert len(found) == 1, report["comparisons"]
    return found[0]


def test_one_unit_cce_exits_1_with_la101_and_la501(
    one_unit_cce_case: SavedCase, own_predictions: Callable[[SavedCase], np.ndarray], tmp_path: Path
) -> None:
    case = one_unit_cce_case
    code, report = audit_json(case, tmp_path / "report")
    assert code == 1
    assert report["verdict"] == "fail"
    assert {"LA101", "LA501"} <= set(report["codes"])
    predicted = (own_predictions(case)[:, 0] > 0.5).astype(int)
    assert np.unique(predicted).size == 1  # what LA501 says
    accuracy = accuracy_score(case.y, predicted)
    assert report["metrics"]["values"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert report["metrics"]["values"]["majority_baseline"] == pytest.approx(np.bincount(case.y).max() / 569)
    # Keras built BinaryAccuracy for the 1-unit output, as the rules predicted: no LA505.
    assert report["context"]["built_metrics"] == [["accuracy", "BinaryAccuracy"]]
    assert "LA505" not in report["codes"]
    live = comparison(report, "evaluate", "accuracy")
    assert live["status"] == "agrees"
    assert live["reported"] == pytest.approx(accuracy, abs=1e-6)
    assert [s["name"] for s in report["stages"]] == STAGES
    assert all(s["seconds"] >= 0 for s in report["stages"])
    written = json.loads((tmp_path / "report" / "report.json").read_text())
    assert (written["verdict"], written["codes"]) == (report["verdict"], report["codes"])
    assert [s["name"] for s in written["stages"]] == STAGES[:-1]
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "LA101" in markdown and "LA501" in markdown


def test_correct_one_unit_bce_exits_0(
    one_unit_bce_case: SavedCase, own_predictions: Callable[[SavedCase], np.ndarray], tmp_path: Path
) -> None:
    case = one_unit_bce_case
    code, report = audit_json(case, tmp_path / "report")
    assert code == 0
    assert report["verdict"] == "pass"
    assert report["codes"] == []
    scores = own_predictions(case)[:, 0]
    values = report["metrics"]["values"]
    assert values["accuracy"] == pytest.approx(accuracy_score(case.y, scores > 0.5), abs=1e-12)
    assert values["roc_auc"] == pytest.approx(roc_auc_score(case.y, scores), abs=1e-9)
    assert comparison(report, "evaluate", "accuracy")["status"] == "agrees"
    context = report["context"]
    assert context["n_samples"] == 569
    assert context["output_kind"] == "probabilities"
    assert len(context["data_sha256"]) == 64
    assert context["evaluate"]["accuracy"] == pytest.approx(values["accuracy"], abs=1e-6)


def test_softmax_bce_digits_la103_and_the_evaluate_agrees(
    softmax_bce_digits_case: SavedCase, own_predictions: Callable[[SavedCase], np.ndarray], tmp_path: Path
) -> None:
    case = softmax_bce_digits_case
    probs = own_predictions(case)
    argmax_accuracy = accuracy_score(case.y.argmax(axis=1), probs.argmax(axis=1))
    elementwise = float(np.mean((probs > 0.5) == case.y))
    assert abs(elementwise - argmax_accuracy) > 0.05  # the two definitions really differ here

    code, report = audit_json(case, tmp_path / "report", "--reported", f"accuracy={elementwise:.6f}")
    assert code == 1
    assert "LA103" in report["codes"]
    # Keras 3 resolves 'accuracy' from the shapes: CategoricalAccuracy, the honest argmax.
    assert report["context"]["built_metrics"] == [["accuracy", "CategoricalAccuracy"]]
    assert "LA505" not in report["codes"]
    live = comparison(report, "evaluate", "accuracy")
    assert live["status"] == "agrees"
    assert live["correct"]["value"] == pytest.approx(argmax_accuracy, abs=1e-12)
    assert report["metrics"]["values"]["accuracy"] == pytest.approx(argmax_accuracy, abs=1e-12)
    # The number a past run reported is elementwise binary accuracy over the 10 outputs.
    stated = comparison(report, "user", "accuracy")
    assert stated["status"] == "wrong_definition"
    assert stated["matches"][0]["key"] == "elementwise_binary_0.5"
    assert stated["matches"][0]["value"] == pytest.approx(elementwise, abs=1e-12)
    la503 = [f for f in report["findings"] if f["code"] == "LA503"]
    assert len(la503) == 1
    assert "elementwise binary accuracy at 0.5 over 10 outputs" in la503[0]["message"]
    assert la503[0]["evidence"]["source"] == "user"


def test_keras_refusing_index_labels_is_reported_not_exit_2(
    softmax_cce_index_labels_case: SavedCase,
    own_predictions: Callable[[SavedCase], np.ndarray],
    tmp_path: Path,
) -> None:
    case = softmax_cce_index_labels_case
    code, report = audit_json(case, tmp_path / "report")
    assert code == 1
    assert "LA201" in report["codes"]
    context = report["context"]
    assert "must have the same rank" in context["evaluate_error"]
    assert context["evaluate"] == {}
    assert context["built_metrics"] is None
    assert report["comparisons"] == []
    accuracy = accuracy_score(case.y, own_predictions(case).argmax(axis=1))
    assert report["metrics"]["values"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)


def test_text_output_and_report_folder(one_unit_cce_case: SavedCase, tmp_path: Path) -> None:
    out = tmp_path / "text"
    result = run_cli(str(one_unit_cce_case.model), "--data", str(one_unit_cce_case.data), "--out", str(out))
    assert result.exit_code == 1
    assert "LA101 error" in result.stdout
    assert "verdict: fail" in result.stdout
    assert f"lossaudit: report written to {out}" in result.stderr
    assert {"report.json", "report.md"} <= {p.name for p in out.iterdir()}


def test_lambda_model_needs_unsafe(lambda_case: SavedCase, tmp_path: Path) -> None:
    refused = run_cli(str(lambda_case.model), "--data", str(lambda_case.data), "--out", str(tmp_path / "a"))
    assert refused.exit_code == 2
    assert refused.stderr.splitlines() == [
        "lossaudit: error: model has Lambda layer(s) halve; refusing to deserialize code: "
        "pass --unsafe to load it anyway"
    ]
    assert not (tmp_path / "a").exists()

    code, report = audit_json(lambda_case, tmp_path / "b", "--unsafe")
    assert code == 0
    assert report["context"]["unsafe_load"] is True
    assert report["context"]["lambda_layers"] == ["halve"]


def _subprocess_audit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "lossaudit", "audit", "--no-log", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_refusals_are_one_line_from_the_real_command(
    lambda_case: SavedCase, truncated_model: Path, one_unit_bce_case: SavedCase, tmp_path: Path
) -> None:
    lam = _subprocess_audit(str(lambda_case.model), "--data", str(lambda_case.data), "--out", str(tmp_path))
    assert lam.returncode == 2
    assert lam.stdout == ""
    assert len(lam.stderr.splitlines()) == 1
    assert "Lambda layer(s) halve" in lam.stderr

    cut = _subprocess_audit(
        str(truncated_model), "--data", str(one_unit_bce_case.data), "--out", str(tmp_path)
    )
    assert cut.returncode == 2
    assert cut.stdout == ""
    lines = cut.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("lossaudit: error: ") and str(truncated_model) in lines[0]


def test_bad_requests_exit_2(one_unit_bce_case: SavedCase, tmp_path: Path) -> None:
    case = one_unit_bce_case
    no_train = run_cli(str(case.model), "--data", str(case.data), "--retrain")
    assert no_train.exit_code == 2
    assert no_train.stderr.strip() == "lossaudit: error: --retrain needs training data: pass --train TRAIN"
    bad_reported = run_cli(str(case.model), "--data", str(case.data), "--reported", "accuracy")
    assert bad_reported.exit_code == 2
    assert "--reported takes NAME=VALUE" in bad_reported.stderr
    digits = tmp_path / "digits.npz"
    np.savez(digits, x=np.zeros((5, 64), dtype=np.float32), y=np.zeros(5, dtype=np.int64))
    wrong_shape = run_cli(str(case.model), "--data", str(digits), "--out", str(tmp_path / "r"))
    assert wrong_shape.exit_code == 2
    assert wrong_shape.stderr.splitlines() == [
        "lossaudit: error: the model takes inputs of shape (n, 30) but x has shape (5, 64)"
    ]


def test_retrain_proves_the_fix_of_the_one_unit_cce(one_unit_cce_case: SavedCase, tmp_path: Path) -> None:
    case = one_unit_cce_case
    code, report = audit_json(
        case,
        tmp_path / "report",
        "--retrain",
        "--train",
        str(case.data),
        "--epochs",
        "3",
        "--retrain-seeds",
        "1",
    )
    assert code == 1
    retrain = report["context"]["retrain"]
    assert retrain["fix_applied"] == "activation=sigmoid, loss=binary_crossentropy, from_logits=False"
    assert retrain["before_accuracy"] == pytest.approx(report["metrics"]["values"]["accuracy"], abs=0.05)
    assert retrain["after_accuracy"] > retrain["majority_baseline"] + 0.02
    assert retrain["proven"] is True
    assert retrain["summary"] == (
        f"fix proven: accuracy {retrain['before_accuracy']:.3f} -> {retrain['after_accuracy']:.3f}"
    )


@dataclass
class RecordingSink:
    """A sink that keeps what it was sent, or fails like an unreachable tracking server."""

    fail: bool = False
    sent: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "recording"

    def send(self, report: AuditReport, files: Mapping[str, Path]) -> Mapping[str, Any]:
        if self.fail:
            raise TrackingUnavailableError("tracking server http://127.0.0.1:9 is unreachable")
        self.sent.append((report.verdict, sorted(files)))
        return {"received": len(files)}


def test_runner_times_every_stage_and_calls_sinks_after_the_folder(
    one_unit_cce_case: SavedCase, tmp_path: Path
) -> None:
    from lossaudit.pipeline.stages import AuditRequest, run_audit

    case = one_unit_cce_case
    request = AuditRequest(model=str(case.model), data=str(case.data), out_dir=str(tmp_path / "ok"))
    ticks = iter(range(100))
    sink = RecordingSink()
    outcome = run_audit(request, sinks=[sink], clock=lambda: float(next(ticks)))
    assert [s.name for s in outcome.report.stages] == [*STAGES, "log"]
    # The injected clock advances by one per reading: every stage lasted exactly one tick.
    assert [s.seconds for s in outcome.report.stages] == [1.0] * 8
    assert sink.sent == [("fail", sorted(outcome.files))]
    assert "report.json" in outcome.files
    assert outcome.sink_results == {"recording": {"received": len(outcome.files)}}
    assert outcome.sink_error is None

    told: list[str] = []
    down = run_audit(
        AuditRequest(
            model=str(case.model), data=str(case.data), out_dir=str(tmp_path / "down"), batch_size=100
        ),
        sinks=[RecordingSink(fail=True)],
        progress=told.append,
    )
    # Each stage says what it does; predict counts its rows as the batches go (569 in 6 batches).
    rows = [t for t in told if t.startswith("predicting the eval set")]
    assert rows == [
        "predicting the eval set",
        *(f"predicting the eval set: {done} of 569 rows" for done in (100, 200, 300, 400, 500, 569)),
    ]
    assert told[0] == "validating the labels (Great Expectations)"
    assert isinstance(down.sink_error, TrackingUnavailableError)
    assert down.report.stages[-1].status == "failed"
    assert down.report.stages[-1].summary == "recording: tracking server http://127.0.0.1:9 is unreachable"
    assert json.loads((tmp_path / "down" / "report.json").read_text())["verdict"] == "fail"


def test_legacy_h5_is_judged_by_the_keras_that_saved_it(tmp_path: Path) -> None:
    model = Path(__file__).resolve().parent.parent / "data" / "models" / "keras224_bce_softmax.h5"
    rng = np.random.default_rng(0)
    data = tmp_path / "eval.npz"
    np.savez(data, x=rng.normal(size=(60, 4)).astype(np.float32), y=np.eye(10)[np.arange(60) % 10])
    result = run_cli(str(model), "--data", str(data), "--out", str(tmp_path / "r"), "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    # Keras 2.2.4 resolved 'accuracy' with a BCE loss to elementwise binary accuracy (LA401); the
    # live Keras 3 evaluate built CategoricalAccuracy, which says nothing against that (no LA505).
    assert {"LA103", "LA401"} <= set(report["codes"])
    assert "LA505" not in report["codes"]
    assert report["head"]["keras_family"] == "legacy"
    assert report["context"]["built_metrics"] == [["accuracy", "CategoricalAccuracy"]]
    assert "keras224_bce_softmax.h5 was saved by Keras 2.2.4: loaded with compile=False" in " ".join(
        report["context"]["notes"]
    )


def test_great_expectations_result_and_data_docs_are_kept(
    one_unit_bce_case: SavedCase, tmp_path: Path
) -> None:
    """The validate_labels stage runs the head-derived suite; its result and Data Docs land in the
    report folder, and the stage summary counts the expectations."""
    out = tmp_path / "report"
    code, report = audit_json(one_unit_bce_case, out)
    assert code == 0
    gx_result = json.loads((out / "gx_result.json").read_text())
    assert gx_result["success"] is True
    assert len(gx_result["results"]) >= 3  # label in {0, 1}, not null, features finite
    assert (out / "gx_docs" / "index.html").is_file()
    summary = next(s["summary"] for s in report["stages"] if s["name"] == "validate_labels")
    n = len(gx_result["results"])
    assert f"Great Expectations: {n}/{n} passed" in summary
    # --no-gx: no suite, no files, nothing in the summary.
    code, report = audit_json(one_unit_bce_case, tmp_path / "plain", "--no-gx")
    assert code == 0
    assert not (tmp_path / "plain" / "gx_result.json").exists()
    assert not (tmp_path / "plain" / "gx_docs").exists()


def test_threshold_on_the_recomputed_metric_fails_the_audit(
    one_unit_bce_case: SavedCase, own_predictions: Callable[[SavedCase], np.ndarray], tmp_path: Path
) -> None:
    case = one_unit_bce_case
    accuracy = accuracy_score(case.y, own_predictions(case)[:, 0] > 0.5)
    code, report = audit_json(case, tmp_path / "a", "--no-gx", "--threshold", f"accuracy={accuracy + 0.001}")
    assert code == 1
    assert report["codes"] == ["LA506"]
    assert report["findings"][0]["evidence"]["value"] == pytest.approx(accuracy, abs=1e-12)
    code, report = audit_json(case, tmp_path / "b", "--no-gx", "--threshold", f"accuracy={accuracy - 0.001}")
    assert (code, report["codes"]) == (0, [])
    result = run_cli(str(case.model), "--data", str(case.data), "--threshold", "accuracy=high")
    assert result.exit_code == 2


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_table_is_audited_as_its_npz(
    fmt: str,
    softmax_bce_digits_case: SavedCase,
    one_unit_bce_case: SavedCase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same rows as Parquet (one-hot labels in 10 columns, by a glob) or CSV (index labels):
    streamed in several batches into the spill, they give the .npz's report and data hash, and
    the spill is gone (no file, no mapping, no open descriptor) once the audit is over."""
    import gc

    import pandas as pd

    from lossaudit.sources import tables

    case = softmax_bce_digits_case if fmt == "parquet" else one_unit_bce_case
    frame = pd.DataFrame(case.x, columns=[f"f{i}" for i in range(case.x.shape[1])])
    if case.y.ndim == 2:
        frame = frame.join(pd.DataFrame(case.y, columns=[f"label_{k}" for k in range(case.y.shape[1])]))
        label = "label_*"
    else:
        frame["label"] = case.y
        label = "label"
    data = tmp_path / f"eval.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(data, row_group_size=500)
    else:
        frame.to_csv(data, index=False)
    spill = tmp_path / "tmp"
    spill.mkdir()
    monkeypatch.setattr(tables, "BATCH_BYTES", 64 * 1024)  # several batches, rows per batch < n
    appended: list[int] = []
    original = tables.FeatureSpill.append

    def counting(self: tables.FeatureSpill, block: np.ndarray) -> None:
        appended.append(len(block))
        original(self, block)

    monkeypatch.setattr(tables.FeatureSpill, "append", counting)
    _, expected = audit_json(case, tmp_path / "npz")
    monkeypatch.setattr("tempfile.tempdir", str(spill))
    result = run_cli(str(case.model), "--data", str(data), "--label-column", label, "--json")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    report = json.loads(result.stdout)
    assert len(appended) > 2 and sum(appended) == len(case.y)
    assert (report["verdict"], report["codes"]) == (expected["verdict"], expected["codes"])
    assert report["metrics"] == expected["metrics"]
    assert report["context"]["evaluate"] == expected["context"]["evaluate"]
    assert report["context"]["data_sha256"] == expected["context"]["data_sha256"]
    dataset = report["context"]["dataset"]
    assert dataset["profile"] == expected["context"]["dataset"]["profile"]
    assert dataset["digest"] == expected["context"]["dataset"]["digest"]
    assert dataset["features_dtype"] == "float32"
    gc.collect()
    maps = Path("/proc/self/maps")
    if maps.exists():
        assert str(spill) not in maps.read_text()
        assert not [target for target in _open_files() if target.startswith(str(spill))]
    assert not [p for p in spill.iterdir() if p.name.startswith("lossaudit-")]


def _open_files() -> list[str]:
    """What this process's file descriptors point at (Linux)."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the descriptor listdir used, closed since
            continue
    return targets


@pytest.mark.parametrize(
    "case_name",
    ["one_unit_cce_case", "one_unit_bce_case", "softmax_bce_digits_case", "softmax_cce_index_labels_case"],
)
def test_roc_auc_bounds_keeps_no_prediction_and_gives_the_exact_audit_otherwise(
    case_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """``--roc-auc bounds`` folds every batch into counts: the same verdict, codes, comparisons,
    confusion matrix and metrics as the default audit, ROC-AUC bounded around the exact value."""
    case: SavedCase = request.getfixturevalue(case_name)
    code, exact = audit_json(case, tmp_path / "exact", "--no-gx")
    code_b, bounded = audit_json(case, tmp_path / "bounds", "--no-gx", "--roc-auc", "bounds")
    assert code_b == code
    assert bounded["verdict"] == exact["verdict"] and bounded["codes"] == exact["codes"]
    assert bounded["context"]["roc_auc"] == "bounds" and exact["context"]["roc_auc"] == "exact"
    predict = next(s for s in bounded["stages"] if s["name"] == "predict")
    assert "folded into counts (not kept)" in predict["summary"]
    assert [(c["source"], c["metric"], c["status"]) for c in bounded["comparisons"]] == [
        (c["source"], c["metric"], c["status"]) for c in exact["comparisons"]
    ]
    ours, theirs = bounded["metrics"], exact["metrics"]
    assert ours["confusion_matrix"] == theirs["confusion_matrix"]
    same = {k: v for k, v in theirs["values"].items() if k != "roc_auc"}
    assert {k: ours["values"][k] for k in same} == pytest.approx(same, rel=1e-9, abs=1e-12)
    true_auc = theirs["values"].get("roc_auc")
    if true_auc is not None:
        lower = ours["values"].get("roc_auc_lower", ours["values"].get("roc_auc"))
        upper = ours["values"].get("roc_auc_upper", ours["values"].get("roc_auc"))
        assert lower <= true_auc + 1e-12 and true_auc - 1e-12 <= upper
