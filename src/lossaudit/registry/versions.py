"""Which registered model versions a job covers: the ``search_model_versions`` filter for a name
or glob and the user's own filter, paged, the exact glob applied again, and with an alias only the
version it points to in each model (search results do not carry aliases, so each model's alias is
asked for: :func:`alias_target`). A version's source run is found through its logged model when
MLflow 3 registered it from one.

MLflow is imported inside the functions that talk to it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from lossaudit.registry.options import RegistryOptions


@dataclass(frozen=True)
class VersionRef:
    """A registered model version, as far as the job needs it."""

    name: str
    version: str
    source_run_id: str | None
    status: str
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return int(self.version)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def version_filter(name: str | None, extra: str | None) -> str | None:
    """The ``search_model_versions`` filter for a name or glob and the user's own filter.

    A glob becomes ``name LIKE`` (``*`` -> ``%``, ``?`` and ``[...]`` -> ``_``); the exact glob
    is applied again to the results, because LIKE also treats ``_`` and ``%`` in names as
    wildcards.
    """
    parts: list[str] = []
    if name:
        if any(c in name for c in "*?["):
            like, i = [], 0
            while i < len(name):
                char = name[i]
                if char == "[" and "]" in name[i + 1 :]:
                    like.append("_")
                    i = name.index("]", i + 1) + 1
                    continue
                like.append({"*": "%", "?": "_"}.get(char, char))
                i += 1
            parts.append(f"name LIKE {_quoted(''.join(like))}")
        else:
            parts.append(f"name = {_quoted(name)}")
    if extra and extra.strip():
        parts.append(extra.strip())
    return " AND ".join(parts) or None


def _source_run_id(client: MlflowClient, mv: Any) -> str | None:
    run_id = getattr(mv, "run_id", None) or None
    if run_id is not None:
        return str(run_id)
    model_id = getattr(mv, "model_id", None) or None
    source = str(getattr(mv, "source", "") or "")
    if model_id is None and source.startswith("models:/m-"):
        # MLflow 3 registers a logged model with source models:/<model id>.
        model_id = source[len("models:/") :].split("/")[0]
    if model_id is None:
        return None
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_logged_model(model_id).source_run_id or "") or None
    except MlflowException:
        return None


def find_versions(client: MlflowClient, options: RegistryOptions) -> list[VersionRef]:
    """The versions the job covers, sorted by model name and version number.

    Raises
    ------
    BadInputError
        The filter is not valid, or nothing matches.
    """
    from mlflow.exceptions import MlflowException

    filter_string = version_filter(options.name, options.filter)
    found: list[Any] = []
    token: str | None = None
    try:
        while True:
            page = client.search_model_versions(filter_string=filter_string, page_token=token)
            found.extend(page)
            token = getattr(page, "token", None)
            if not token:
                break
    except MlflowException as exc:
        raise BadInputError(f"cannot search model versions with {filter_string!r}: {_line(exc)}") from None
    if options.name:
        found = [mv for mv in found if fnmatch.fnmatchcase(str(mv.name), options.name)]
    if options.alias:
        found = _alias_targets(client, found, options.alias)
    if not found:
        what = []
        if options.name:
            what.append(f"name {options.name!r}")
        if options.filter:
            what.append(f"filter {options.filter!r}")
        if options.alias:
            what.append(f"alias {options.alias!r}")
        scope = ", ".join(what) or "the registry"
        raise BadInputError(f"no registered model version matches {scope}")
    refs = [
        VersionRef(
            name=str(mv.name),
            version=str(mv.version),
            source_run_id=_source_run_id(client, mv),
            status=str(getattr(mv, "status", "READY") or "READY"),
            tags=dict(getattr(mv, "tags", None) or {}),
        )
        for mv in found
    ]
    return sorted(refs, key=lambda r: (r.name, r.number))


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version ``alias`` points to in model ``name``, or None when it points nowhere."""
    found = alias_target(client, name, alias)
    return None if found is None else found[0]


def alias_target(client: MlflowClient, name: str, alias: str) -> tuple[str, dict[str, str]] | None:
    """The version ``alias`` points to in model ``name`` and its tags, or None."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return str(mv.version), dict(getattr(mv, "tags", None) or {})


def _alias_targets(client: MlflowClient, found: Sequence[Any], alias: str) -> list[Any]:
    by_model: dict[str, list[Any]] = {}
    for mv in found:
        by_model.setdefault(str(mv.name), []).append(mv)
    kept: list[Any] = []
    for name, versions in by_model.items():
        target = alias_version(client, name, alias)
        kept.extend(mv for mv in versions if str(mv.version) == target)
    return kept


def _line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]
