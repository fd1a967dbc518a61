"""Secrets masked in tracking URIs and in free text that quotes one.

A tracking URI may carry credentials: ``http://user:password@host`` (HTTP basic auth), a token in
a query parameter, or a database password (``postgresql://user:password@host/db``). lossaudit
connects with the URI as given but shows and stores only :func:`redact_uri` of it
(``http://user:***@host``); :func:`redact_text` scrubs the same secrets from free text, such as an
MLflow error that quotes the URL it called. Every :class:`~lossaudit.errors.LossauditError`
message goes through it.

A base module: it imports only the standard library, so :mod:`lossaudit.errors` (under
everything) and the MLflow adapters (:mod:`lossaudit.tracking.http`) can both use it.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ -- the userinfo runs up to the last "@" before the path, query or fragment
# (a password with an unescaped "@" still ends at the host).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s]*)@")
# Query parameters whose values are secrets: ?token=..., &access_token=..., &sig=... (SAS), ...
_SECRET_PARAM = re.compile(
    r"(?P<lead>[?&;](?P<name>[A-Za-z0-9_.\-]*?(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key"
    r"|credentials?|auth[A-Za-z_]*|signature)|key|sig|code|pass)=)(?P<value>[^&#;\s'\"]*)",
    re.IGNORECASE,
)


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    if ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        return f"{match.group('scheme')}{user}:{MASK}@"
    # A lone name may be a token (https://TOKEN@host): hide it too.
    return f"{match.group('scheme')}{MASK}@"


def _mask_param(match: re.Match[str]) -> str:
    return match.group("lead") + (MASK if match.group("value") else "")


def redact_uri(uri: str) -> str:
    """``uri`` fit to print: the password of its userinfo (``user:***@``; a userinfo without a
    password, which may be a token, becomes ``***@``) and the values of secret-looking query
    parameters (``token``, ``access_token``, ``api_key``, ``sig``, ...) masked.

    URIs without secrets (``sqlite:///...``, ``http://host:5000``, ``databricks``) come back
    unchanged.
    """
    return redact_text(uri)


def redact_text(text: str) -> str:
    """``text`` with every URI in it redacted as :func:`redact_uri` does (error messages that
    quote a URL)."""
    if "@" not in text and "=" not in text:
        return text
    return _SECRET_PARAM.sub(_mask_param, _USERINFO.sub(_mask_userinfo, text))
