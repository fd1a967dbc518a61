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
exponential backoff), which would turn "the server is down" into a hang. The probe goes through
MLflow's own HTTP client, so its TLS and credential settings apply (:mod:`lossaudit.tracking.http`).

Credentials in a URI (``http://user:password@host``, ``?token=...``) never leave the process:
:attr:`TrackingTarget.uri` is the redacted URI (``user:***@``) that is printed and stored;
MLflow alone gets the URI as given (:attr:`TrackingTarget.client_uri`).

A SQLite store is opened under an exclusive lock on ``<db>.lock`` (``fcntl.flock``), beside the
database. MLflow's ``SqlAlchemyStore.__init__`` (``mlflow/store/tracking/sqlalchemy_store.py``)
creates the tables and runs the alembic migrations of a new database without a lock of its own,
so audits started together on a fresh folder each ran them at once (``duplicate column name:
step``, ``table _alembic_tmp_tags already exists``) and could leave the schema half migrated for
good. Under the lock the first process migrates and the others find a complete schema; after that
SQLite serialises the writers itself (MLflow's sessions wait up to 20 s on a busy database).
Whatever goes wrong while opening a store is a :class:`TrackingUnavailableError` (exit 3), never
an internal error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lossaudit.errors import BadInputError, TrackingUnavailableError
from lossaudit.redact import redact_uri
from lossaudit.tracking.http import probe, unreachable_message

if TYPE_CHECKING:
    from mlflow import MlflowClient

HEALTH_TIMEOUT_SECONDS = 2.0
RUN_ID_ENV = "MLFLOW_RUN_ID"
"""The run ``mlflow run`` opened for this process (set in the entry point's environment)."""
DEFAULT_DB_NAME = "mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlruns"
LOCK_SUFFIX = ".lock"
"""The schema lock of a SQLite store ``<db>`` is the file ``<db>.lock`` beside it."""
LOCK_TIMEOUT_SECONDS = 300.0
"""How long a process waits for another one to finish creating a SQLite store's schema."""
# What MLflow says about a SQLite schema that concurrent migrations left half done.
_HALF_MIGRATED = re.compile(r"_alembic_tmp_|duplicate column name|table \w+ already exists|Online migration")

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
    secret_uri: str | None = field(default=None, repr=False, compare=False)
    """The URI as given when ``uri`` is its redacted form (it holds a password or token); None
    when the two are the same. Never print it: see :attr:`client_uri`."""

    @property
    def client_uri(self) -> str:
        """The URI MLflow connects with, credentials included: for MLflow clients only."""
        return self.secret_uri or self.uri

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
        return _given(explicit.strip(), "option")
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return _given(env, "environment")
    folder = Path(cwd) if cwd is not None else Path.cwd()
    folder = folder.resolve()
    return TrackingTarget(
        f"sqlite:///{folder / DEFAULT_DB_NAME}",
        "default",
        artifact_root=str(folder / DEFAULT_ARTIFACT_DIR),
    )


_TRACKING_SCHEMES = frozenset(
    {"file", "sqlite", "http", "https", "databricks", "databricks-uc", "uc", "postgresql", "mysql", "mssql"}
)
"""Schemes MLflow's tracking stores take (a SQLAlchemy ``dialect+driver`` counts as its dialect)."""


def _given(uri: str, origin: str) -> TrackingTarget:
    """A target for a URI the user gave: shown redacted, connected to as given. A scheme MLflow has
    no store for is refused here, before any audit runs (exit 2), not after it."""
    shown = redact_uri(uri)
    # "databricks" and "databricks://profile" name a scheme; a bare path is a file store.
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ("databricks" if uri == "databricks" else "file")
    if scheme.split("+", 1)[0] not in _TRACKING_SCHEMES:
        from lossaudit.errors import BadInputError

        known = ", ".join(sorted(_TRACKING_SCHEMES))
        raise BadInputError(f"tracking URI {shown}: MLflow has no tracking store for it (schemes: {known})")
    return TrackingTarget(shown, origin, _sqlite_artifact_root(uri), secret_uri=None if shown == uri else uri)


def sqlite_db_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (absolute), or None (another scheme, in memory)."""
    if not uri.lower().startswith("sqlite:///"):
        return None
    db_path = uri[len("sqlite:///") :].split("?", 1)[0]
    if not db_path or db_path == ":memory:":
        return None
    return Path(db_path).resolve()


def _sqlite_artifact_root(uri: str) -> str | None:
    """``<db folder>/mlruns`` for a ``sqlite:///`` URI with a file path, else None."""
    db_path = sqlite_db_path(uri)
    return None if db_path is None else str(db_path.parent / DEFAULT_ARTIFACT_DIR)


def check_reachable(
    target: TrackingTarget,
    *,
    report_dir: str | Path | None = None,
    timeout: float = HEALTH_TIMEOUT_SECONDS,
) -> None:
    """Raise :class:`TrackingUnavailableError` when ``target`` cannot be used.

    HTTP(S): ``GET <uri>/health`` must get an HTTP answer within ``timeout`` seconds, through
    MLflow's HTTP client with its TLS and credential settings, and the server must not refuse the
    credentials (:func:`lossaudit.tracking.http.probe`). SQLite: the database's folder must exist.
    Other schemes (``file:``, ``databricks``) are left to MLflow.
    """
    if target.is_http:
        probe(target, report_dir=report_dir, timeout=timeout)
        return
    if target.uri.lower().startswith("sqlite:///"):
        db_path = Path(target.uri[len("sqlite:///") :])
        if not db_path.parent.is_dir():
            raise TrackingUnavailableError(
                unreachable_message(target.uri, f"folder {db_path.parent} does not exist", report_dir)
            )


def store_failure_message(
    target: TrackingTarget, what: str, exc: BaseException, report_dir: str | Path | None = None
) -> str:
    """One line: the store (or server) ``what`` (``refused the audit run``, ...), why, and where
    the local report waits for ``lossaudit log``."""
    text = str(exc).strip() or type(exc).__name__
    reason = f"{type(exc).__name__}: {text.splitlines()[0][:200]}"
    if target.is_http:
        return unreachable_message(target.uri, reason, report_dir)
    line = f"MLflow store {redact_uri(target.uri)} {what}: {reason}"
    if report_dir is not None:
        line += f"; the local report is in {report_dir}; upload it later with `lossaudit log {report_dir}`"
    return line


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[bool]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (a file, created when missing, or a folder).

    Yields True when locked, False when the lock cannot be had (the file cannot be created in a
    read-only folder, or no ``fcntl`` on this platform): callers go on without it.

    Raises
    ------
    TimeoutError
        Another process held the lock for ``timeout`` seconds.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield False
        return
    try:
        if path.is_dir():
            descriptor = os.open(path, os.O_RDONLY)
        else:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    try:
        deadline = time.monotonic() + timeout
        locked = True
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    held = f"another process has held the lock {path} for {timeout:g} s"
                    raise TimeoutError(held) from None
                time.sleep(0.05)
            except OSError:  # a file system without flock (some network mounts)
                locked = False
                break
        try:
            yield locked
        finally:
            if locked:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def schema_lock(target: TrackingTarget, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold the exclusive lock ``<db>.lock`` of a SQLite store (a no-op for other stores).

    Taken by :func:`connect` while MLflow opens the store, which creates and migrates the schema
    of a new database. A folder where the lock file cannot be created (read-only) goes without
    the lock: nothing could migrate such a store anyway.

    Raises
    ------
    TimeoutError
        Another process held the lock for ``timeout`` seconds.
    """
    db_path = sqlite_db_path(target.uri)
    if db_path is None:
        yield
        return
    with file_lock(db_path.with_name(db_path.name + LOCK_SUFFIX), timeout=timeout):
        yield


def connect(target: TrackingTarget, *, report_dir: str | Path | None = None) -> MlflowClient:
    """An :class:`mlflow.MlflowClient` for ``target``, after :func:`check_reachable`.

    The same URI serves as registry URI, so ``models:/`` lookups go to the same server or store.
    A SQLite store is opened (and, when new, created) under :func:`schema_lock`.

    Raises
    ------
    TrackingUnavailableError
        The server does not answer, or the store cannot be opened (the message names
        ``report_dir`` and ``lossaudit log`` when given).
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
    try:
        from mlflow import MlflowClient  # seconds: imported before the lock, not under it

        if sqlite_db_path(target.uri) is not None:
            # The SQL store's modules take seconds more to import (MLflow imports them when it
            # opens the store): not under the lock either, or concurrent audits queue on imports.
            import alembic.script  # noqa: F401
            import mlflow.store.db.utils
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

        with schema_lock(target):
            # Creates the tracking store now (``TrackingServiceClient.__init__``): for a new
            # SQLite database, its tables and migrations, inside the lock.
            return MlflowClient(tracking_uri=target.client_uri, registry_uri=target.client_uri)
    except TrackingUnavailableError:
        raise
    except Exception as exc:
        what = "cannot be opened"
        if sqlite_db_path(target.uri) is not None and _HALF_MIGRATED.search(str(exc)):
            what += " (its schema was left half-migrated by an earlier crash or race: move the file aside)"
        raise TrackingUnavailableError(store_failure_message(target, what, exc, report_dir)) from None


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


def project_run_id(tracking_uri: str | None = None) -> str | None:
    """The run ``mlflow run`` opened for this process (``MLFLOW_RUN_ID``), if any.

    With ``tracking_uri`` (an explicit ``--tracking-uri`` or a pipeline's ``log.tracking_uri``):
    the id only when that URI is the project run's own store (``MLFLOW_TRACKING_URI``), since a
    run can only be nested under a parent in the same store; None otherwise.
    """
    run_id = os.environ.get(RUN_ID_ENV, "").strip() or None
    if run_id is None or tracking_uri is None or not tracking_uri.strip():
        return run_id
    if resolve_tracking_uri(tracking_uri).uri != resolve_tracking_uri(None).uri:
        return None
    return run_id
