"""``lossaudit registry --engine spark`` against the local engine, on the same registry.

The registry: 3 versions of 2 models in a SQLite store, tiny one-layer Keras models trained for a
few epochs with a fixed seed (built in the test process, as ``tests/mlflow/test_registry.py`` builds
its own):

* ``rs_bc`` (breast_cancer; eval data: the ``--data`` mapping): v1 1-unit sigmoid + binary
  cross-entropy (correct), v2 1-unit softmax + binary cross-entropy (LA102, LA501);
* ``rs_iris`` (iris; eval data: the version tag ``lossaudit.data`` naming a ``runs:/`` artifact,
  which the driver downloads and the executors could download again): v1 3-unit softmax + sparse
  categorical cross-entropy (correct).

The local engine audits them first; then ``--engine spark --master local[2] --force`` audits them
again on the folder's (active) Spark session, and must give the same verdicts, codes and tags, one audit
run per version nested under its summary run, and the same exit code. The crash test needs no
TensorFlow: a task function that kills its Python worker for one version.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from lossaudit.cli import app
from lossaudit.errors import EXIT_BAD_INPUT, EXIT_FINDINGS, BadInputError
from lossaudit.registry.options import RegistryOptions
from lossaudit.registry.spark_workers import (
    SPARK_CRASH_REASON,
    run_spark_tasks,
    spark_failure_reason,
)
from lossaudit.registry.tags import (
    TAG_AUDIT_RUN,
    TAG_CODES,
    TAG_DATA_HASH,
    TAG_ERROR,
    TAG_RULES_VERSION,
    TAG_VERDICT,
)
from lossaudit.registry.workers import ERROR_CRASH, eval_data_file
from tests.mlflow.conftest import (  # noqa: F401  (migrated_empty_db: a fixture)
    copy_store,
    fluent_tracking_uri,
    migrated_empty_db,
    train_dense,
)

pytestmark = pytest.mark.spark

runner = CliRunner()
VERSIONS = [("rs_bc", "1"), ("rs_bc", "2"), ("rs_iris", "1")]


def _build(folder: Path, tracking_uri: str) -> str:
    """Train, log and register the three versions (in this process: see ``fluent_tracking_uri``);
    the eval data files in ``folder``; the ``runs:/`` URI of the iris eval data."""
    import mlflow
    import mlflow.keras
    from sklearn.datasets import load_breast_cancer, load_iris

    def standardised(x: np.ndarray) -> np.ndarray:
        return ((x - x.mean(axis=0)) / x.std(axis=0)).astype("float32")

    x_bc, y_bc = load_breast_cancer(return_X_y=True)
    x_bc = standardised(x_bc)
    x_ir, y_ir = load_iris(return_X_y=True)
    x_ir = standardised(x_ir)
    np.savez(folder / "bc.npz", x=x_bc, y=y_bc.astype("int64"))
    np.savez(folder / "iris.npz", x=x_ir, y=y_ir.astype("int64"))

    # Keras's and MLflow's warnings about these models (on purpose) stay out of the test output.
    with fluent_tracking_uri(tracking_uri), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = mlflow.MlflowClient()
        experiment = client.create_experiment("rs-training", artifact_location=(folder / "training").as_uri())

        def register(name: str, model: Any, artifact: Path | None = None) -> str:
            with mlflow.start_run(experiment_id=experiment, run_name=name) as run:
                if artifact is not None:
                    mlflow.log_artifact(str(artifact), "eval")
                mlflow.keras.log_model(
                    model, name="model", registered_model_name=name, pip_requirements=["keras"]
                )
            return str(run.info.run_id)

        register("rs_bc", train_dense(x_bc, y_bc, 1, "sigmoid", "binary_crossentropy"))
        register("rs_bc", train_dense(x_bc, y_bc, 1, "softmax", "binary_crossentropy", epochs=2))
        iris = train_dense(x_ir, y_ir, 3, "softmax", "sparse_categorical_crossentropy")
        run_id = register("rs_iris", iris, folder / "iris.npz")
        uri = f"runs:/{run_id}/eval/iris.npz"
        client.set_model_version_tag("rs_iris", "1", "lossaudit.data", uri)
    return uri


@dataclass(frozen=True)
class Registry:
    uri: str
    folder: Path
    iris_uri: str

    def args(self, experiment: str, *extra: str) -> list[str]:
        return [
            "registry",
            "--name",
            "rs_*",
            "--data",
            f"rs_bc={self.folder / 'bc.npz'}",
            "--tracking-uri",
            self.uri,
            "--experiment",
            experiment,
            "--out",
            str(self.folder / f"reports-{experiment}"),
            "--json",
            *extra,
        ]


@pytest.fixture(scope="module")
def registry(migrated_empty_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Registry:  # noqa: F811
    folder = tmp_path_factory.mktemp("registry_spark")
    uri = copy_store(migrated_empty_db, folder / "store")
    return Registry(uri, folder, _build(folder, uri))


def _client(registry: Registry) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)


def _tags(registry: Registry) -> dict[tuple[str, str], dict[str, str]]:
    client = _client(registry)
    return {(n, v): dict(client.get_model_version(n, v).tags) for n, v in VERSIONS}


@dataclass(frozen=True)
class Runs:
    """The registry audited by the local engine, then again (--force) by the Spark engine."""

    local: Result
    local_doc: Mapping[str, Any]
    local_tags: Mapping[tuple[str, str], Mapping[str, str]]
    spark: Result
    spark_doc: Mapping[str, Any]
    spark_tags: Mapping[tuple[str, str], Mapping[str, str]]


@pytest.fixture(scope="module")
def runs(registry: Registry, spark_local: Any) -> Runs:
    local = runner.invoke(app, registry.args("rs-local"))
    local_tags = _tags(registry)
    spark = runner.invoke(
        app, registry.args("rs-spark", "--force", "--engine", "spark", "--master", "local[2]")
    )
    return Runs(
        local=local,
        local_doc=json.loads(local.stdout),
        local_tags=local_tags,
        spark=spark,
        spark_doc=json.loads(spark.stdout),
        spark_tags=_tags(registry),
    )


def _by_version(doc: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(v["model"], v["version"]): v for v in doc["versions"]}


SAME = ("verdict", "verdict_source", "status", "codes", "data_origin", "data_hash", "error_kind")
SAME_TAGS = (TAG_VERDICT, TAG_CODES, TAG_DATA_HASH, TAG_RULES_VERSION)


@pytest.mark.keras
@pytest.mark.mlflow
@pytest.mark.slow
def test_spark_gives_the_local_verdicts_codes_tags_and_exit_code(runs: Runs, spark_local: Any) -> None:
    assert runs.local.exit_code == EXIT_FINDINGS, runs.local.output[-3000:]
    assert runs.spark.exit_code == runs.local.exit_code, runs.spark.output[-3000:]
    local, spark = _by_version(runs.local_doc), _by_version(runs.spark_doc)
    assert list(spark) == list(local) == VERSIONS
    assert {key: (v["verdict"], tuple(v["codes"])) for key, v in local.items()} == {
        ("rs_bc", "1"): ("pass", ()),
        ("rs_bc", "2"): ("fail", ("LA102", "LA501")),
        ("rs_iris", "1"): ("pass", ()),
    }
    for key in VERSIONS:
        assert {k: spark[key][k] for k in SAME} == {k: local[key][k] for k in SAME}, key
        assert {k: runs.spark_tags[key][k] for k in SAME_TAGS} == {
            k: runs.local_tags[key][k] for k in SAME_TAGS
        }
        assert runs.spark_tags[key][TAG_AUDIT_RUN] == spark[key]["audit_run"] != local[key]["audit_run"]
        assert TAG_ERROR not in runs.spark_tags[key]
        # Local master: the executors wrote the report folders where the driver asked.
        assert Path(spark[key]["report_dir"], "report.json").is_file()
    assert runs.spark_doc["summary"] == runs.local_doc["summary"]
    assert (runs.local_doc["engine"], runs.local_doc["master"], runs.local_doc["spark_version"]) == (
        "local",
        None,
        None,
    )
    # The folder's session is active, so it is used whatever --master asked: the summary says
    # where the versions really ran.
    assert (runs.spark_doc["engine"], runs.spark_doc["master"], runs.spark_doc["spark_version"]) == (
        "spark",
        spark_local.sparkContext.master,
        spark_local.version,
    )
    assert runs.spark_doc["workers"] == spark_local.sparkContext.defaultParallelism
    # One line per version on stderr as it finishes, as with the local engine.
    lines = sorted(line for line in runs.spark.stderr.splitlines() if line.startswith("lossaudit: rs_"))
    assert lines == [
        "lossaudit: rs_bc v1: pass (fresh)",
        "lossaudit: rs_bc v2: fail (fresh)",
        "lossaudit: rs_iris v1: pass (fresh)",
    ]


@pytest.mark.keras
@pytest.mark.mlflow
@pytest.mark.slow
def test_each_spark_audit_is_a_run_nested_under_the_summary_run(registry: Registry, runs: Runs) -> None:
    client = _client(registry)
    doc = runs.spark_doc
    summary = client.get_run(doc["summary_run"])
    assert summary.info.status == "FINISHED"
    assert summary.data.tags["lossaudit.verdict"] == "fail"
    params = summary.data.params
    assert (params["engine"], params["master"], params["spark_version"], params["workers"]) == (
        "spark",
        doc["master"],
        doc["spark_version"],
        str(doc["workers"]),
    )
    assert client.get_run(runs.local_doc["summary_run"]).data.params["engine"] == "local"
    children = client.search_runs(
        [summary.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{doc['summary_run']}'"
    )
    assert sorted(r.info.run_id for r in children) == sorted(v["audit_run"] for v in doc["versions"])
    for run in children:
        key = (run.data.tags["lossaudit.model_name"], run.data.tags["lossaudit.model_version"])
        assert run.data.tags["lossaudit.verdict"] == runs.spark_tags[key][TAG_VERDICT]
        assert run.data.params["data_hash"] == runs.spark_tags[key][TAG_DATA_HASH]


@pytest.mark.keras
@pytest.mark.mlflow
@pytest.mark.slow
def test_a_spark_rerun_that_skips_every_version_never_starts_spark(
    registry: Registry, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lossaudit.registry.spark_workers import SparkTasks

    def refuse(self: SparkTasks) -> Any:
        raise AssertionError("Spark was started for a job with nothing to audit")

    monkeypatch.setattr(SparkTasks, "start", refuse)
    result = runner.invoke(app, registry.args("rs-spark", "--engine", "spark", "--master", "local[2]"))
    assert result.exit_code == EXIT_FINDINGS, result.output[-3000:]  # the stored fail of rs_bc v2
    doc = json.loads(result.stdout)
    assert [v["status"] for v in doc["versions"]] == ["skipped"] * 3
    assert (doc["engine"], doc["master"], doc["spark_version"]) == ("spark", "local[2]", None)
    assert _tags(registry) == runs.spark_tags


# --- the Spark task runner, without TensorFlow ---------------------------------------------------


def test_a_python_worker_that_dies_crashes_only_its_version(spark_local: Any, tmp_path: Path) -> None:
    starts = tmp_path / "starts"

    def crash_on_version_2(task: dict[str, Any]) -> dict[str, Any]:
        if task["version"] == "2":
            os._exit(9)
        return {"model": task["model"], "version": task["version"], "verdict": "pass", "pid": os.getpid()}

    def record_start(threads: int) -> None:
        with open(starts, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {threads}\n")

    tasks = [{"model": "m", "version": str(v)} for v in range(1, 5)]
    seen: list[str] = []
    results: dict[str, dict[str, Any]] = {}

    def on_result(task: dict[str, Any], result: dict[str, Any]) -> None:
        seen.append(task["version"])
        results[task["version"]] = result

    run_spark_tasks(
        spark_local.sparkContext,
        tasks,
        slots=2,
        on_result=on_result,
        fn=crash_on_version_2,
        initializer=record_start,
    )
    assert sorted(seen) == ["1", "2", "3", "4"]  # one result per version
    assert {v: r["verdict"] for v, r in results.items()} == {
        "1": "pass",
        "2": "error",
        "3": "pass",
        "4": "pass",
    }
    assert results["2"]["error_kind"] == ERROR_CRASH
    assert results["2"]["error"] == f"{SPARK_CRASH_REASON}: Python worker exited unexpectedly (crashed)"
    # The others ran in the executors' Python workers, each started once with one core's threads.
    assert all(results[v]["pid"] != os.getpid() for v in ("1", "3", "4"))
    lines = starts.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(lines)) and {line.split()[1] for line in lines} == {"1"}
    assert {str(results[v]["pid"]) for v in ("1", "3", "4")} <= {line.split()[0] for line in lines}


def test_the_failure_reason_is_the_lost_tasks_reason() -> None:
    text = (
        "An error occurred while calling z:org.apache.spark.api.python.PythonRDD.collectAndServe.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 3.0 failed 4 "
        "times, most recent failure: Lost task 0.3 in stage 3.0 (TID 9) (10.0.0.7 executor 2): "
        "ExecutorLostFailure (executor 2 exited caused by one of the running tasks) Reason: Container "
        "killed by YARN for exceeding memory limits.\n\tat org.apache.spark..."
    )
    assert spark_failure_reason(RuntimeError(text)) == (
        "ExecutorLostFailure (executor 2 exited caused by one of the running tasks) Reason: Container "
        "killed by YARN for exceeding memory limits."
    )
    assert spark_failure_reason(RuntimeError("An error occurred while calling x.\n: boom\n")) == "boom"


# --- options, the CLI and pipeline files ----------------------------------------------------------


def test_the_summary_says_where_the_versions_were_audited() -> None:
    from lossaudit.registry.render import render_markdown, render_table
    from lossaudit.registry.results import RegistrySummary, VersionResult

    version = VersionResult(model="m", version="1", verdict="pass")
    ran = RegistrySummary((version,), workers=2, engine="spark", master="local[2]", spark_version="4.3.0")
    line = "engine spark: audited on master local[2] (Spark 4.3.0), up to 2 version(s) at once"
    assert render_table(ran).splitlines()[-1] == line
    assert f"- {line}" in render_markdown(ran)
    assert (ran.to_dict()["engine"], ran.to_dict()["master"], ran.to_dict()["spark_version"]) == (
        "spark",
        "local[2]",
        "4.3.0",
    )
    idle = RegistrySummary((version,), engine="spark", master="local[*]")
    assert render_table(idle).splitlines()[-1] == (
        "engine spark: Spark was not started (no version to audit); master local[*]"
    )
    assert "engine" not in render_table(RegistrySummary((version,)))


def test_without_pyspark_the_spark_engine_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.mlflow.conftest import free_port

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a)
    )
    dead = f"http://127.0.0.1:{free_port()}"  # never asked: MLflow down would be exit 3
    result = runner.invoke(
        app, ["registry", "--engine", "spark", "--tracking-uri", dead, "--out", str(tmp_path)]
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "lossaudit: error: pyspark is not installed: pip install 'lossaudit[spark]'"
    ]


def test_master_goes_with_the_spark_engine(tmp_path: Path) -> None:
    result = runner.invoke(app, ["registry", "--master", "local[2]", "--out", str(tmp_path)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.splitlines() == ["lossaudit: error: --master goes with --engine spark"]
    with pytest.raises(BadInputError, match="--engine must be one of local, spark, got 'dask'"):
        RegistryOptions(engine="dask")
    assert RegistryOptions(engine="spark", master=" ").master is None  # ${SPARK_MASTER:-}: not given


def test_a_registry_pipeline_file_takes_engine_and_master(tmp_path: Path) -> None:
    from lossaudit.pipeline.config import load_pipeline

    path = tmp_path / "scheduled.yaml"
    path.write_text(
        "kind: registry\nengine: spark\nmaster: spark://head:7077\nregistry: {name: 'digits*', workers: 4}\n",
        encoding="utf-8",
    )
    options = RegistryOptions.from_pipeline(load_pipeline(path))
    assert (options.engine, options.master, options.workers) == ("spark", "spark://head:7077", 4)
    path.write_text("kind: registry\nengine: dask\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="engine: must be local or spark, got 'dask'"):
        load_pipeline(path)


@pytest.mark.mlflow
def test_an_executor_that_cannot_see_the_drivers_download_fetches_the_artifact(
    registry: Registry, tmp_path: Path
) -> None:
    """On a cluster the driver's temporary download is not on the executor: it downloads the
    version's ``runs:/`` URI itself (here: a path that does not exist stands for the driver's)."""
    task = {
        "data": str(tmp_path / "driver-only" / "iris.npz"),
        "data_uri": registry.iris_uri,
        "tracking_uri": registry.uri,
    }
    local = Path(eval_data_file(task, tmp_path / "executor"))
    assert local.is_relative_to(tmp_path / "executor")
    with np.load(local) as got, np.load(registry.folder / "iris.npz") as built:
        assert np.array_equal(got["x"], built["x"]) and np.array_equal(got["y"], built["y"])
    # A path the process sees is used as it is; no URI, no download.
    seen = {"data": str(registry.folder / "bc.npz"), "data_uri": None, "tracking_uri": registry.uri}
    assert eval_data_file(seen, tmp_path / "unused") == seen["data"]
