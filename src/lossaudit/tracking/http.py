"""Secrets in tracking URIs, and the reachability probe of an HTTP(S) tracking server.

Redaction. A tracking URI may carry credentials: ``http://user:password@host`` (HTTP basic auth;
MLflow sends them because ``requests`` takes the userinfo of a URL as basic auth), a token in a
query parameter, or a database password (``postgresql://user:password@host/db``). lossaudit
connects with the URI as given but shows and stores only :func:`redact_uri` of it
(``http://user:***@host``): :func:`lossaudit.tracking.store.resolve_tracking_uri` puts the
redacted form in ``TrackingTarget.uri`` (printed, logged, written to report.json, upload records
and run links) and keeps the original for MLflow alone (``TrackingTarget.client_uri``).
:func:`redact_text` scrubs the same secrets from free text, such as an MLflow error that quotes
the URL it called (``API request to http://user:password@host/api/... failed``); every
:class:`~lossaudit.errors.LossauditError` message goes through it.

The probe. Before any MLflow call, :func:`probe` asks the server's ``/health`` and one
authenticated API call through MLflow's own HTTP client (``mlflow.utils.rest_utils.http_request``
with the host credentials MLflow's REST store would use, ``get_default_host_creds``), so every
setting MLflow honours applies to the probe too: credentials in the URI, ``MLFLOW_TRACKING_USERNAME``
and ``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_INSECURE_TLS``,
``MLFLOW_TRACKING_SERVER_CERT_PATH``, ``MLFLOW_TRACKING_CLIENT_CERT_PATH``. Each request has a
2-second timeout and no retries: MLflow's own client retries a dead server for minutes.

Every failure is one line and exit code 3 (the local report is complete; MLflow could not be
used): the server does not answer, its TLS certificate does not verify, or it refuses the
credentials (HTTP 401/403). The message never holds a password.

Importing this module imports no MLflow.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from lossaudit.errors import TrackingUnavailableError
from lossaudit.redact import MASK, redact_text, redact_uri


class TrackingTarget(Protocol):
    """What the probe needs of :class:`lossaudit.tracking.store.TrackingTarget` (a protocol, so
    that this module, which the store imports, imports nothing of the store)."""

    @property
    def uri(self) -> str: ...

    @property
    def client_uri(self) -> str: ...


PROBE_TIMEOUT_SECONDS = 2.0
AUTH_CHECK_ENDPOINT = "/api/2.0/mlflow/experiments/search"
"""An API call every authenticated user may make (the auth app filters its result): MLflow's
basic-auth app leaves ``/health`` open, so only an API call tells whether the credentials work."""


# --- the probe ---------------------------------------------------------------------------------


def _hint(report_dir: str | Path | None) -> str:
    if report_dir is None:
        return ""
    return f"; the local report is in {report_dir}; upload it later with `lossaudit log {report_dir}`"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything behind it: causes, contexts, urllib3's ``reason`` and exception args."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked: list[Any] = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        todo.extend(item for item in linked if isinstance(item, BaseException))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact_text(text.splitlines()[0])[:200]


def failure_reason(exc: BaseException, timeout: float = PROBE_TIMEOUT_SECONDS) -> str:
    """Why a request to the server failed, in a few words (no URL, no secret)."""
    import urllib3.exceptions

    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or cause.reason or "certificate rejected"
            return (
                f"TLS certificate verification failed ({detail}); set MLFLOW_TRACKING_SERVER_CERT_PATH "
                "to the CA certificate that signed the server's certificate, or "
                "MLFLOW_TRACKING_INSECURE_TLS=true to skip verification"
            )
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            detail = cause.reason or _first_line(cause)
            return f"TLS handshake failed ({detail}; does the server speak https?)"
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "connection refused"
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return f"host name not resolved ({cause.strerror or _first_line(cause)})"
    for cause in causes:
        # urllib3's NewConnectionError is a ConnectTimeoutError, whatever failed.
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            continue
        if isinstance(cause, TimeoutError | urllib3.exceptions.TimeoutError):
            return f"no answer within {timeout:g} s"
    text = " ".join(_first_line(cause) for cause in causes)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text:
        return f"no answer within {timeout:g} s"
    # The innermost cause says most; MLflow's outer message repeats the URL.
    return _first_line(causes[-1])


def _refused_credentials(target: TrackingTarget, status: int, report_dir: str | Path | None) -> str:
    word = "authentication failed" if status == 401 else "permission denied"
    return (
        f"MLflow tracking server at {target.uri} refused the credentials (HTTP {status}: {word}); "
        "give them as user:password@ in the tracking URI, as MLFLOW_TRACKING_USERNAME and "
        f"MLFLOW_TRACKING_PASSWORD, or as MLFLOW_TRACKING_TOKEN{_hint(report_dir)}"
    )


def unreachable_message(uri: str, reason: str, report_dir: str | Path | None = None) -> str:
    """The one line a user sees when the server does not answer."""
    text = f"MLflow tracking server at {redact_uri(uri)} is unreachable: {redact_text(reason)}"
    if report_dir is not None:
        text += f"; the local report is in {report_dir}; upload it later with `lossaudit log {report_dir}`"
    return text


def _unreachable(target: TrackingTarget, reason: str, report_dir: str | Path | None) -> str:
    return unreachable_message(target.uri, reason, report_dir)


def quiet_insecure_tls() -> None:
    """With ``MLFLOW_TRACKING_INSECURE_TLS`` the user chose not to verify: no urllib3 warning on
    every request (stderr is kept for one-line errors)."""
    import urllib3.exceptions

    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)


def probe(
    target: TrackingTarget,
    *,
    report_dir: str | Path | None = None,
    timeout: float = PROBE_TIMEOUT_SECONDS,
) -> None:
    """Raise :class:`TrackingUnavailableError` unless the HTTP(S) server ``target`` answers and
    accepts the credentials.

    ``GET /health`` must get an HTTP answer within ``timeout`` seconds (any status but 401/403
    proves a server is there), then ``GET`` :data:`AUTH_CHECK_ENDPOINT` must not be refused with
    401/403. Both go through MLflow's HTTP client with MLflow's host credentials for the URI (see
    the module docstring), without retries.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.utils import credentials, rest_utils

    # Untyped in MLflow.
    get_default_host_creds: Callable[[str], Any] = credentials.get_default_host_creds
    http_request: Callable[..., Any] = rest_utils.http_request

    try:
        creds = get_default_host_creds(target.client_uri)
    except MlflowException as exc:
        # MLflow refuses MLFLOW_TRACKING_INSECURE_TLS together with MLFLOW_TRACKING_SERVER_CERT_PATH.
        reason = _first_line(exc)
        if "server_cert_path" in reason:
            reason = (
                "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH are both set; "
                "set one of them"
            )
        raise TrackingUnavailableError(
            f"MLflow tracking server at {target.uri} cannot be used: {reason}{_hint(report_dir)}"
        ) from None
    if creds.ignore_tls_verification:
        quiet_insecure_tls()
    for endpoint, params in (("/health", None), (AUTH_CHECK_ENDPOINT, {"max_results": 1})):
        try:
            response = http_request(
                creds,
                endpoint,
                "GET",
                max_retries=0,
                backoff_factor=0,
                timeout=timeout,
                raise_on_status=False,
                params=params,
            )
        except Exception as exc:
            raise TrackingUnavailableError(
                _unreachable(target, failure_reason(exc, timeout), report_dir)
            ) from None
        status = int(response.status_code)
        response.close()
        if status in (401, 403):
            raise TrackingUnavailableError(_refused_credentials(target, status, report_dir))


__all__ = [
    "AUTH_CHECK_ENDPOINT",
    "MASK",
    "PROBE_TIMEOUT_SECONDS",
    "failure_reason",
    "probe",
    "quiet_insecure_tls",
    "redact_text",
    "redact_uri",
    "unreachable_message",
]
