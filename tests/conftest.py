"""Test-wide settings: quiet TensorFlow, no MLflow telemetry, no MLflow store in the work tree."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest
from hypothesis import HealthCheck, settings


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own tracking URI unless it sets one; nothing lands in the work tree."""
    if "MLFLOW_TRACKING_URI" not in os.environ:
        store = tmp_path_factory.mktemp("mlflow")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")


_SESSION_EXPERIMENT_ID = os.environ.get("MLFLOW_EXPERIMENT_ID")


@pytest.fixture(autouse=True)
def _no_leaked_experiment() -> Iterator[None]:
    """mlflow.set_experiment() writes MLFLOW_EXPERIMENT_ID into os.environ and remembers the
    experiment, also from a module-scoped fixture: after each test both go back to what the
    session started with, or a later test in the same worker would hand the id to `mlflow run`
    (which then refuses --experiment-name) or look it up in another store."""
    yield
    if os.environ.get("MLFLOW_EXPERIMENT_ID") != _SESSION_EXPERIMENT_ID:
        if _SESSION_EXPERIMENT_ID is None:
            os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        else:
            os.environ["MLFLOW_EXPERIMENT_ID"] = _SESSION_EXPERIMENT_ID
        fluent = sys.modules.get("mlflow.tracking.fluent")
        if fluent is not None:
            fluent._active_experiment_id = None  # type: ignore[attr-defined]


# Hypothesis profiles: `ci` (the default) keeps the suite fast; HYPOTHESIS_PROFILE=deep runs the
# property tests that leave max_examples to the profile (the label detector's "any input" tests)
# with 10,000 examples each.
settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
settings.register_profile(
    "deep",
    max_examples=10_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# The heaviest test files, in seconds of one loaded run (`--durations`, 2 cores, 3 workers).
# pytest-xdist's `--dist loadfile` hands files to its workers in collection order; collected
# first, the long ones start at once on different workers instead of arriving at the end of the
# queue and running alone while the other workers idle.
_HEAVY_FILES = {
    "tests/mlflow/test_mlproject.py": 450,
    "tests/mlflow/test_mlproject_check.py": 250,
    "tests/spark/test_spark_engine.py": 540,
    "tests/spark/test_registry_spark.py": 300,
    "tests/mlflow/test_pipeline_run.py": 450,
    "tests/mlflow/test_tracking.py": 315,
    "tests/mlflow/test_registry.py": 305,
    "tests/reliability/test_concurrency.py": 205,
    "tests/test_config.py": 200,
    "tests/keras/test_audit_cli.py": 195,
    "tests/keras/test_demo.py": 185,
    "tests/reliability/test_uploads.py": 150,
    "tests/keras/test_retrain.py": 130,
    "tests/reliability/test_hostile_files.py": 105,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The heaviest files first (a stable sort: every other test keeps its place and order)."""
    root = config.rootpath

    def weight(item: pytest.Item) -> int:
        try:
            name = item.path.relative_to(root).as_posix()
        except ValueError:
            return 0
        return -_HEAVY_FILES.get(name, 0)

    items.sort(key=weight)
