"""MLflow stores for the tests: SQLite stores copied from one migrated empty database, and a real
``mlflow server`` on 127.0.0.1 for the tests that talk HTTP, shared by the whole session.

A new SQLite store runs MLflow's schema migrations (5-10 s on a busy machine); copying a migrated
empty database file gives each test its own store in milliseconds.

Started with a SQLite backend and a temporary artifact folder on a free port, with the job runner
off and one worker (2 processes, healthy in about 9 s instead of 15 processes and 20 s), polled
on ``/health``, and stopped with SIGTERM to its process group at the end of the session. Test
modules outside this folder that import these fixtures (``tests/reliability``) share the same
server: a second definition of ``mlflow_server`` finds the running one.

In front of it, for the credential and TLS tests (:mod:`lossaudit.tracking.http`), two kinds of
forwarding proxy on 127.0.0.1 (threads of the test process, about a millisecond to start):

* ``basic_auth_server`` / ``basic_auth_open_health_server`` -- HTTP basic auth (or a bearer token)
  on every path, as a reverse proxy (nginx ``auth_basic``) does, or on every path but ``/health``,
  as ``mlflow server --app-name basic-auth`` does (``_UNPROTECTED_PATH_PREFIXES`` in
  ``mlflow/server/auth/__init__.py``). The auth app itself is not used: it needs Flask-WTF
  (``mlflow[auth]``), which lossaudit does not install; 401 with ``WWW-Authenticate: Basic`` is
  what the app answers too.
* ``tls_server`` -- HTTPS with a self-signed certificate made with ``cryptography`` (an MLflow
  dependency) for 127.0.0.1, as a server behind a private CA looks to a client.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.client
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env() -> dict[str, str]:
    """This environment for an ``mlflow server``: job runner off, no telemetry, no client URI."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(
        {
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        }
    )
    return env


def server_command(root: Path, port: int) -> list[str]:
    """``mlflow server`` on 127.0.0.1:``port`` with its SQLite store and artifacts in ``root``,
    one worker."""
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    return [
        str(mlflow_cli) if mlflow_cli.exists() else "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "mlartifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def healthy(uri: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    root: Path
    log_file: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_file.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (it runs uvicorn as a child), SIGKILL if stuck."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except ProcessLookupError:
        pass


_RUNNING: dict[str, MlflowServer] = {}
"""The session's server, for every definition of the ``mlflow_server`` fixture (this conftest's,
and a test module's that imported it)."""


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    running = _RUNNING.get("session")
    if running is not None and running.process.poll() is None:
        yield running
        return
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    env = server_env()
    command = server_command(root, port)
    log_file = root / "server.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = MlflowServer(uri, root, log_file, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not healthy(uri):
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited with {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server not healthy after {START_TIMEOUT_SECONDS:g} s:\n{server.log_tail()}"
                )
            time.sleep(0.25)
        _RUNNING["session"] = server
        yield server
    finally:
        if _RUNNING.get("session") is server:
            del _RUNNING["session"]
        _stop(process)


@pytest.fixture(scope="session")
def migrated_empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with every table and migration, and no experiment but Default."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow-template")
    db = folder / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


def copy_store(template: Path, folder: Path) -> str:
    """A fresh store ``folder/mlflow.db`` copied from ``template``; its tracking URI."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


@contextlib.contextmanager
def fluent_tracking_uri(uri: str) -> Iterator[None]:
    """``mlflow.start_run``, ``mlflow.keras.log_model`` and the other fluent calls go to ``uri``
    in this process, and everything is put back after: MLflow's own tracking URI and
    ``MLFLOW_TRACKING_URI`` (which ``mlflow.set_tracking_uri`` sets or removes).

    The registries the tests build (trained Keras models, logged and registered) are built in the
    test process with it: the audits that follow load TensorFlow here anyway, so a build in a
    child process would pay for a second TensorFlow, Keras and MLflow import (10 CPU-seconds)."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def train_dense(x: Any, y: Any, units: int, activation: str, loss: str, epochs: int = 5) -> Any:
    """``Dense(units, activation)`` on ``x`` with seed 0, Adam(0.05), batch 64: the tiny registered
    models of the registry tests."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(units, activation=activation)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss, metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


@pytest.fixture
def sqlite_store(migrated_empty_db: Path, tmp_path: Path) -> str:
    """The tracking URI of this test's own SQLite store, in ``tmp_path/store``."""
    return copy_store(migrated_empty_db, tmp_path / "store")


# --- credentials and TLS in front of the session server -----------------------------------------

AUTH_USER = "alice"
AUTH_PASSWORD = "pa:ss@w0rd/#%!"
"""Characters that must be percent-encoded in a URI's userinfo, to catch a redaction or an
encoding that only works for plain passwords."""
AUTH_TOKEN = "tok-3f9a1c77e2b54d08"

# Hop-by-hop headers, and the ones the proxy sets itself.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "authorization",
    }
)


class ForwardingProxy(ThreadingHTTPServer):
    """An HTTP(S) server on 127.0.0.1 that forwards every request to ``upstream`` (host, port),
    optionally behind HTTP basic auth or a bearer token, optionally over TLS.

    ``authorizations`` lists the ``Authorization`` header of every request, in order.
    """

    daemon_threads = True

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        credentials: tuple[str, str] | None = None,
        token: str | None = None,
        open_paths: tuple[str, ...] = (),
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _ForwardingHandler)
        self.upstream = upstream
        self.accepted: set[str] = set()
        if credentials is not None:
            pair = f"{credentials[0]}:{credentials[1]}".encode()
            self.accepted.add("Basic " + base64.b64encode(pair).decode("ascii"))
        if token is not None:
            self.accepted.add(f"Bearer {token}")
        self.open_paths = open_paths
        self.tls = tls
        self.authorizations: list[str | None] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the request's thread: a client that rejects the certificate
        # ends its own connection, not the accept loop.
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away: nothing to report."""


class _ForwardingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ForwardingProxy

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        body = self._body()
        authorization = self.headers.get("Authorization")
        self.server.authorizations.append(authorization)
        path = self.path.split("?", 1)[0]
        if (
            self.server.accepted
            and not path.startswith(self.server.open_paths or ("\0",))
            and authorization not in self.server.accepted
        ):
            challenge = [("WWW-Authenticate", 'Basic realm="mlflow"'), ("Content-Type", "text/plain")]
            self._reply(401, challenge, b"You are not authenticated.")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
        connection = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _NOT_FORWARDED]
            self._reply(response.status, kept, data)
        finally:
            connection.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward


@dataclass(frozen=True)
class ProxiedServer:
    """The session server seen through a :class:`ForwardingProxy`."""

    uri: str
    """``http(s)://127.0.0.1:<port>``, without credentials."""
    proxy: ForwardingProxy
    upstream: MlflowServer
    cert_file: Path | None = None
    """The self-signed certificate (PEM) of a TLS proxy: its own CA."""

    def with_userinfo(self, user: str, password: str) -> str:
        """``uri`` with ``user:password@`` (percent-encoded, as a URI needs them)."""
        scheme, rest = self.uri.split("://", 1)
        return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def _upstream(server: MlflowServer) -> tuple[str, int]:
    host, port = server.uri.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


@contextlib.contextmanager
def running_proxy(proxy: ForwardingProxy) -> Iterator[ForwardingProxy]:
    """Serve ``proxy`` from a daemon thread; shut it down after."""
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=STOP_TIMEOUT_SECONDS)


def _auth_proxy(server: MlflowServer, open_paths: tuple[str, ...]) -> Iterator[ProxiedServer]:
    proxy = ForwardingProxy(
        _upstream(server), credentials=(AUTH_USER, AUTH_PASSWORD), token=AUTH_TOKEN, open_paths=open_paths
    )
    with running_proxy(proxy):
        yield ProxiedServer(f"http://127.0.0.1:{proxy.port}", proxy, server)


@pytest.fixture(scope="session")
def basic_auth_server(mlflow_server: MlflowServer) -> Iterator[ProxiedServer]:
    """The session server behind HTTP basic auth on every path, ``/health`` included: user
    :data:`AUTH_USER`, password :data:`AUTH_PASSWORD`, or the bearer token :data:`AUTH_TOKEN`."""
    yield from _auth_proxy(mlflow_server, ())


@pytest.fixture(scope="session")
def basic_auth_open_health_server(mlflow_server: MlflowServer) -> Iterator[ProxiedServer]:
    """As ``basic_auth_server``, with ``/health`` open, as MLflow's own basic-auth app leaves it."""
    yield from _auth_proxy(mlflow_server, ("/health",))


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for a day, and its key (PEM
    files ``cert.pem`` and ``key.pem`` in ``folder``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lossaudit test server")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="session")
def tls_server(
    mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxiedServer]:
    """The session server over HTTPS with a self-signed certificate (``cert_file``), no auth."""
    cert_file, key_file = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    proxy = ForwardingProxy(_upstream(mlflow_server), tls=context)
    with running_proxy(proxy):
        yield ProxiedServer(f"https://127.0.0.1:{proxy.port}", proxy, mlflow_server, cert_file)
