"""Errors that end a command with one line and a distinct exit code.

Exit codes are part of the CLI contract (README, ``lossaudit --help``):

* 0 -- the audit passed;
* 1 -- findings at or above the failing severity;
* 2 -- bad input (a file, a model, labels or a spec lossaudit cannot use);
* 3 -- the audit finished and its local report is complete, but MLflow could not be reached (or
  could not be used: its TLS certificate did not verify, it refused the credentials).
"""

from __future__ import annotations

from typing import Any

EXIT_PASS = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_TRACKING_UNAVAILABLE = 3


class LossauditError(Exception):
    """Base class: the message is the one line the user sees.

    Printed or stored, the message has the credentials of any URI in it masked (``user:***@``,
    ``?token=***``; :func:`lossaudit.redact.redact_text`): it may quote an MLflow error that
    quotes the URL it called.

    ``report`` is the audit's report when there is one to keep (an audit whose local report is
    complete but whose MLflow logging failed; a training stopped by its findings), else None.
    """

    exit_code = EXIT_BAD_INPUT
    report: Any = None

    def __str__(self) -> str:
        from lossaudit.redact import redact_text

        return redact_text(super().__str__())


class BadInputError(LossauditError):
    """Input that cannot be audited: missing or corrupt file, unreadable labels, mismatched shapes."""

    exit_code = EXIT_BAD_INPUT


class RefusedError(BadInputError):
    """lossaudit refuses to do what the input asks without an explicit flag (Lambda code)."""


class TrackingUnavailableError(LossauditError):
    """The MLflow tracking server could not be reached, or refused the TLS handshake or the
    credentials."""

    exit_code = EXIT_TRACKING_UNAVAILABLE


class AuditFailedError(LossauditError):
    """The audit found what it fails on (the CLI's exit 1): raised by the Python API where a
    verdict must stop something, such as :class:`lossaudit.keras.AuditCallback` stopping a fit, or
    :meth:`lossaudit.AuditReport.raise_for_verdict`. ``report`` holds the findings."""

    exit_code = EXIT_FINDINGS

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message cut to its first line and ``limit`` characters (its type's name when
    it has no message): what a one-line error may quote of a library's error."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]
