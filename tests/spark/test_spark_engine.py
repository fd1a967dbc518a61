"""``lossaudit audit --engine spark`` against the local engine, on the same data.

pyspark in local mode (``local[1]``, one session for the module). For each model the Spark audit
must give the local audit's confusion matrix and finding codes exactly, and its metrics within
stated bounds: the ratios of counts (accuracy, balanced accuracy, precision, recall, F1, top-k, the
majority baseline) and ROC-AUC to 1e-12, log loss, Brier score and the multi-label 'samples'
averages to 1e-6 relative (their per-row terms are summed in another order), Keras's evaluate
numbers to 1e-6 relative (float32 states merged over partitions).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from lossaudit.cli import app
from lossaudit.core.labels import detect_labels
from lossaudit.core.report import AuditReport
from lossaudit.pipeline.spark_audit import run_spark_audit
from lossaudit.pipeline.stages import AuditOutcome, AuditRequest, run_audit

pytestmark = [pytest.mark.spark, pytest.mark.keras, pytest.mark.slow]

EXACT = 1e-12
RELATIVE = 1e-6
SUMMED = ("log_loss", "brier_score")


@pytest.fixture(scope="module")
def spark(spark_local: Any) -> Iterator[Any]:
    """The folder's local[1] session (tests/spark/conftest.py), with small splits for this module."""
    session = spark_local
    # Small splits: the test files (a few hundred KB) are read as several partitions, so every
    # count and Keras's evaluate are merged across partitions as on big data.
    session.conf.set("spark.sql.files.maxPartitionBytes", "65536")
    session.conf.set("spark.sql.files.openCostInBytes", "0")
    yield session
    session.conf.unset("spark.sql.files.maxPartitionBytes")
    session.conf.unset("spark.sql.files.openCostInBytes")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark_engine")


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y.astype(np.int64)


def _save_model(path: Path, layers: list[Any], loss: Any, x: np.ndarray, y: np.ndarray, **fit: Any) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(layers)
    model.compile(optimizer=fit.pop("optimizer", "adam"), loss=loss, metrics=["accuracy"])
    model.fit(x, y, epochs=fit.pop("epochs", 1), batch_size=64, verbose=0)
    model.save(path)
    return path


def _columns_table(x: np.ndarray, labels: dict[str, np.ndarray]) -> Any:
    import pandas as pd

    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    for name, values in labels.items():
        table[name] = values
    return table


@pytest.fixture(scope="module")
def softmax_case(folder: Path) -> tuple[Path, Path]:
    """Dense(10, softmax) + sparse categorical cross-entropy on digits; one column per feature."""
    import keras

    x, y = _digits()
    model = _save_model(
        folder / "softmax.keras",
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        "sparse_categorical_crossentropy",
        x,
        y,
    )
    data = folder / "softmax.parquet"
    _columns_table(x, {"label": y}).to_parquet(data, row_group_size=400)
    return model, data


@pytest.fixture(scope="module")
def logits_case(folder: Path) -> tuple[Path, Path, Path]:
    """Dense(10) logits + categorical cross-entropy (from_logits) on one-hot digits: locally one
    column per feature and per class; for Spark, one array column of features, one of labels."""
    import pandas as pd

    import keras

    x, y = _digits()
    onehot = np.eye(10, dtype=np.int64)[y]
    model = _save_model(
        folder / "logits.keras",
        [keras.Input((64,)), keras.layers.Dense(10)],
        keras.losses.CategoricalCrossentropy(from_logits=True),
        x,
        onehot.astype(np.float32),
    )
    local = folder / "logits_columns.parquet"
    _columns_table(x, {f"label_{k}": onehot[:, k] for k in range(10)}).to_parquet(local)
    arrays = folder / "logits_arrays.parquet"
    pd.DataFrame({"pixels": list(x), "target": list(onehot)}).to_parquet(arrays, row_group_size=500)
    return model, local, arrays


@pytest.fixture(scope="module")
def one_unit_cce_case(folder: Path) -> tuple[Path, Path]:
    """Dense(1, sigmoid) + categorical cross-entropy on unscaled breast_cancer (LA101, LA501)."""
    from sklearn.datasets import load_breast_cancer

    import keras

    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    model = _save_model(
        folder / "one_unit_cce.keras",
        [keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")],
        "categorical_crossentropy",
        x,
        y.reshape(-1, 1).astype(np.float32),
        optimizer="sgd",
        epochs=3,
    )
    data = folder / "one_unit_cce.parquet"
    _columns_table(x, {"label": y}).to_parquet(data, row_group_size=200)
    return model, data


@pytest.fixture(scope="module")
def multi_hot_case(folder: Path) -> tuple[Path, Path]:
    """Dense(4, sigmoid) + binary cross-entropy on four multi-hot properties of the digits."""
    import keras

    x, y = _digits()
    tags = np.stack([y % 2 == 0, y >= 5, np.isin(y, [2, 3, 5, 7]), y == 0], axis=1).astype(np.int64)
    model = _save_model(
        folder / "multi_hot.keras",
        [keras.Input((64,)), keras.layers.Dense(4, activation="sigmoid")],
        "binary_crossentropy",
        x,
        tags.astype(np.float32),
    )
    data = folder / "multi_hot.parquet"
    _columns_table(x, {f"tag_{j}": tags[:, j] for j in range(4)}).to_parquet(data, row_group_size=600)
    return model, data


def _local(model: Path, data: Path, *labels: str) -> AuditReport:
    return run_audit(AuditRequest(model=str(model), data=str(data), label_columns=labels)).report


def _spark(spark: Any, model: Path, data: Path, *labels: str) -> AuditOutcome:
    return run_spark_audit(AuditRequest(model=str(model), data=str(data), label_columns=labels), spark=spark)


def assert_same_audit(local: AuditReport, spark: AuditReport | dict[str, Any]) -> dict[str, Any]:
    """Identical codes, verdict, confusion matrix and comparisons; metrics within the bounds."""
    ours = local.to_dict()
    theirs = spark if isinstance(spark, dict) else spark.to_dict()
    assert theirs["codes"] == ours["codes"]
    assert theirs["verdict"] == ours["verdict"]
    assert theirs["labels"] == ours["labels"]
    assert theirs["metrics"]["confusion_matrix"] == ours["metrics"]["confusion_matrix"]
    assert theirs["metrics"]["predicted_counts"] == ours["metrics"]["predicted_counts"]
    assert theirs["metrics"]["notes"] == ours["metrics"]["notes"]
    assert theirs["metrics"]["definitions"] == ours["metrics"]["definitions"]
    assert list(theirs["metrics"]["values"]) == list(ours["metrics"]["values"])
    for name, value in ours["metrics"]["values"].items():
        bound = {"rel": RELATIVE} if name in SUMMED or name.endswith("_samples") else {"abs": EXACT}
        assert theirs["metrics"]["values"][name] == pytest.approx(value, **bound), name
    assert theirs["metrics"]["per_class"] == ours["metrics"]["per_class"]
    assert [(c["source"], c["metric"], c["status"]) for c in theirs["comparisons"]] == [
        (c["source"], c["metric"], c["status"]) for c in ours["comparisons"]
    ]
    for mine, other in zip(ours["comparisons"], theirs["comparisons"], strict=True):
        assert other["reported"] == pytest.approx(mine["reported"], rel=RELATIVE)
        assert [m["key"] for m in other["matches"]] == [m["key"] for m in mine["matches"]]
    assert theirs["context"]["built_metrics"] == ours["context"]["built_metrics"]
    assert [(f["code"], f["severity"]) for f in theirs["findings"]] == [
        (f["code"], f["severity"]) for f in ours["findings"]
    ]
    return theirs


def test_cli_spark_audit_equals_local_audit_and_says_where_it_ran(
    spark: Any, softmax_case: tuple[Path, Path], tmp_path: Path
) -> None:
    from lossaudit.sinks.mlflow import run_params

    model, data = softmax_case
    local = _local(model, data, "label")
    out = tmp_path / "report"
    args = ["audit", str(model), "--data", str(data), "--label-column", "label", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--engine", "spark", "--no-log"])
    assert result.exit_code == (1 if local.verdict == "fail" else 0), result.output
    report = json.loads((out / "report.json").read_text())
    assert_same_audit(local, report)
    context = report["context"]
    assert context["engine"] == "spark"
    assert context["rows"] == 1797
    assert context["partitions"] >= 3  # row groups of 400 rows, splits of 64 KiB
    assert context["spark_master"] == "local[1]"
    assert context["data_fingerprint"].startswith("xxhash64-sums:")
    assert [s["name"] for s in report["stages"]] == [s.name for s in local.stages[:-1]]
    # The MLflow run's params are the report context's scalars (the sink a local audit uses).
    params = run_params(report)
    assert (params["context.engine"], params["context.rows"]) == ("spark", "1797")
    assert params["context.partitions"] == str(context["partitions"])


def test_array_columns_on_spark_equal_one_column_each_locally(
    spark: Any, logits_case: tuple[Path, Path, Path]
) -> None:
    model, local_data, arrays = logits_case
    local = _local(model, local_data, "label_*")
    outcome = _spark(spark, model, arrays, "target")
    theirs = assert_same_audit(local, outcome.report)
    assert local.metrics is not None and "top_2_accuracy" in local.metrics.values
    assert theirs["context"]["feature_layout"] == "array"
    assert theirs["context"]["label_layout"] == "array"
    assert [c["metric"] for c in theirs["comparisons"]] == ["accuracy", "loss"]


def test_data_checks_mirror_the_great_expectations_suite(
    spark: Any, logits_case: tuple[Path, Path, Path]
) -> None:
    from lossaudit.keras.static import read_model_file
    from lossaudit.sources.files import load_dataset
    from lossaudit.spark.data import read_eval_data
    from lossaudit.spark.labels import data_checks, summarise
    from lossaudit.validation.gx import validate_with_gx

    model, local_data, arrays = logits_case
    head = read_model_file(model).require_head()
    x, y = load_dataset(local_data, ["label_*"])
    local = validate_with_gx(y, head, x).checks
    data = read_eval_data(spark, str(arrays), ["target"])
    ours = data_checks(data, summarise(data), head)
    assert [(c.name, c.success, c.severity) for c in ours] == [(c.name, c.success, c.severity) for c in local]


def test_faulty_model_gives_the_same_codes(spark: Any, one_unit_cce_case: tuple[Path, Path]) -> None:
    model, data = one_unit_cce_case
    local = _local(model, data, "label")
    outcome = _spark(spark, model, data, "label")
    assert {"LA101", "LA501"} <= set(local.codes)
    theirs = assert_same_audit(local, outcome.report)
    assert theirs["metrics"]["values"]["roc_auc"] is not None  # BinaryClassificationEvaluator


def test_multi_hot_labels_give_the_same_audit(spark: Any, multi_hot_case: tuple[Path, Path]) -> None:
    model, data = multi_hot_case
    local = _local(model, data, "tag_*")
    assert local.metrics is not None and local.metrics.task == "multilabel"
    theirs = assert_same_audit(local, _spark(spark, model, data, "tag_*").report)
    assert theirs["context"]["label_layout"] == "columns"


def test_labels_beyond_the_distinct_bound_are_named_from_aggregates(
    spark: Any, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from lossaudit.spark import labels as spark_labels
    from lossaudit.spark.data import read_eval_data

    monkeypatch.setattr(spark_labels, "DISTINCT_BOUND", 3)
    monkeypatch.setattr(spark_labels, "DISTINCT_CELLS", 0)
    rng = np.random.default_rng(0)
    soft = rng.dirichlet(np.ones(4), size=50)
    ids = rng.integers(0, 40, size=50) * 7
    cases = {"soft": (soft, 4), "ids": (ids, 10)}
    for name, (labels, units) in cases.items():
        path = folder / f"bound_{name}.parquet"
        pd.DataFrame({"x": np.ones(50), "y": list(labels) if labels.ndim == 2 else labels}).to_parquet(path)
        facts = spark_labels.summarise(read_eval_data(spark, str(path), ["y"]))
        assert facts.distinct is None  # beyond the bound: aggregates only
        assert facts.evidence(units) == detect_labels(labels, units=units), name


def test_without_pyspark_the_spark_engine_stops_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "pyspark" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    result = CliRunner().invoke(
        app, ["audit", "model.keras", "--data", "eval.parquet", "--label-column", "y", "--engine", "spark"]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "lossaudit: error: pyspark is not installed: pip install 'lossaudit[spark]'"
    ]


@pytest.mark.parametrize(("case", "how"), [("softmax_case", "--roc-auc bounds"), ("multi_hot_case", "rows")])
def test_beyond_the_exact_rows_roc_auc_is_bounded_around_the_exact_value(
    spark: Any, case: str, how: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ROC_EXACT_ROWS, or with ``--roc-auc bounds``, no row is collected: the score
    histograms bound the ROC-AUC, and the local (exact) value lies between the bounds; every other
    number is unchanged."""
    from lossaudit.spark import stats

    model, data = request.getfixturevalue(case)
    labels = ("label",) if case == "softmax_case" else ("tag_*",)
    local = _local(model, data, *labels).to_dict()["metrics"]
    if how == "rows":
        monkeypatch.setattr(stats, "ROC_EXACT_ROWS", 100)
        outcome = _spark(spark, model, data, *labels)
    else:
        bounded = AuditRequest(model=str(model), data=str(data), label_columns=labels, roc_auc="bounds")
        outcome = run_spark_audit(bounded, spark=spark)
    theirs = outcome.report.to_dict()["metrics"]
    exact = local["values"]["roc_auc"]
    values = theirs["values"]
    if values["roc_auc"] is None:
        assert values["roc_auc_lower"] <= exact <= values["roc_auc_upper"]
        # Barely trained models (scores crowd together; measured 0.0006 to 0.0012 apart): informative.
        assert values["roc_auc_upper"] - values["roc_auc_lower"] < 5e-3
        assert any(note.startswith("ROC-AUC is bounded, not exact here") for note in theirs["notes"])
    else:  # the bounds met: then they are the exact value
        assert values["roc_auc"] == pytest.approx(exact, abs=1e-12)
    others = {k: v for k, v in values.items() if not k.startswith("roc_auc")}
    assert others == pytest.approx(
        {k: v for k, v in local["values"].items() if not k.startswith("roc_auc")}, rel=1e-6
    )
    assert theirs["confusion_matrix"] == local["confusion_matrix"]
