"""Where audits are tracked: resolve the MLflow tracking URI and check it answers before using it.

Resolution order: an explicit ``--tracking-uri``, then ``MLFLOW_TRACKING_URI``, then an embedded
SQLite store in the working folder (``sqlite:///<cwd>/mlflow.db``; MLflow's own default
``DEFAULT_TRACKING_URI`` in ``mlflow/store/tracking/__init__.py``, made absolute so that a run
logged from a sub-folder still lands in the same place).

Artifacts of a SQLite store go to ``mlruns/`` beside the database file. MLflow's client-side
SQLite store would put them in ``./mlruns`` of whatever folder the process runs in
(``_get_sqlalchemy_store`` in ``mlflow/tracking/_tracking_service/utils.py``; ``./mlartifacts`` is
the default of ``mlflow server --artifacts-destination`` only), scattering one store's artifacts
over every folder it was used from; so lossaudit creates its experiments with an explicit
artifact location ``<db folder>/mlruns/<experiment>``. Experiments that already exist keep theirs.

An HTTP(S) server is probed at ``<uri>/health`` with a 2-second timeout before any MLflow call:
MLflow's own client retries a dead server for minutes (``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` with
exponential backoff), which would turn "the server is down" into a hang.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError, TrackingUnavailableError

if TYPE_CHECKING:
    from mlflow import MlflowClient

HEALTH_TIMEOUT_SECONDS = 2.0
DEFAULT_DB_NAME = "mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlruns"

# Once the server has answered /health, a failing request is retried a little, not for minutes.
_HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


@dataclass(frozen=True)
class TrackingTarget:
    """A resolved tracking URI and where it came from."""

    uri: str
    origin: str
    """``option`` (--tracking-uri), ``environment`` (MLFLOW_TRACKING_URI) or ``default``."""
    artifact_root: str | None = None
    """For a SQLite store: the folder new experiments keep their artifacts in (``mlruns/``
    beside the database file)."""

    @property
    def is_http(self) -> bool:
        return self.uri.lower().startswith(("http://", "https://"))

    @property
    def is_default(self) -> bool:
        return self.origin == "default"

    def describe(self) -> str:
        """One human line: where runs go."""
        if self.artifact_root is not None:
            kind = "the local MLflow store" if self.is_default else "the MLflow store"
            return f"{kind} {self.uri} (artifacts in {self.artifact_root})"
        return f"MLflow at {self.uri}"


def resolve_tracking_uri(explicit: str | None = None, cwd: str | Path | None = None) -> TrackingTarget:
    """The tracking URI to use: ``explicit``, else ``MLFLOW_TRACKING_URI``, else ``<cwd>/mlflow.db``.

    Parameters
    ----------
    explicit : str, optional
        A URI given on the command line or in a pipeline file.
    cwd : path, optional
        The folder for the embedded default store (the current directory when not given).
    """
    if explicit is not None and explicit.strip():
        return TrackingTarget(explicit.strip(), "option", _sqlite_artifact_root(explicit.strip()))
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return TrackingTarget(env, "environment", _sqlite_artifact_root(env))
    folder = Path(cwd) if cwd is not None else Path.cwd()
    folder = folder.resolve()
    return TrackingTarget(
        f"sqlite:///{folder / DEFAULT_DB_NAME}",
        "default",
        artifact_root=str(folder / DEFAULT_ARTIFACT_DIR),
    )


def _sqlite_artifact_root(uri: str) -> str | None:
    """``<db folder>/mlruns`` for a ``sqlite:///`` URI with a file path, else None."""
    if not uri.lower().startswith("sqlite:///"):
        return None
    db_path = uri[len("sqlite:///") :].split("?", 1)[0]
    if not db_path or db_path == ":memory:":
        return None
    return str(Path(db_path).resolve().parent / DEFAULT_ARTIFACT_DIR)


def unreachable_message(uri: str, reason: str, report_dir: str | Path | None = None) -> str:
    """The one line a user sees when the server does not answer."""
    text = f"MLflow tracking server at {uri} is unreachable: {reason}"
    if report_dir is not None:
        text += f"; the local report is in {report_dir}; upload it later with `lossaudit log {report_dir}`"
    return text


def check_reachable(
    target: TrackingTarget,
    *,
    report_dir: str | Path | None = None,
    timeout: float = HEALTH_TIMEOUT_SECONDS,
) -> None:
    """Raise :class:`TrackingUnavailableError` when ``target`` cannot be used.

    HTTP(S): ``GET <uri>/health`` must get any HTTP answer within ``timeout`` seconds (an error
    status such as 401 still proves a server is there). SQLite: the database's folder must exist.
    Other schemes (``file:``, ``databricks``) are left to MLflow.
    """
    if target.is_http:
        url = target.uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                response.read(64)
        except urllib.error.HTTPError:
            return
        except urllib.error.URLError as exc:
            raise TrackingUnavailableError(
                unreachable_message(target.uri, _reason_text(exc.reason), report_dir)
            ) from None
        except (TimeoutError, OSError) as exc:
            raise TrackingUnavailableError(
                unreachable_message(target.uri, _reason_text(exc), report_dir)
            ) from None
        return
    if target.uri.lower().startswith("sqlite:///"):
        db_path = Path(target.uri[len("sqlite:///") :])
        if not db_path.parent.is_dir():
            raise TrackingUnavailableError(
                unreachable_message(target.uri, f"folder {db_path.parent} does not exist", report_dir)
            )


def _reason_text(reason: Any) -> str:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return f"no answer within {HEALTH_TIMEOUT_SECONDS:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    text = str(reason).strip() or type(reason).__name__
    return text.splitlines()[0][:200]


def connect(target: TrackingTarget, *, report_dir: str | Path | None = None) -> MlflowClient:
    """An :class:`mlflow.MlflowClient` for ``target``, after :func:`check_reachable`.

    The same URI serves as registry URI, so ``models:/`` lookups go to the same server or store.
    """
    check_reachable(target, report_dir=report_dir)
    if target.is_http:
        for key, value in _HTTP_RETRY_DEFAULTS.items():
            os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # set_terminated on a REST store writes "View run ... at: URL" to stdout
    # (``_log_url`` in mlflow/tracking/_tracking_service/client.py), which would break --json
    # output; lossaudit prints the run's URL itself.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # Artifact downloads draw tqdm bars on stderr, another source of noise around one-line errors.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # A new SQLite store logs its table creation and migrations at INFO on stderr: noise in a
    # command whose stderr is reserved for one-line errors.
    for name in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=target.uri, registry_uri=target.uri)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None = None) -> str:
    """The id of experiment ``name``, created when missing (restored when deleted).

    ``artifact_root`` (a local folder) gives a new experiment the artifact location
    ``<artifact_root>/<name>``; None leaves the location to the store.
    """
    if not name.strip():
        raise BadInputError("the MLflow experiment name is empty")
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        from mlflow.exceptions import MlflowException

        location = None
        if artifact_root is not None:
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "experiment"
            location = (Path(artifact_root) / slug).as_uri()
        try:
            return str(client.create_experiment(name, artifact_location=location))
        except MlflowException:
            # Another process created it between the lookup and the create.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return str(experiment.experiment_id)


def run_url(target: TrackingTarget, experiment_id: str, run_id: str) -> str | None:
    """The MLflow UI page of a run on an HTTP(S) server; None for local stores."""
    if not target.is_http:
        return None
    return f"{target.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
