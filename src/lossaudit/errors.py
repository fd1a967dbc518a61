"""Errors that end a command with one line and a distinct exit code.

Exit codes are part of the CLI contract (README, ``lossaudit --help``):

* 0 -- the audit passed;
* 1 -- findings at or above the failing severity;
* 2 -- bad input (a file, a model, labels or a spec lossaudit cannot use);
* 3 -- the audit finished and its local report is complete, but MLflow could not be reached (or
  could not be used: its TLS certificate did not verify, it refused the credentials).
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_TRACKING_UNAVAILABLE = 3


class LossauditError(Exception):
    """Base class: the message is the one line the user sees.

    Printed or stored, the message has the credentials of any URI in it masked (``user:***@``,
    ``?token=***``; :func:`lossaudit.redact.redact_text`): it may quote an MLflow error that
    quotes the URL it called.
    """

    exit_code = EXIT_BAD_INPUT

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
