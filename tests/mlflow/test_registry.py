"""``lossaudit registry`` against a real ``mlflow server`` on 127.0.0.1.

The registry: 7 versions of 3 models, tiny one-layer Keras models trained for a few epochs with a
fixed seed, logged with ``mlflow.keras.log_model`` and registered (in the test process, whose
audits load TensorFlow anyway):

* ``reg_bc`` (breast_cancer; eval data: the dataset logged on the source run with
  ``mlflow.log_input``): v1 1-unit sigmoid + categorical cross-entropy (LA101), v2 1-unit sigmoid
  + binary cross-entropy (correct), v3 1-unit softmax + binary cross-entropy (LA102);
* ``reg_digits`` (digits; eval data: the ``--data`` mapping): v1 10-unit softmax + sparse
  categorical cross-entropy (correct), v2 the same model whose ``model.keras`` in the server's
  artifact store is overwritten with garbage after registering (corrupt), v3 a linear head with
  ``from_logits=False`` (LA302);
* ``reg_iris`` (iris; eval data: the version tag ``lossaudit.data`` naming a ``runs:/`` artifact):
  v1 3-unit softmax + sparse categorical cross-entropy (correct).

Alias ``audited`` starts on ``reg_bc`` v3 (a failing version).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from lossaudit.cli import app
from lossaudit.errors import EXIT_BAD_INPUT, EXIT_PASS, EXIT_TRACKING_UNAVAILABLE, BadInputError
from lossaudit.registry.aliases import plan_alias_moves
from lossaudit.registry.evaldata import DataResolver, NoEvalDataError, dataset_location
from lossaudit.registry.options import RegistryOptions, parse_data_mapping
from lossaudit.registry.results import RegistrySummary, VersionResult
from lossaudit.registry.tags import (
    TAG_AUDIT_RUN,
    TAG_AUDITED_AT,
    TAG_CODES,
    TAG_DATA_HASH,
    TAG_ERROR,
    TAG_ERROR_AT,
    TAG_ERROR_KIND,
    TAG_RULES_VERSION,
    TAG_VERDICT,
)
from lossaudit.registry.versions import find_versions, version_filter
from lossaudit.registry.workers import CRASH_REASON, ERROR_CRASH, run_tasks, threads_per_worker
from lossaudit.tracking import rules_version

from .conftest import MlflowServer, fluent_tracking_uri, free_port, train_dense

pytestmark = pytest.mark.mlflow

runner = CliRunner()
EXPERIMENT = "registry-tests"
ALIAS = "audited"
EXPECTED_VERSIONS = [
    ("reg_bc", "1"),
    ("reg_bc", "2"),
    ("reg_bc", "3"),
    ("reg_digits", "1"),
    ("reg_digits", "2"),
    ("reg_digits", "3"),
    ("reg_iris", "1"),
]


def _build(folder: Path, tracking_uri: str) -> dict[str, dict[str, str]]:
    """Train, log and register the seven versions (in this process: see ``fluent_tracking_uri``);
    the eval data files in ``folder``; the run and logged-model id of every version."""
    import mlflow
    import mlflow.keras
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris

    def standardised(x: np.ndarray) -> np.ndarray:
        return ((x - x.mean(axis=0)) / x.std(axis=0)).astype("float32")

    x_bc, y_bc = load_breast_cancer(return_X_y=True)
    x_bc = standardised(x_bc)
    x_dg, y_dg = load_digits(return_X_y=True)
    x_dg = (x_dg / 16.0).astype("float32")
    x_ir, y_ir = load_iris(return_X_y=True)
    x_ir = standardised(x_ir)
    for name, x, y in (("bc", x_bc, y_bc), ("digits", x_dg, y_dg), ("iris", x_ir, y_ir)):
        np.savez(folder / f"{name}.npz", x=x, y=y.astype("int64"))

    facts: dict[str, dict[str, str]] = {}
    # Keras's and MLflow's warnings about these models (on purpose) stay out of the test output.
    with fluent_tracking_uri(tracking_uri), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = mlflow.MlflowClient()
        experiment = client.create_experiment("registry-training")

        def register(
            name: str,
            model: Any,
            *,
            dataset: tuple[np.ndarray, np.ndarray, Path] | None = None,
            artifact: Path | None = None,
        ) -> str:
            with mlflow.start_run(experiment_id=experiment, run_name=name) as run:
                if dataset is not None:
                    x, y, path = dataset
                    logged = mlflow.data.from_numpy(x, targets=y, source=str(path), name=path.stem)
                    mlflow.log_input(logged, context="eval")
                if artifact is not None:
                    mlflow.log_artifact(str(artifact), "eval")
                info = mlflow.keras.log_model(
                    model, name="model", registered_model_name=name, pip_requirements=["keras"]
                )
            version = str(info.registered_model_version)
            facts[f"{name}/{version}"] = {"run_id": run.info.run_id, "model_id": info.model_id}
            return str(run.info.run_id)

        bc = (x_bc, y_bc, folder / "bc.npz")
        sparse = "sparse_categorical_crossentropy"
        register("reg_bc", train_dense(x_bc, y_bc, 1, "sigmoid", "categorical_crossentropy", 2), dataset=bc)
        register("reg_bc", train_dense(x_bc, y_bc, 1, "sigmoid", "binary_crossentropy"), dataset=bc)
        register("reg_bc", train_dense(x_bc, y_bc, 1, "softmax", "binary_crossentropy", 2), dataset=bc)
        client.set_registered_model_alias("reg_bc", "audited", "3")

        register("reg_digits", train_dense(x_dg, y_dg, 10, "softmax", sparse))
        register("reg_digits", train_dense(x_dg, y_dg, 10, "softmax", sparse))
        register("reg_digits", train_dense(x_dg, y_dg, 10, "linear", sparse, 2))

        iris = train_dense(x_ir, y_ir, 3, "softmax", sparse)
        run_id = register("reg_iris", iris, artifact=folder / "iris.npz")
        client.set_model_version_tag("reg_iris", "1", "lossaudit.data", f"runs:/{run_id}/eval/iris.npz")
    return facts


@dataclass(frozen=True)
class Registry:
    server: MlflowServer
    folder: Path
    facts: Mapping[str, Mapping[str, str]]

    @property
    def uri(self) -> str:
        return self.server.uri

    def data(self, name: str) -> Path:
        return self.folder / f"{name}.npz"

    def args(self, *extra: str) -> list[str]:
        """The CLI arguments every run of these tests shares."""
        return [
            "registry",
            "--name",
            "reg_*",
            "--data",
            f"reg_digits={self.data('digits')}",
            "--tracking-uri",
            self.uri,
            "--experiment",
            EXPERIMENT,
            "--out",
            str(self.folder / "reports"),
            *extra,
        ]


def _corrupt(server: MlflowServer, model_id: str) -> Path:
    """Overwrite the Keras file of a logged model in the server's artifact store with garbage."""
    files = list((server.root / "mlartifacts").rglob(f"{model_id}/artifacts/data/model.keras"))
    assert len(files) == 1, files
    files[0].write_bytes(b"this is not a Keras file\n" * 40)
    return files[0]


@pytest.fixture(scope="module")
def registry(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    folder = tmp_path_factory.mktemp("registry")
    facts = _build(folder, mlflow_server.uri)
    _corrupt(mlflow_server, facts["reg_digits/2"]["model_id"])
    return Registry(mlflow_server, folder, facts)


def _client(registry: Registry) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)


def _tags(registry: Registry) -> dict[tuple[str, str], dict[str, str]]:
    client = _client(registry)
    return {
        (name, version): dict(client.get_model_version(name, version).tags)
        for name, version in EXPECTED_VERSIONS
    }


def _invoke(args: list[str]) -> Result:
    return runner.invoke(app, args)


@dataclass(frozen=True)
class FirstRuns:
    """The first audit of the registry (with --promote-alias) and the rerun right after it."""

    first: Result
    first_doc: Mapping[str, Any]
    tags_after_first: Mapping[tuple[str, str], Mapping[str, str]]
    rerun: Result
    rerun_doc: Mapping[str, Any]
    tags_after_rerun: Mapping[tuple[str, str], Mapping[str, str]]


@pytest.fixture(scope="module")
def first_runs(registry: Registry) -> FirstRuns:
    first = _invoke(registry.args("--promote-alias", ALIAS, "--json"))
    tags_first = _tags(registry)
    rerun = _invoke(registry.args("--json"))
    tags_rerun = _tags(registry)
    return FirstRuns(
        first=first,
        first_doc=json.loads(first.stdout),
        tags_after_first=tags_first,
        rerun=rerun,
        rerun_doc=json.loads(rerun.stdout),
        tags_after_rerun=tags_rerun,
    )


def _by_version(doc: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(v["model"], v["version"]): v for v in doc["versions"]}


def _sha256_of_arrays(path: Path) -> str:
    """The data hash computed here independently: sha256 over x's bytes then y's (C order)."""
    with np.load(path) as data:
        x, y = np.ascontiguousarray(data["x"]), np.ascontiguousarray(data["y"])
    return hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()


# --- the first run: tags, verdicts, errors, the alias, the summary run --------------------------


@pytest.mark.keras
@pytest.mark.slow
def test_first_run_tags_every_version_and_exits_2_for_the_corrupt_one(
    registry: Registry, first_runs: FirstRuns
) -> None:
    assert first_runs.first.exit_code == EXIT_BAD_INPUT, first_runs.first.output[-3000:]
    doc = first_runs.first_doc
    assert doc["verdict"] == "error"
    assert [(v["model"], v["version"]) for v in doc["versions"]] == EXPECTED_VERSIONS
    verdicts = {key: v["verdict"] for key, v in _by_version(doc).items()}
    assert verdicts == {
        ("reg_bc", "1"): "fail",
        ("reg_bc", "2"): "pass",
        ("reg_bc", "3"): "fail",
        ("reg_digits", "1"): "pass",
        ("reg_digits", "2"): "error",
        ("reg_digits", "3"): "fail",
        ("reg_iris", "1"): "pass",
    }
    assert doc["summary"] == {
        "n_versions": 7,
        "n_passed": 3,
        "n_failed": 3,
        "n_error": 1,
        "n_audited": 6,
        "n_skipped": 0,
        "n_not_audited": 1,
        "n_fresh": 7,
        "n_stored": 0,
    }
    assert {(v["verdict_source"], v["status"]) for v in doc["versions"] if v["verdict"] != "error"} == {
        ("fresh", "audited")
    }
    rules = rules_version()
    hashes = {
        "reg_bc": _sha256_of_arrays(registry.data("bc")),
        "reg_digits": _sha256_of_arrays(registry.data("digits")),
        "reg_iris": _sha256_of_arrays(registry.data("iris")),
    }
    for (name, version), tags in first_runs.tags_after_first.items():
        assert tags[TAG_VERDICT] == verdicts[(name, version)]
        assert tags[TAG_RULES_VERSION] == rules
        assert tags[TAG_DATA_HASH] == hashes[name]
        assert tags[TAG_AUDITED_AT].endswith("+00:00")
    tags = first_runs.tags_after_first
    assert {key: t[TAG_CODES] for key, t in tags.items()} == {
        ("reg_bc", "1"): "LA101",
        ("reg_bc", "2"): "",
        ("reg_bc", "3"): "LA102,LA501",
        ("reg_digits", "1"): "",
        ("reg_digits", "2"): "",
        ("reg_digits", "3"): "LA302",
        ("reg_iris", "1"): "",
    }
    for key in [("reg_bc", "2"), ("reg_digits", "1"), ("reg_iris", "1")]:
        assert TAG_ERROR not in tags[key]
    data_origins = {key: (v["data_origin"], Path(v["data"]).name) for key, v in _by_version(doc).items()}
    assert data_origins[("reg_bc", "1")] == ("source_run", "bc.npz")
    assert data_origins[("reg_digits", "1")] == ("mapping", "digits.npz")
    assert data_origins[("reg_iris", "1")] == ("tag", "iris.npz")


@pytest.mark.keras
@pytest.mark.slow
def test_the_corrupt_version_is_tagged_error_with_its_reason(
    registry: Registry, first_runs: FirstRuns
) -> None:
    tags = first_runs.tags_after_first[("reg_digits", "2")]
    assert tags[TAG_VERDICT] == "error"
    assert tags[TAG_ERROR_KIND] == "bad_input"
    assert tags[TAG_AUDIT_RUN] == ""
    assert tags[TAG_ERROR_AT] == tags[TAG_AUDITED_AT]
    assert tags[TAG_ERROR] == (
        "models:/reg_digits/2 (model.keras): not a Keras model file (neither a .keras zip nor an "
        "HDF5 .h5; it starts with b'this is ')"
    )
    printed = _by_version(first_runs.first_doc)[("reg_digits", "2")]
    assert printed["error"] == tags[TAG_ERROR]
    # Never audited: a fresh error verdict, which the job counts as error (exit 2).
    assert (printed["verdict"], printed["verdict_source"], printed["status"], printed["gate"]) == (
        "error",
        "fresh",
        "not_audited",
        "error",
    )


@pytest.mark.keras
@pytest.mark.slow
def test_each_audit_is_a_run_nested_under_the_summary_run(registry: Registry, first_runs: FirstRuns) -> None:
    client = _client(registry)
    doc = first_runs.first_doc
    summary = client.get_run(doc["summary_run"])
    assert summary.data.metrics == {
        **{key: float(value) for key, value in doc["summary"].items()},
        "seconds": pytest.approx(doc["seconds"], abs=0.01),
    }
    assert summary.data.tags["lossaudit.verdict"] == "error"
    assert summary.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(doc["summary_run"])}
    assert artifacts == {"summary.json", "summary.md"}
    local = Path(client.download_artifacts(doc["summary_run"], "summary.json", str(registry.folder)))
    assert json.loads(local.read_text())["versions"] == doc["versions"]
    for (name, version), tags in first_runs.tags_after_first.items():
        if tags[TAG_VERDICT] == "error":
            continue
        run = client.get_run(tags[TAG_AUDIT_RUN])
        assert run.data.tags["mlflow.parentRunId"] == doc["summary_run"]
        assert run.data.tags["lossaudit.model_name"] == name
        assert run.data.tags["lossaudit.model_version"] == version
        assert run.data.tags["lossaudit.verdict"] == tags[TAG_VERDICT]
        assert run.data.tags["lossaudit.codes"] == tags[TAG_CODES]
        assert run.data.params["data_hash"] == tags[TAG_DATA_HASH]
        assert run.data.tags["lossaudit.source_run_id"] == registry.facts[f"{name}/{version}"]["run_id"]
    report_dirs = sorted(p.name for p in (registry.folder / "reports").iterdir())
    assert report_dirs == [f"{n}-v{v}" for n, v in EXPECTED_VERSIONS if (n, v) != ("reg_digits", "2")]


@pytest.mark.keras
@pytest.mark.slow
def test_the_alias_moves_only_to_the_highest_passing_version(
    registry: Registry, first_runs: FirstRuns
) -> None:
    client = _client(registry)
    assert str(client.get_model_version_by_alias("reg_bc", ALIAS).version) == "2"  # was on failing v3
    assert str(client.get_model_version_by_alias("reg_digits", ALIAS).version) == "1"  # v2 error, v3 fail
    assert str(client.get_model_version_by_alias("reg_iris", ALIAS).version) == "1"
    moves = {m["model"]: m for m in first_runs.first_doc["alias_moves"]}
    assert moves["reg_bc"] == {
        "model": "reg_bc",
        "alias": ALIAS,
        "previous": "3",
        "target": "2",
        "action": "moved",
        "moved": True,
        "reason": "moved to v2, the newest passing version (fresh pass): v3's latest verdict is fail (fresh)",
    }
    assert moves["reg_digits"]["reason"] == (
        "set on v1, the newest passing version (fresh pass); it pointed nowhere"
    )


# --- idempotency --------------------------------------------------------------------------------


@pytest.mark.keras
@pytest.mark.slow
def test_a_second_run_skips_every_version_and_changes_no_tag(first_runs: FirstRuns) -> None:
    # The stored verdicts gate the job: the corrupt version's stored error gives exit 2.
    assert first_runs.rerun.exit_code == EXIT_BAD_INPUT, first_runs.rerun.output[-3000:]
    doc = first_runs.rerun_doc
    assert doc["verdict"] == "error"
    assert [v["skipped"] for v in doc["versions"]] == [True] * 7
    assert [(v["status"], v["verdict_source"]) for v in doc["versions"]] == [("skipped", "stored")] * 7
    assert doc["summary"] == {
        "n_versions": 7,
        "n_passed": 3,
        "n_failed": 3,
        "n_error": 1,
        "n_audited": 0,
        "n_skipped": 7,
        "n_not_audited": 0,
        "n_fresh": 0,
        "n_stored": 7,
    }
    # Skipped versions show what was recorded.
    recorded = {key: v["verdict"] for key, v in _by_version(doc).items()}
    assert recorded == {key: v["verdict"] for key, v in _by_version(first_runs.first_doc).items()}
    assert first_runs.tags_after_rerun == first_runs.tags_after_first
    assert doc["findings"] == []


@pytest.mark.keras
@pytest.mark.slow
def test_alias_selects_one_version_per_model(registry: Registry, first_runs: FirstRuns) -> None:
    result = _invoke(registry.args("--alias", ALIAS, "--json"))
    assert result.exit_code == EXIT_PASS, result.output[-3000:]
    doc = json.loads(result.stdout)
    assert [(v["model"], v["version"], v["skipped"]) for v in doc["versions"]] == [
        ("reg_bc", "2", True),
        ("reg_digits", "1", True),
        ("reg_iris", "1", True),
    ]


@pytest.mark.keras
@pytest.mark.slow
def test_progress_follows_the_versions_and_leaves_the_output_alone(
    registry: Registry, first_runs: FirstRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live status line (drawn only on a terminal by ``console.progress``) gets where the job
    is; the table, the JSON and the per-version stderr lines are what they were."""
    from lossaudit.cli import console

    seen: list[str] = []

    @contextmanager
    def progress(label: str) -> Iterator[Callable[[str], None]]:
        seen.append(label)
        yield seen.append

    monkeypatch.setattr(console, "progress", progress)
    result = _invoke(registry.args("--alias", ALIAS))
    assert result.exit_code == EXIT_PASS, result.output[-3000:]
    versions = [("reg_bc", "2"), ("reg_digits", "1"), ("reg_iris", "1")]
    expected = ["registry", "finding versions"]
    for done, (name, version) in enumerate(versions):
        expected += [
            f"{done} of 3 versions: eval data of {name} v{version}",
            f"{done + 1} of 3 versions: {name} v{version}: pass (stored, skipped)",
        ]
    assert seen == [*expected, "closing the summary run"]
    assert result.stdout.splitlines()[0].split() == [
        "model", "version", "verdict", "source", "job", "codes", "data", "seconds"
    ]  # fmt: skip
    assert result.stderr.splitlines() == [
        f"lossaudit: {name} v{version}: pass (stored, skipped)" for name, version in versions
    ]
    seen.clear()
    as_json = _invoke(registry.args("--alias", ALIAS, "--json"))
    assert as_json.exit_code == EXIT_PASS and seen == ["registry"]  # --json: no status updates
    assert json.loads(as_json.stdout)["verdict"] == "pass"


@pytest.mark.keras
@pytest.mark.slow
def test_force_reaudits_in_two_worker_processes(registry: Registry, first_runs: FirstRuns) -> None:
    before = _tags(registry)
    args = registry.args("--force", "--workers", "2", "--json")
    args[args.index("reg_*")] = "reg_digits"
    result = _invoke(args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output[-3000:]
    doc = json.loads(result.stdout)
    assert doc["workers"] == 2
    assert [(v["model"], v["version"], v["skipped"]) for v in doc["versions"]] == [
        ("reg_digits", "1", False),
        ("reg_digits", "2", False),
        ("reg_digits", "3", False),
    ]
    # Audited now (the corrupt v2 cannot be); a version that could not be would keep its old tags.
    statuses = [(v["version"], v["status"], v["error_kind"]) for v in doc["versions"]]
    assert statuses == [("1", "audited", None), ("2", "not_audited", "bad_input"), ("3", "audited", None)], [
        v["error"] for v in doc["versions"]
    ]
    after = _tags(registry)
    for version, verdict in (("1", "pass"), ("2", "error"), ("3", "fail")):
        key = ("reg_digits", version)
        assert after[key][TAG_VERDICT] == verdict
        assert after[key][TAG_CODES] == before[key][TAG_CODES]
        assert after[key][TAG_DATA_HASH] == before[key][TAG_DATA_HASH]
    # New audit runs, nested under this job's summary run.
    for version in ("1", "3"):
        key = ("reg_digits", version)
        assert after[key][TAG_AUDIT_RUN] != before[key][TAG_AUDIT_RUN]
        run = _client(registry).get_run(after[key][TAG_AUDIT_RUN])
        assert run.data.tags["mlflow.parentRunId"] == doc["summary_run"]
    assert after[("reg_digits", "2")][TAG_ERROR] == before[("reg_digits", "2")][TAG_ERROR]
    # Every worker kept one model at a time: its peak memory is reported.
    assert all(v["peak_rss_mb"] > 0 for v in doc["versions"])
    # The other models were not touched.
    for key in EXPECTED_VERSIONS:
        if key[0] != "reg_digits":
            assert after[key] == before[key]


# --- data resolution, options, errors -----------------------------------------------------------


@pytest.mark.keras
def test_a_version_without_eval_data_says_where_it_looked(registry: Registry) -> None:
    from lossaudit.tracking.store import connect, resolve_tracking_uri

    target = resolve_tracking_uri(registry.uri)
    client = connect(target)
    options = RegistryOptions(name="reg_digits", tracking_uri=registry.uri)
    refs = find_versions(client, options)
    assert [r.version for r in refs] == ["1", "2", "3"]
    resolver = DataResolver(client, target, options)
    with pytest.raises(NoEvalDataError) as caught:
        resolver.resolve(refs[0])
    run_id = registry.facts["reg_digits/1"]["run_id"]
    assert str(caught.value) == (
        "no eval data: no --data mapping was given, no lossaudit.data tag on reg_digits v1, and source "
        f"run {run_id} logged no dataset input"
    )


def test_an_unreachable_server_exits_3_with_one_line(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["registry", "--tracking-uri", dead, "--out", str(tmp_path)])
    assert result.exit_code == EXIT_TRACKING_UNAVAILABLE
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"lossaudit: error: MLflow tracking server at {dead} is unreachable: connection refused"
    ]


def test_a_pattern_that_matches_nothing_exits_2(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "registry",
            "--name",
            "no_such_model_*",
            "--tracking-uri",
            mlflow_server.uri,
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.splitlines() == [
        "lossaudit: error: no registered model version matches name 'no_such_model_*'"
    ]


def test_version_filter_turns_globs_into_like_and_adds_the_user_filter() -> None:
    assert version_filter(None, None) is None
    assert version_filter("digits", None) == "name = 'digits'"
    assert version_filter("digits*", None) == "name LIKE 'digits%'"
    assert version_filter("d?g[0-9]*", "tags.team = 'vision'") == "name LIKE 'd_g_%' AND tags.team = 'vision'"
    assert version_filter("o'brien", None) == "name = 'o''brien'"


def test_dataset_source_json_gives_the_location() -> None:
    assert dataset_location('{"uri": "/data/eval.npz"}') == "/data/eval.npz"
    assert dataset_location('{"path": "s3://bucket/eval.npz"}') == "s3://bucket/eval.npz"
    assert dataset_location('{"table": "x"}') is None
    assert dataset_location("not json") is None


def test_data_mapping_parses_and_refuses_bad_items() -> None:
    assert parse_data_mapping(["digits*=data/d.npz", "bc = /abs/bc.npz"]) == {
        "digits*": "data/d.npz",
        "bc": "/abs/bc.npz",
    }
    with pytest.raises(BadInputError, match="--data takes MODEL=PATH"):
        parse_data_mapping(["digits.npz"])


def test_options_refuse_zero_workers_and_the_reserved_alias() -> None:
    with pytest.raises(BadInputError, match="--workers must be at least 1, got 0"):
        RegistryOptions(workers=0)
    with pytest.raises(BadInputError, match="'latest' is reserved"):
        RegistryOptions(promote_alias="latest")


def test_options_from_a_registry_pipeline_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lossaudit.pipeline.config import load_pipeline

    monkeypatch.setenv("REGISTRY_URI", "http://127.0.0.1:5999")
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "scheduled.yaml").write_text(
        "kind: registry\n"
        "fail_on: warning\n"
        "out: reports\n"
        "log: {tracking_uri: '${REGISTRY_URI}', experiment: nightly}\n"
        "registry:\n"
        "  name: 'digits*'\n"
        "  workers: 2\n"
        "  promote_alias: audited\n"
        "  data: {'digits*': data/digits.npz}\n",
        encoding="utf-8",
    )
    options = RegistryOptions.from_pipeline(load_pipeline(folder / "scheduled.yaml"))
    # The pipeline's rule configuration travels with the job (select, ignore, severities, ...).
    assert options.rules["fail_on"] == "warning"
    assert str(options.rules["source"]).startswith("pipeline ")
    assert dataclasses.replace(options, rules={}) == RegistryOptions(
        name="digits*",
        workers=2,
        promote_alias="audited",
        data={"digits*": str(tmp_path.resolve() / "data" / "digits.npz")},
        fail_on="warning",
        tracking_uri="http://127.0.0.1:5999",
        experiment="nightly",
        out_dir=str(tmp_path.resolve() / "reports" / "registry"),
    )


# --- the worker pool ----------------------------------------------------------------------------


def crash_on_version_2(task: dict[str, Any]) -> dict[str, Any]:
    """A task function for the pool test: the worker process dies on version 2."""
    if task["version"] == "2":
        os._exit(17)
    time.sleep(0.2)
    return {"model": task["model"], "version": task["version"], "verdict": "pass", "pid": os.getpid()}


def test_a_worker_crash_marks_only_its_version_and_the_rest_complete() -> None:
    tasks = [{"model": "m", "version": str(v)} for v in range(1, 6)]
    seen: list[tuple[str, str]] = []
    results: dict[str, dict[str, Any]] = {}

    def on_result(task: dict[str, Any], result: dict[str, Any]) -> None:
        seen.append((task["version"], result["verdict"]))
        results[task["version"]] = result

    run_tasks(tasks, workers=2, on_result=on_result, fn=crash_on_version_2, initializer=None)
    assert sorted(seen) == [("1", "pass"), ("2", "error"), ("3", "pass"), ("4", "pass"), ("5", "pass")]
    assert results["2"]["error_kind"] == ERROR_CRASH
    assert results["2"]["error"] == CRASH_REASON
    # Passing versions ran in worker processes, not here.
    assert all(results[v]["pid"] != os.getpid() for v in ("1", "3", "4", "5"))


def test_in_process_tasks_that_raise_become_internal_errors() -> None:
    def explode(task: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("boom\nsecond line")

    got: list[dict[str, Any]] = []
    run_tasks([{"model": "m", "version": "1"}], workers=1, on_result=lambda t, r: got.append(r), fn=explode)
    assert [(r["verdict"], r["error_kind"], r["error"]) for r in got] == [
        ("error", "internal", "RuntimeError: boom")
    ]


def exit_zero_on_version_2(task: dict[str, Any]) -> dict[str, Any]:
    """A task function for the pool test: a library calls sys.exit(0) during version 2."""
    if task["version"] == "2":
        sys.exit(0)
    return {"model": task["model"], "version": task["version"], "verdict": "pass"}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_task_that_exits_is_an_error_of_its_version_not_the_jobs_exit(workers: int) -> None:
    got: dict[str, dict[str, Any]] = {}
    tasks = [{"model": "m", "version": str(v)} for v in (1, 2, 3)]
    run_tasks(
        tasks,
        workers=workers,
        on_result=lambda t, r: got.update({t["version"]: r}),
        fn=exit_zero_on_version_2,
        initializer=None,
    )
    assert {v: r["verdict"] for v, r in got.items()} == {"1": "pass", "2": "error", "3": "pass"}
    assert got["2"]["error"] == "the audit called sys.exit(0) before it finished"


def test_a_bare_main_module_is_named_in_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from lossaudit.registry.workers import name_main_module

    bare = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", bare)
    name_main_module()
    assert hasattr(bare, "__file__")


def test_threads_are_shared_between_workers() -> None:
    assert threads_per_worker(1, cpus=8) == 8
    assert threads_per_worker(2, cpus=8) == 4
    assert threads_per_worker(4, cpus=2) == 1


def test_a_registry_pipeline_file_runs_the_same_job(registry: Registry, first_runs: FirstRuns) -> None:
    """`lossaudit run FILE` with `kind: registry` (what the MLproject's registry entry point and
    pipelines/scheduled.yaml run): same versions, same data mapping, so every version is skipped."""
    assert first_runs.first.exit_code != 0  # the first audit did tag them
    pipeline = registry.folder / "scheduled.yaml"
    pipeline.write_text(
        f"""
name: scheduled-test
kind: registry
out: {registry.folder / "pipeline-reports"}
log: {{tracking_uri: "{registry.uri}", experiment: {EXPERIMENT}}}
registry:
  name: "reg_*"
  data:
    reg_digits: {registry.data("digits")}
"""
    )
    before = _tags(registry)
    result = _invoke(["run", str(pipeline), "--json"])
    # Every version skipped; the stored verdicts (three fail, one error) still gate the job.
    assert result.exit_code == EXIT_BAD_INPUT, result.output[-3000:]
    doc = json.loads(result.stdout)
    assert doc["summary"]["n_versions"] == 7
    assert doc["summary"]["n_skipped"] == 7
    assert _tags(registry) == before


# --- gates: the job's verdict and exit code, tags and aliases, situation by situation -----------
#
# Issue 8: the job's verdict and exit code are the worst current verdict of every selected
# version (fresh, or stored on a skipped version); a version that cannot be audited now keeps its
# earlier verdict tags and gets lossaudit.error/error_kind/error_at; --promote-alias never leaves
# the alias on a version whose latest verdict is fail or error.

V = tuple[str, str, str]
"""(verdict, verdict_source, status) of one version in the job's JSON."""
VERDICT_TAGS = (
    TAG_VERDICT,
    TAG_CODES,
    TAG_AUDIT_RUN,
    TAG_AUDITED_AT,
    TAG_DATA_HASH,
    TAG_RULES_VERSION,
    "lossaudit.fail_on",
)
MODELS = ("reg_bc", "reg_digits", "reg_iris")


@dataclass(frozen=True)
class Gate:
    """One situation: the registry state set up before the run, the command, what it must give.

    ``setup_runs`` are earlier CLI runs (their extra arguments) of the same ``name``; ``extra``
    may use ``{missing}`` (a data file that does not exist). Without a ``--data`` in ``extra``,
    ``reg_digits`` gets its eval data from the mapping, as in the first run."""

    name: str
    exit_code: int
    verdict: str
    versions: Mapping[str, V]
    extra: tuple[str, ...] = ()
    aliases: Mapping[tuple[str, str], str] = field(default_factory=dict)
    setup_runs: tuple[tuple[str, ...], ...] = ()
    alias_after: Mapping[tuple[str, str], str | None] = field(default_factory=dict)
    actions: Mapping[str, str] = field(default_factory=dict)


PROMOTE = ("--promote-alias", ALIAS)
CANDIDATE = ("--alias", "candidate")
STORED_FAIL: V = ("fail", "stored", "skipped")
STORED_PASS: V = ("pass", "stored", "skipped")
STORED_ERROR: V = ("error", "stored", "skipped")

GATES = {
    # Before the change: verdict pass, exit 0 (skipped versions did not count).
    "rerun-skips-all-with-two-stored-failures": Gate(
        "reg_bc", 1, "fail", {"reg_bc/1": STORED_FAIL, "reg_bc/2": STORED_PASS, "reg_bc/3": STORED_FAIL}
    ),
    # Before: pass, exit 0 although the corrupt version was never audited.
    "rerun-skips-all-with-a-stored-error": Gate(
        "reg_digits",
        2,
        "error",
        {"reg_digits/1": STORED_PASS, "reg_digits/2": STORED_ERROR, "reg_digits/3": STORED_FAIL},
    ),
    # Control: every stored verdict passes.
    "rerun-skips-all-passing": Gate("reg_iris", 0, "pass", {"reg_iris/1": STORED_PASS}),
    # Before: exit 0.
    "alias-on-a-failed-version-skipped": Gate(
        "reg_bc", 1, "fail", {"reg_bc/3": STORED_FAIL}, CANDIDATE, {("reg_bc", "candidate"): "3"}
    ),
    # Before: exit 1 already (a fresh fail counted).
    "alias-on-a-failed-version-audited-now": Gate(
        "reg_bc",
        1,
        "fail",
        {"reg_bc/3": ("fail", "fresh", "audited")},
        (*CANDIDATE, "--force"),
        {("reg_bc", "candidate"): "3"},
    ),
    "alias-on-a-passing-version": Gate(
        "reg_bc", 0, "pass", {"reg_bc/2": STORED_PASS}, CANDIDATE, {("reg_bc", "candidate"): "2"}
    ),
    # Before: exit 0, and the promoted alias stayed on the error version.
    "alias-on-an-error-version-removes-the-promoted-alias": Gate(
        "reg_digits",
        2,
        "error",
        {"reg_digits/2": STORED_ERROR},
        (*CANDIDATE, *PROMOTE),
        {("reg_digits", "candidate"): "2", ("reg_digits", ALIAS): "2"},
        alias_after={("reg_digits", ALIAS): None},
        actions={"reg_digits": "removed"},
    ),
    # Before: exit 2, but v1's pass and v3's fail were overwritten with error (audit run and data
    # hash cleared) and the alias stayed on v1, then tagged error.
    "bad-data-keeps-every-earlier-verdict": Gate(
        "reg_digits",
        2,
        "error",
        {
            "reg_digits/1": ("pass", "stored", "not_audited"),
            "reg_digits/2": ("error", "fresh", "not_audited"),
            "reg_digits/3": ("fail", "stored", "not_audited"),
        },
        ("--data", "reg_digits={missing}", *PROMOTE),
        alias_after={("reg_digits", ALIAS): "1"},
        actions={"reg_digits": "kept"},
    ),
    # After a bad --data run, good data audits the version again and clears the error tags.
    "good-data-after-bad-data-audits-again": Gate(
        "reg_iris",
        0,
        "pass",
        {"reg_iris/1": ("pass", "fresh", "audited")},
        setup_runs=(("--data", "reg_iris={missing}"),),
    ),
    # Before: moved, but exit 0.
    "promote-moves-off-a-failing-version": Gate(
        "reg_bc",
        1,
        "fail",
        {"reg_bc/1": STORED_FAIL, "reg_bc/2": STORED_PASS, "reg_bc/3": STORED_FAIL},
        PROMOTE,
        {("reg_bc", ALIAS): "3"},
        alias_after={("reg_bc", ALIAS): "2"},
        actions={"reg_bc": "moved"},
    ),
    # Before: the alias stayed on v3 (fail), "a newer version this job did not audit".
    "promote-moves-off-a-failing-version-outside-the-job": Gate(
        "reg_bc",
        0,
        "pass",
        {"reg_bc/2": STORED_PASS},
        (*CANDIDATE, *PROMOTE),
        {("reg_bc", "candidate"): "2", ("reg_bc", ALIAS): "3"},
        alias_after={("reg_bc", ALIAS): "2"},
        actions={"reg_bc": "moved"},
    ),
    # Before: exit 0 and the alias stayed on failing v1 ("no passing version").
    "promote-removes-the-alias-when-nothing-passes": Gate(
        "reg_bc",
        1,
        "fail",
        {"reg_bc/3": STORED_FAIL},
        (*CANDIDATE, *PROMOTE),
        {("reg_bc", "candidate"): "3", ("reg_bc", ALIAS): "1"},
        alias_after={("reg_bc", ALIAS): None},
        actions={"reg_bc": "removed"},
    ),
    # Before: moved, but exit 0.
    "promote-moves-off-a-stored-error": Gate(
        "reg_digits",
        2,
        "error",
        {"reg_digits/1": STORED_PASS, "reg_digits/2": STORED_ERROR, "reg_digits/3": STORED_FAIL},
        PROMOTE,
        {("reg_digits", ALIAS): "2"},
        alias_after={("reg_digits", ALIAS): "1"},
        actions={"reg_digits": "moved"},
    ),
}


def _aliases(registry: Registry) -> dict[tuple[str, str], str]:
    client = _client(registry)
    found: dict[tuple[str, str], str] = {}
    for model in MODELS:
        for alias, version in (client.get_registered_model(model).aliases or {}).items():
            found[(model, str(alias))] = str(version)
    return found


@pytest.fixture
def restored(registry: Registry, first_runs: FirstRuns) -> Iterator[None]:
    """Puts every version tag and alias back as it was, so that each situation starts from the
    state the first run left (the other tests rely on it too)."""
    client = _client(registry)
    tags, aliases = _tags(registry), _aliases(registry)
    yield
    for (name, version), now in _tags(registry).items():
        for key in now.keys() - tags[(name, version)].keys():
            client.delete_model_version_tag(name, version, key)
        for key, value in tags[(name, version)].items():
            if now.get(key) != value:
                client.set_model_version_tag(name, version, key, value)
    now_aliases = _aliases(registry)
    for model, alias in now_aliases.keys() - aliases.keys():
        client.delete_registered_model_alias(model, alias)
    for (model, alias), version in aliases.items():
        if now_aliases.get((model, alias)) != version:
            client.set_registered_model_alias(model, alias, version)


def _gate_args(registry: Registry, name: str, extra: tuple[str, ...]) -> list[str]:
    missing = str(registry.folder / "missing" / "eval.npz")
    args = [
        "registry",
        "--name",
        name,
        "--tracking-uri",
        registry.uri,
        "--experiment",
        EXPERIMENT,
        "--out",
        str(registry.folder / "gate-reports"),
        "--json",
        *(item.replace("{missing}", missing) for item in extra),
    ]
    if "--data" not in extra:
        args += ["--data", f"reg_digits={registry.data('digits')}"]
    return args


@pytest.mark.keras
@pytest.mark.parametrize("situation", list(GATES))
def test_gate(situation: str, registry: Registry, restored: None) -> None:
    gate = GATES[situation]
    client = _client(registry)
    for (model, alias), version in gate.aliases.items():
        client.set_registered_model_alias(model, alias, version)
    for extra in gate.setup_runs:
        _invoke(_gate_args(registry, gate.name, extra))
    before = _tags(registry)

    result = _invoke(_gate_args(registry, gate.name, gate.extra))
    doc = json.loads(result.stdout)
    assert (result.exit_code, doc["verdict"]) == (gate.exit_code, gate.verdict), result.output[-3000:]

    aliases = _aliases(registry)
    assert {key: aliases.get(key) for key in gate.alias_after} == dict(gate.alias_after)
    assert {m["model"]: m["action"] for m in doc["alias_moves"]} == dict(gate.actions)

    versions = {f"{v['model']}/{v['version']}": v for v in doc["versions"]}
    assert {k: (v["verdict"], v["verdict_source"], v["status"]) for k, v in versions.items()} == dict(
        gate.versions
    )
    after = _tags(registry)
    for label, (verdict, source, status) in gate.versions.items():
        name, version = label.split("/")
        old, new = before[(name, version)], after[(name, version)]
        assert new[TAG_VERDICT] == verdict
        if status == "skipped":
            assert new == old  # a skipped version's tags are not touched
        elif source == "stored":
            # Could not be audited now: the earlier verdict is kept, the error is added.
            assert {k: new.get(k) for k in VERDICT_TAGS} == {k: old.get(k) for k in VERDICT_TAGS}
            assert new[TAG_ERROR] == versions[label]["error"]
            assert new[TAG_ERROR_AT].endswith("+00:00")
            assert new[TAG_ERROR_KIND] == versions[label]["error_kind"]
        elif status == "audited":
            assert new[TAG_AUDIT_RUN] == versions[label]["audit_run"] != old[TAG_AUDIT_RUN]
            assert not {TAG_ERROR, TAG_ERROR_KIND, TAG_ERROR_AT} & new.keys()
        else:  # never audited: a fresh error verdict with its reason
            assert (new[TAG_ERROR_AT], new[TAG_ERROR]) == (new[TAG_AUDITED_AT], versions[label]["error"])

    # The summary run carries the same verdict and says fresh/stored and what the alias did.
    run = client.get_run(doc["summary_run"])
    assert run.data.tags["lossaudit.verdict"] == gate.verdict
    local = Path(client.download_artifacts(doc["summary_run"], "summary.md", str(registry.folder)))
    markdown = local.read_text(encoding="utf-8")
    for v in doc["versions"]:
        assert f"| {v['model']} | {v['version']} | {v['verdict']} | {v['verdict_source']} |" in markdown
    for move in doc["alias_moves"]:
        assert f"alias '{ALIAS}' of {move['model']}: {move['action']}: {move['reason']}" in markdown


def test_bad_data_reports_the_kept_verdict_and_the_error_in_the_table(
    registry: Registry, restored: None
) -> None:
    args = _gate_args(registry, "reg_digits", ("--data", "reg_digits={missing}", *PROMOTE))
    args.remove("--json")
    result = _invoke(args)
    assert result.exit_code == EXIT_BAD_INPUT
    header, v1 = result.stdout.splitlines()[:2]
    assert header.split() == ["model", "version", "verdict", "source", "job", "codes", "data", "seconds"]
    assert v1.split() == ["reg_digits", "1", "pass", "stored", "not", "audited", "-", "-", "-"]
    missing = registry.folder / "missing" / "eval.npz"
    assert (
        f"reg_digits v1: could not be audited now (bad_input): data file not found: {missing} "
        f"(from mapping {missing}); keeps its stored pass verdict of "
    ) in result.stdout
    assert "alias 'audited' of reg_digits: kept: kept on v1 (pass, stored, not audited now: bad_input)" in (
        result.stdout
    )
    assert (
        "3 version(s): 0 audited now, 0 skipped (already audited with the same data and rules "
        f"{rules_version()}), 3 could not be audited now; 1 fresh and 2 stored verdict(s); counted as "
        "0 pass, 0 fail, 3 error; verdict error (the worst)"
    ) in result.stdout
    assert "lossaudit: reg_digits v1: pass (stored; not audited now: bad_input)" in result.stderr


# --- the same rules without a server ------------------------------------------------------------


def _v(label: str, verdict: str, source: str = "fresh", status: str = "audited") -> VersionResult:
    model, version = label.split("/")
    return VersionResult(model=model, version=version, verdict=verdict, verdict_source=source, status=status)


@pytest.mark.parametrize(
    ("versions", "verdict", "exit_code"),
    [
        ([_v("m/1", "pass"), _v("m/2", "pass", "stored", "skipped")], "pass", 0),
        ([_v("m/1", "pass"), _v("m/2", "fail", "stored", "skipped")], "fail", 1),
        ([_v("m/1", "fail", "stored", "skipped"), _v("m/2", "fail", "stored", "skipped")], "fail", 1),
        ([_v("m/1", "fail"), _v("m/2", "error", "stored", "skipped")], "error", 2),
        ([_v("m/1", "error", "fresh", "not_audited")], "error", 2),
        # Keeps its stored pass, but this job could not confirm it.
        ([_v("m/1", "pass", "stored", "not_audited"), _v("m/2", "pass")], "error", 2),
        ([_v("m/1", "fail", "stored", "not_audited")], "error", 2),
    ],
    ids=[
        "pass",
        "stored-fail",
        "two-stored-fails",
        "stored-error",
        "never-audited",
        "kept-pass",
        "kept-fail",
    ],
)
def test_the_job_verdict_is_the_worst_current_verdict(
    versions: list[VersionResult], verdict: str, exit_code: int
) -> None:
    summary = RegistrySummary(versions=tuple(versions))
    assert (summary.verdict, summary.exit_code) == (verdict, exit_code)


@pytest.mark.parametrize(
    ("versions", "current", "stored", "expected"),
    [
        ([_v("a/1", "pass"), _v("a/2", "pass"), _v("a/3", "fail")], "3", None, ("moved", "2")),
        ([_v("a/1", "fail"), _v("a/2", "error")], "1", None, ("removed", None)),
        ([_v("a/1", "fail")], None, None, ("kept", None)),
        ([_v("a/4", "pass")], "9", None, ("kept", "9")),  # newer, never audited
        ([_v("a/4", "pass")], "9", "fail", ("moved", "4")),  # newer, stored fail
        ([_v("a/4", "fail")], "2", "error", ("removed", None)),
        ([_v("a/1", "pass"), _v("a/2", "pass")], "2", None, ("kept", "2")),
        ([_v("a/1", "pass"), _v("a/2", "pass", "stored", "skipped")], "1", None, ("moved", "2")),
        # Could not be audited now but keeps its pass: the alias stays; it never moves onto one.
        ([_v("a/1", "pass", "stored", "not_audited")], "1", None, ("kept", "1")),
        ([_v("a/1", "pass"), _v("a/2", "pass", "stored", "not_audited")], "1", None, ("kept", "1")),
        ([_v("a/1", "error", "fresh", "not_audited")], "1", None, ("removed", None)),
    ],
)
def test_alias_plan_never_leaves_the_alias_on_a_failing_or_error_version(
    versions: list[VersionResult], current: str | None, stored: str | None, expected: tuple[str, str | None]
) -> None:
    (move,) = plan_alias_moves(versions, "ok", {"a": current}, {"a": stored})
    assert (move.action, move.target) == expected
    assert move.previous == current
