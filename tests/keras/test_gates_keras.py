"""Gates on saved Keras models: the faults issue 8 saw end in exit 2 with no report, audited end to end.

Each case trains (or edits) a tiny model, audits it with ``lossaudit audit`` and asserts the exit
code, the finding codes, and that the report folder is complete: nothing found is lost, and exit 2
is only for input lossaudit cannot read at all. Expected numbers come from scikit-learn here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from typer.testing import CliRunner

from lossaudit.cli import app
from tests.keras.conftest import SavedCase, _cancer, _digits, train_and_save

pytestmark = pytest.mark.keras

REPORT_FILES = {"report.json", "report.md", "report.html", "findings.sarif", "junit.xml"}


def audit(model: Path, data: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        app,
        [
            "audit",
            "--no-log",
            "--no-gx",
            str(model),
            "--data",
            str(data),
            "--out",
            str(out),
            "--json",
            *extra,
        ],
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def assert_complete(out: Path, report: dict[str, Any]) -> None:
    """The report folder holds every format, and report.json is the printed report."""
    assert {p.name for p in out.iterdir()} >= REPORT_FILES
    written = json.loads((out / "report.json").read_text())
    assert (written["verdict"], written["codes"]) == (report["verdict"], report["codes"])


@pytest.fixture(scope="module")
def digits8_case(keras_models_dir: Path) -> SavedCase:
    """Dense(8, softmax) + sparse CE trained on digits 0..7 only, evaluated on all ten digits."""
    x, y = _digits()
    keep = y < 8
    case = train_and_save(
        keras_models_dir,
        "digits8",
        lambda k: [k.Input((64,)), k.layers.Dense(8, activation="softmax")],
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        optimizer="adam",
        x=x[keep],
        y_fit=y[keep],
        y_eval=y[keep],
        epochs=2,
    )
    data = keras_models_dir / "digits_all.npz"
    np.savez(data, x=x, y=y)
    return SavedCase(case.model, data, x, y)


def test_eight_unit_head_against_ten_labels_is_la204_with_a_report(
    digits8_case: SavedCase, tmp_path: Path
) -> None:
    code, report = audit(digits8_case.model, digits8_case.data, tmp_path / "r")
    assert code == 1 and report["verdict"] == "fail"
    assert "LA204" in report["codes"]
    la204 = next(f for f in report["findings"] if f["code"] == "LA204")
    assert "largest label index is 9 but the head has 8 units" in la204["message"]
    assert report["metrics"] is None
    assert [s["status"] for s in report["stages"] if s["name"] == "recompute"] == ["skipped"]
    assert_complete(tmp_path / "r", report)


def test_one_unit_sigmoid_against_four_classes_is_la204(one_unit_bce_case: SavedCase, tmp_path: Path) -> None:
    y4 = np.random.default_rng(0).integers(0, 4, size=one_unit_bce_case.x.shape[0])
    data = tmp_path / "four.npz"
    np.savez(data, x=one_unit_bce_case.x, y=y4)
    code, report = audit(one_unit_bce_case.model, data, tmp_path / "r")
    assert code == 1
    assert "LA204" in report["codes"]
    assert any("(4 classes) but the head has 1 unit" in f["message"] for f in report["findings"])
    assert_complete(tmp_path / "r", report)


def test_diverged_model_predicting_nan_is_la507(one_unit_bce_case: SavedCase, tmp_path: Path) -> None:
    import keras

    model = keras.saving.load_model(one_unit_bce_case.model)
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    path = tmp_path / "nan.keras"
    model.save(path)
    code, report = audit(path, one_unit_bce_case.data, tmp_path / "r")
    assert code == 1
    assert "LA507" in report["codes"]
    la507 = next(f for f in report["findings"] if f["code"] == "LA507")
    assert la507["evidence"] == {"non_finite_rows": 569, "n_rows": 569}
    assert_complete(tmp_path / "r", report)


def test_stated_accuracy_inflated_on_this_data_fails(one_unit_bce_case: SavedCase, tmp_path: Path) -> None:
    import keras

    model = keras.saving.load_model(one_unit_bce_case.model)
    scores = model.predict(one_unit_bce_case.x, verbose=0)[:, 0]
    true = accuracy_score(one_unit_bce_case.y, scores > 0.5)
    stated = f"{min(true + 0.03, 1.0):.3f}"
    code, report = audit(
        one_unit_bce_case.model, one_unit_bce_case.data, tmp_path / "r", "--reported", f"accuracy={stated}"
    )
    assert code == 1
    la504 = next(f for f in report["findings"] if f["code"] == "LA504")
    assert la504["severity"] == "error"
    assert la504["evidence"]["direction"] == "inflated"
    assert la504["evidence"]["correct_value"] == pytest.approx(true, abs=1e-12)


def test_labels_scaled_by_255_under_a_sparse_loss_are_la206(digits8_case: SavedCase, tmp_path: Path) -> None:
    keep = digits8_case.y < 8
    data = tmp_path / "scaled.npz"
    np.savez(data, x=digits8_case.x[keep], y=digits8_case.y[keep] / 255.0)
    code, report = audit(digits8_case.model, data, tmp_path / "r")
    assert code == 1
    assert "LA206" in report["codes"]
    assert_complete(tmp_path / "r", report)


def test_uncompiled_model_says_what_was_not_checked(tmp_path: Path) -> None:
    import keras

    x, y = _cancer(scaled=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")])
    path, data = tmp_path / "uncompiled.keras", tmp_path / "cancer.npz"
    model.save(path)
    np.savez(data, x=x, y=y)
    code, report = audit(path, data, tmp_path / "r")
    assert "LA107" in report["codes"]
    la107 = next(f for f in report["findings"] if f["code"] == "LA107")
    assert la107["severity"] == "warning" and "could not be checked" in la107["message"]
    assert code == (1 if any(f["severity"] == "error" for f in report["findings"]) else 0)


def test_model_keras_cannot_load_is_audited_statically(tmp_path: Path) -> None:
    """A custom layer registered only in the training process: the auditing process cannot
    deserialize it, yet the saved head's fault (1-unit categorical cross-entropy) is found and
    the report is complete (LA101 from the static read, LA701 for the load).

    The audit runs here, after the layer is unregistered again: what Keras finds when it
    deserializes the file is then what another process finds (no class under the name it was
    saved with), without a second TensorFlow import."""
    import keras

    @keras.saving.register_keras_serializable(package="gates")
    class Scale(keras.layers.Layer):  # type: ignore[misc]
        def call(self, inputs: Any) -> Any:
            return inputs * 0.5

    x, y = _cancer(scaled=True)
    model = keras.Sequential([keras.Input((30,)), Scale(), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    path, data = tmp_path / "custom.keras", tmp_path / "cancer.npz"
    model.save(path)
    np.savez(data, x=x, y=y)
    del keras.saving.get_custom_objects()["gates>Scale"]
    with pytest.raises(TypeError, match="Could not locate class 'Scale'"):
        keras.saving.load_model(path)
    code, report = audit(path, data, tmp_path / "r")
    assert code == 1
    assert {"LA101", "LA701"} <= set(report["codes"])
    la701 = next(f for f in report["findings"] if f["code"] == "LA701")
    assert la701["evidence"]["stage"] == "obtain_model"
    assert [s["status"] for s in report["stages"] if s["name"] == "obtain_model"] == ["failed"]
    assert_complete(tmp_path / "r", report)
