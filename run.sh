#!/usr/bin/env bash
# One entry point for a fresh machine. Creates .venv and installs lossaudit on first use.
#   ./run.sh demo    the main job: every seed scenario, logged to a local SQLite MLflow store
#   ./run.sh test    lint, type-check and the whole test suite
#   ./run.sh setup   only install
set -euo pipefail
cd "$(dirname "$0")"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}" TF_ENABLE_ONEDNN_OPTS=0
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true PIP_DISABLE_PIP_VERSION_CHECK=1
# `mlflow run` starts entry points (`lossaudit ...`) through the shell: the venv's scripts first.
export PATH="$PWD/.venv/bin:$PATH"

setup() {
  if [ ! -x .venv/bin/lossaudit ] || [ pyproject.toml -nt .venv/.installed ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[dev,spark]"
    # tf-keras reproduces legacy (Keras 2) metric resolution for real. It declares a dependency on
    # `tensorflow`, which tensorflow-cpu already provides under another name: hence --no-deps.
    .venv/bin/python -m pip install -q --no-deps "tf-keras>=2.20,<2.22"
    touch .venv/.installed
  fi
}

case "${1:-}" in
  setup) setup ;;
  demo)
    setup
    shift
    # The embedded default: a SQLite store in this folder (artifacts in ./mlruns).
    export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$PWD/mlflow.db}"
    exec .venv/bin/mlflow run . -e demo --env-manager local "$@"
    ;;
  test)
    setup
    shift
    .venv/bin/ruff check src tests benchmarks
    .venv/bin/ruff format --check src tests benchmarks
    .venv/bin/mypy src
    # Three workers on two cores: many tests wait on subprocesses and servers. Each test file runs
    # in one worker (its module and session fixtures are built once there).
    exec .venv/bin/python -m pytest -n 3 --dist loadfile --durations=15 "$@"
    ;;
  *)
    echo "usage: ./run.sh demo|test|setup" >&2
    exit 2
    ;;
esac
