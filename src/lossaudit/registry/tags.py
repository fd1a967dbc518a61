"""The verdict tags on a model version: their names, what they say and writing them.

Reading: :func:`already_audited` (the tags record an outcome of the same data, rules and failing
severity that a new audit would repeat, so the job skips the version) and :func:`settle` (a
version this job could not audit keeps its earlier pass or fail verdict; one without gets
``error``). Writing: :func:`write_version_tags`, as each version finishes. A fresh verdict writes
``lossaudit.verdict``, ``lossaudit.codes``, ``lossaudit.audit_run``, ``lossaudit.audited_at``,
``lossaudit.fail_on``, ``lossaudit.data_hash`` and ``lossaudit.rules_version`` (and removes the
error tags); a version that cannot be audited now gets ``lossaudit.error``,
``lossaudit.error_kind`` and ``lossaudit.error_at``. ``lossaudit.data`` is the one tag the user
sets: the version's eval data (:mod:`lossaudit.registry.evaldata`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lossaudit.registry.results import AUDITED, FRESH, JUDGED, NOT_AUDITED, SKIPPED, STORED, VersionResult
from lossaudit.registry.workers import ERROR_BAD_INPUT

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from lossaudit.registry.versions import VersionRef

TAG_VERDICT = "lossaudit.verdict"
TAG_CODES = "lossaudit.codes"
TAG_AUDIT_RUN = "lossaudit.audit_run"
TAG_AUDITED_AT = "lossaudit.audited_at"
TAG_DATA_HASH = "lossaudit.data_hash"
TAG_RULES_VERSION = "lossaudit.rules_version"
TAG_FAIL_ON = "lossaudit.fail_on"
TAG_ERROR = "lossaudit.error"
TAG_ERROR_KIND = "lossaudit.error_kind"
TAG_ERROR_AT = "lossaudit.error_at"
"""When the version last could not be audited (ISO 8601, UTC), with ``lossaudit.error``."""
ERROR_TAGS = (TAG_ERROR, TAG_ERROR_KIND, TAG_ERROR_AT)
TAG_DATA = "lossaudit.data"
"""Input tag: the eval data of a version (a path or an artifact URI), set by the user."""
_MAX_TAG_VALUE = 5000


def timestamp() -> str:
    """Now, as the tags write it (ISO 8601, UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def already_audited(ref: VersionRef, digest: str, rules: str, fail_on: str) -> bool:
    """True when the version's tags record an outcome of the same data, rules and failing
    severity that a new audit would repeat: a pass or fail verdict with no failed attempt since
    (no ``lossaudit.error`` tag), or an error verdict from the model or data themselves (a
    corrupt artifact). Errors that may pass on a retry (a crash, MLflow down) are retried, and so
    is a version whose last attempt failed after its verdict."""
    tags = ref.tags
    if tags.get(TAG_DATA_HASH) != digest or tags.get(TAG_RULES_VERSION) != rules:
        return False
    if tags.get(TAG_FAIL_ON, "error") != fail_on:
        return False
    verdict = tags.get(TAG_VERDICT)
    if verdict in JUDGED:
        return TAG_ERROR not in tags
    return verdict == "error" and tags.get(TAG_ERROR_KIND) == ERROR_BAD_INPUT


def stored_codes(tags: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(c for c in tags.get(TAG_CODES, "").split(",") if c)


def settle(ref: VersionRef, result: VersionResult) -> VersionResult:
    """The outcome of a version this job could not audit, given what its tags record.

    A version with an earlier pass or fail verdict keeps it (``verdict_source`` ``stored``, with
    the stored codes, audit run, time and data hash): this job's error is reported beside it,
    never instead of it. A version without one (never audited, or only errors before) gets a
    fresh ``error`` verdict. Audited and skipped versions are returned as they are.
    """
    if result.status != NOT_AUDITED:
        return result
    now = result.error_at or timestamp()
    tags = ref.tags
    earlier = tags.get(TAG_VERDICT)
    if earlier in JUDGED:
        return replace(
            result,
            verdict=str(earlier),
            verdict_source=STORED,
            codes=stored_codes(tags),
            data_hash=tags.get(TAG_DATA_HASH) or None,
            audit_run=tags.get(TAG_AUDIT_RUN) or None,
            audit_run_url=None,
            audited_at=tags.get(TAG_AUDITED_AT) or None,
            error_at=now,
            findings=(),
        )
    return replace(
        result, verdict="error", verdict_source=FRESH, codes=(), audited_at=now, error_at=now, findings=()
    )


def write_version_tags(
    client: MlflowClient, ref: VersionRef, result: VersionResult, rules: str, fail_on: str
) -> None:
    """Write a settled outcome (:func:`settle`) as tags on the version.

    A fresh pass or fail writes the verdict tags and removes the error tags; a version that could
    not be audited but keeps an earlier verdict gets only ``lossaudit.error``,
    ``lossaudit.error_kind`` and ``lossaudit.error_at``; one without an earlier verdict gets the
    verdict tags with ``error`` as well. A skipped version is not written. The data hash and rules
    version go last: a job cut short in the middle leaves a version that is audited again.
    """
    if result.status == SKIPPED:
        return
    errors = {
        TAG_ERROR: (result.error or "unknown error")[:_MAX_TAG_VALUE],
        TAG_ERROR_KIND: result.error_kind or "",
        TAG_ERROR_AT: result.error_at or timestamp(),
    }
    verdict_tags = {
        TAG_VERDICT: result.verdict,
        TAG_CODES: ",".join(result.codes),
        TAG_AUDIT_RUN: result.audit_run or "",
        TAG_AUDITED_AT: result.audited_at or timestamp(),
        TAG_FAIL_ON: fail_on,
    }
    last = {TAG_DATA_HASH: result.data_hash or "", TAG_RULES_VERSION: rules}
    if result.status == NOT_AUDITED and result.verdict_source == STORED:
        tags = errors
    elif result.status == NOT_AUDITED:
        tags = {**verdict_tags, **errors, **last}
    else:
        tags = {**verdict_tags, **last}
    for key, value in tags.items():
        client.set_model_version_tag(ref.name, ref.version, key, value)
    if result.status == AUDITED:
        for key in ERROR_TAGS:
            if key in ref.tags:
                client.delete_model_version_tag(ref.name, ref.version, key)
