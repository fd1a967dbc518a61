"""Shared by ``test_concurrency`` and ``test_uploads``: report folders to upload, ``lossaudit log``
as a real process, and an ``mlflow server`` that a test may kill and start again on the same
backend store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.mlflow.conftest import healthy, server_command, server_env

START_TIMEOUT_SECONDS = 120.0


def write_report(folder: Path, *, model: str = "cce_one_unit.keras") -> Path:
    """A complete report folder (LA101: a 1-unit sigmoid head with categorical cross-entropy),
    with its plots: what `lossaudit audit` leaves when MLflow is down."""
    from lossaudit.core.audit import audit_predictions
    from lossaudit.core.compare import ReportedMetric
    from lossaudit.core.head import HeadSpec
    from lossaudit.sinks.local import write_report_folder

    y = np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 1])
    p = np.full((10, 1), 0.6)
    head = HeadSpec.from_values(
        units=1, activation="sigmoid", loss="categorical_crossentropy", metrics=("accuracy",)
    )
    report = audit_predictions(
        head,
        y,
        p,
        (ReportedMetric.parse("accuracy=0.70", source="evaluate"),),
        context={"model": model, "data_hash": "sha256:0123abcd"},
        command="audit",
    )
    write_report_folder(report, folder)
    return folder


def copies(template: Path, root: Path, count: int) -> list[Path]:
    """``count`` copies of a report folder under ``root`` (``r00``, ``r01``, ...)."""
    folders = []
    for i in range(count):
        folder = root / f"r{i:02d}"
        shutil.copytree(template, folder)
        folders.append(folder)
    return folders


def local_files(folder: Path) -> set[str]:
    """The files of a report folder that are its run's artifacts: all but the upload record."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "upload.json"}


def artifact_files(client: Any, run_id: str, path: str | None = None) -> set[str]:
    found: set[str] = set()
    for info in client.list_artifacts(run_id, path):
        found |= artifact_files(client, run_id, info.path) if info.is_dir else {info.path}
    return found


def env_without_tracking_uri() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("LOSSAUDIT_DEBUG", None)
    env.update(
        {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
    )
    return env


def start_logs(folders: list[Path], cwd: Path, *extra: str) -> list[subprocess.Popen[str]]:
    """``lossaudit log FOLDER`` for every folder at once, each a process of its own."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "lossaudit", "log", str(folder), *extra],
            cwd=cwd,
            env=env_without_tracking_uri(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in folders
    ]


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def wait_all(processes: list[subprocess.Popen[str]], timeout: float = 600.0) -> list[Finished]:
    deadline = time.monotonic() + timeout
    done = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        done.append(Finished(process.returncode, out, err))
    return done


@dataclass
class KillableServer:
    """An ``mlflow server`` on 127.0.0.1 with a SQLite backend in ``root``; :meth:`kill` stops it
    the hard way (SIGKILL to its process group, as an OOM killer or a lost node would), and
    :meth:`start` brings it back on the same port, backend store and artifact folder."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = server_env()
        command = server_command(self.root, self.port)
        self.starts += 1
        log_file = self.root / f"server-{self.starts}.log"
        with log_file.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not healthy(self.uri):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = log_file.read_text(encoding="utf-8", errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"mlflow server did not start (exit {self.process.returncode}):\n{tail}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass
