"""Scheduled audits over the MLflow Model Registry: find versions, audit each, tag the results.

One job (:func:`run_registry_audit`):

1. connect to the tracking server (a server that does not answer ends the job with exit 3);
2. find the model versions: ``search_model_versions`` with the name pattern and the user's
   filter, paged; with ``alias`` only the version each model's alias points to
   (``get_model_version_by_alias``: search results do not carry aliases);
3. for each version, find its eval data -- an explicit mapping (registered model name or glob ->
   data path), else the version tag ``lossaudit.data`` (a path or an artifact URI such as
   ``runs:/<run id>/eval/data.npz``), else the dataset input logged on the version's source run
   (``mlflow.log_input``: the dataset's ``source`` JSON holds a ``uri`` or ``path``; eval-like
   contexts first) -- and hash it with the audit pipeline's own ``data_sha256``;
4. skip a version whose tags say it was already audited with the same data hash, rules version
   and failing severity, with no failed attempt since (unless ``force``); audit the others in
   worker processes (:mod:`lossaudit.registry.workers`), each as an MLflow run nested under one
   summary run;
5. write the outcome back as version tags, as each version finishes: a fresh verdict writes
   ``lossaudit.verdict``, ``lossaudit.codes``, ``lossaudit.audit_run``, ``lossaudit.audited_at``,
   ``lossaudit.data_hash`` and ``lossaudit.rules_version`` (and removes the error tags); a version
   that cannot be audited now keeps its earlier pass or fail verdict tags untouched and gets
   ``lossaudit.error``, ``lossaudit.error_kind`` and ``lossaudit.error_at``; a version with no
   pass or fail verdict is tagged ``lossaudit.verdict=error`` with the reason;
6. with ``promote_alias``, point that alias of each model at its newest passing version; an alias
   on a version whose latest verdict is fail or error is moved off it, or removed;
7. close the summary run with metrics ``n_versions``, ``n_passed``, ``n_failed``, ``n_error``,
   ``n_audited``, ``n_skipped``, ``n_not_audited``, ``n_fresh``, ``n_stored`` and the artifacts
   ``summary.json`` and ``summary.md``.

One version's failure never stops the others. The job's verdict is the worst current verdict of
every selected version (pass < fail < error): a fresh verdict for a version audited now, the
stored ``lossaudit.verdict`` for a skipped one (a stored ``error`` counts), and ``error`` for a
version this job could not audit (its stored verdict is kept and shown, but the job could not
confirm it). Exit code: 2 for error, 1 for fail, 0 for pass; 3 when MLflow could not be reached.

MLflow is imported inside the functions that talk to it; importing this module is cheap.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import (
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    EXIT_PASS,
    EXIT_TRACKING_UNAVAILABLE,
    BadInputError,
    LossauditError,
    TrackingUnavailableError,
)
from lossaudit.registry.workers import (
    ERROR_BAD_INPUT,
    ERROR_NO_DATA,
    ERROR_UNAVAILABLE,
    Result,
    Task,
    audit_version,
    error_result,
    run_tasks,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from lossaudit.pipeline.config import PipelineConfig
    from lossaudit.tracking.store import TrackingTarget

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

DEFAULT_OUT_DIR = "lossaudit-reports/registry"
EVAL_CONTEXTS = ("eval", "evaluation", "test", "testing", "validation", "val")
"""``mlflow.log_input`` contexts preferred when a source run logged several datasets."""
_CONTEXT_TAG = "mlflow.data.context"
_SEVERITIES = ("error", "warning", "info")
VERDICTS = ("pass", "fail", "error")
"""From best to worst: the job's verdict is the worst of its versions'."""
JUDGED = ("pass", "fail")
"""The verdicts an audit gives; ``error`` means the version has never been judged."""
FRESH = "fresh"
"""The verdict was given by this job."""
STORED = "stored"
"""The verdict was given by an earlier job and read from the version's tags."""
AUDITED = "audited"
SKIPPED = "skipped"
NOT_AUDITED = "not_audited"
"""What the job did with a version: audited it, skipped it (same data and rules), or could not
audit it (no data, a corrupt artifact, a crash, MLflow down)."""
_MAX_TAG_VALUE = 5000


# --- options ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryOptions:
    """What one registry audit job does; built by ``lossaudit registry`` and by pipeline files
    of ``kind: registry`` (:meth:`from_pipeline`)."""

    name: str | None = None
    """Registered model name or glob (``digits*``); None means every registered model."""
    alias: str | None = None
    """Audit only the version this alias points to, in each model."""
    filter: str | None = None
    """An extra ``search_model_versions`` filter, e.g. ``tags.team = 'vision'``."""
    workers: int = 1
    """Worker processes; 1 audits in this process."""
    force: bool = False
    """Audit versions again even when their tags say they were audited with the same data and rules."""
    promote_alias: str | None = None
    """Point this alias of each model at its highest passing version."""
    data: Mapping[str, str] = field(default_factory=dict)
    """Registered model name (or glob) -> eval data path or artifact URI."""
    label_columns: tuple[str, ...] = ()
    """Label column(s) of CSV/Parquet eval data."""
    fail_on: str = "error"
    """Lowest finding severity that fails a version."""
    rules: Mapping[str, Any] = field(default_factory=dict)
    """The rule configuration (``RuleConfig.to_dict()``) every version is audited with; empty:
    defaults at ``fail_on``. It is part of the rules version, so a new configuration re-audits."""
    tracking_uri: str | None = None
    """Tracking and registry URI; default ``MLFLOW_TRACKING_URI``, else ``./mlflow.db``."""
    experiment: str = "lossaudit"
    """Experiment of the summary run and the per-version audit runs."""
    out_dir: str | None = DEFAULT_OUT_DIR
    """Folder for one report folder per version (``<model>-v<version>``); None writes none."""
    batch_size: int = 256
    """Samples per predict/evaluate batch."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise BadInputError(f"--workers must be at least 1, got {self.workers}")
        if self.fail_on not in _SEVERITIES:
            raise BadInputError(f"--fail-on must be one of {', '.join(_SEVERITIES)}, got {self.fail_on!r}")
        if self.batch_size < 1:
            raise BadInputError(f"--batch-size must be at least 1, got {self.batch_size}")
        for what, value in (("--alias", self.alias), ("--promote-alias", self.promote_alias)):
            if value is not None and not value.strip():
                raise BadInputError(f"{what} is empty")
        if self.promote_alias is not None and self.promote_alias.strip().lower() == "latest":
            raise BadInputError("--promote-alias: 'latest' is reserved by MLflow")
        object.__setattr__(self, "data", dict(self.data))
        object.__setattr__(self, "label_columns", tuple(self.label_columns))
        if self.rules:
            rules = dict(self.rules)
            if rules.get("fail_on", self.fail_on) != self.fail_on:
                raise BadInputError(
                    f"--fail-on {self.fail_on} disagrees with the rule configuration's {rules['fail_on']}"
                )
            object.__setattr__(self, "rules", rules)

    @classmethod
    def from_pipeline(cls, config: PipelineConfig) -> RegistryOptions:
        """Options from a ``kind: registry`` pipeline file (data paths made absolute against the
        pipeline root, reports under ``<out>/registry``, MLflow from its ``log`` section)."""
        registry = config.registry
        if config.kind != "registry" or registry is None:
            raise BadInputError(f"pipeline {config.path}: not a 'kind: registry' pipeline")
        if not config.log.enabled:
            raise BadInputError(
                f"pipeline {config.path}: a registry audit logs to MLflow; remove 'log: {{enabled: false}}'"
            )
        return cls(
            name=registry.name,
            alias=registry.alias,
            filter=registry.filter,
            workers=registry.workers,
            force=registry.force,
            promote_alias=registry.promote_alias,
            data={pattern: config.resolve(path) for pattern, path in registry.data.items()},
            label_columns=tuple(registry.label_columns),
            fail_on=config.fail_on,
            rules=config.rules.to_dict(),
            tracking_uri=config.log.tracking_uri,
            experiment=config.log.experiment,
            out_dir=str(Path(config.resolve(config.out)) / "registry"),
        )


def parse_data_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["digits*=data/digits.npz", ...]`` -> ``{"digits*": "data/digits.npz"}``."""
    mapping: dict[str, str] = {}
    for item in items:
        pattern, sep, path = item.partition("=")
        if not sep or not pattern.strip() or not path.strip():
            raise BadInputError(f"--data takes MODEL=PATH (a name or a glob), got {item!r}")
        mapping[pattern.strip()] = path.strip()
    return mapping


# --- versions ---------------------------------------------------------------------------------


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


def _alias_targets(client: MlflowClient, found: Sequence[Any], alias: str) -> list[Any]:
    by_model: dict[str, list[Any]] = {}
    for mv in found:
        by_model.setdefault(str(mv.name), []).append(mv)
    kept: list[Any] = []
    for name, versions in by_model.items():
        target = alias_version(client, name, alias)
        kept.extend(mv for mv in versions if str(mv.version) == target)
    return kept


# --- eval data --------------------------------------------------------------------------------


class NoEvalDataError(BadInputError):
    """No eval data could be found for a version."""


@dataclass(frozen=True)
class EvalData:
    """A version's eval data: the local file, where it was named, and what named it."""

    path: str
    origin: str
    """``mapping``, ``tag`` or ``source_run``."""
    uri: str
    """What the mapping, tag or dataset said (a path or a URI)."""


class DataResolver:
    """Finds each version's eval data, downloading artifact URIs once per job into a folder
    removed by :meth:`close`, and hashes each file once."""

    def __init__(self, client: MlflowClient, target: TrackingTarget, options: RegistryOptions) -> None:
        self.client = client
        self.target = target
        self.options = options
        self._folder: Path | None = None
        self._downloads: dict[str, str] = {}
        self._hashes: dict[tuple[str, int, int, tuple[str, ...]], str] = {}

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def resolve(self, ref: VersionRef) -> EvalData:
        """The eval data of ``ref``: the mapping, else the ``lossaudit.data`` tag, else the
        dataset logged on the source run.

        Raises
        ------
        NoEvalDataError
            None of the three names usable data.
        BadInputError
            A mapping or tag names data that cannot be fetched.
        """
        pattern = self._mapped_pattern(ref.name)
        if pattern is not None:
            value = self.options.data[pattern]
            return EvalData(self.local(value), "mapping", value)
        tagged = ref.tags.get(TAG_DATA, "").strip()
        if tagged:
            return EvalData(self.local(tagged), "tag", tagged)
        found, tried = self._from_source_run(ref)
        if found is not None:
            return found
        mapping = (
            f"no --data mapping matches {ref.name!r}" if self.options.data else "no --data mapping was given"
        )
        if ref.source_run_id is None:
            run = "the version has no source run"
        elif tried:
            run = f"the datasets of source run {ref.source_run_id} are not usable ({'; '.join(tried[:3])})"
        else:
            run = f"source run {ref.source_run_id} logged no dataset input"
        raise NoEvalDataError(f"no eval data: {mapping}, no {TAG_DATA} tag on {ref.label}, and {run}")

    def _mapped_pattern(self, name: str) -> str | None:
        if name in self.options.data:
            return name
        for pattern in self.options.data:
            if fnmatch.fnmatchcase(name, pattern):
                return pattern
        return None

    def _from_source_run(self, ref: VersionRef) -> tuple[EvalData | None, list[str]]:
        if ref.source_run_id is None:
            return None, []
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(ref.source_run_id)
        except MlflowException as exc:
            return None, [f"run {ref.source_run_id}: {_line(exc)}"]
        inputs = getattr(getattr(run, "inputs", None), "dataset_inputs", None) or []
        ranked = sorted(inputs, key=lambda item: 0 if _input_context(item) in EVAL_CONTEXTS else 1)
        tried: list[str] = []
        for item in ranked:
            dataset = item.dataset
            location = dataset_location(str(getattr(dataset, "source", "") or ""))
            name = str(getattr(dataset, "name", "") or "dataset")
            if location is None:
                tried.append(f"{name}: source {getattr(dataset, 'source_type', '?')} has no uri or path")
                continue
            try:
                path = self.local(location)
            except BadInputError as exc:
                tried.append(f"{name}: {exc}")
                continue
            if not Path(path).is_file():
                tried.append(f"{name}: {location} is not a file here")
                continue
            return EvalData(path, "source_run", location), tried
        return None, tried

    def local(self, location: str) -> str:
        """A local file for a path or a ``file:``, ``runs:/``, ``mlflow-artifacts:/`` (or other
        artifact store) URI; artifact URIs are downloaded once per job."""
        text = location.strip()
        parsed = urllib.parse.urlparse(text)
        if parsed.scheme == "file":
            return urllib.request.url2pathname(parsed.path)
        if len(parsed.scheme) <= 1 or ":/" not in text:
            # A plain path (a one-letter "scheme" is a Windows drive letter).
            return str(Path(text).expanduser().resolve())
        if text in self._downloads:
            return self._downloads[text]
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="lossaudit-registry-data-"))
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        folder = self._folder / hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=text,
                dst_path=str(folder),
                tracking_uri=self.target.client_uri,
                registry_uri=self.target.client_uri,
            )
        except (MlflowException, OSError, ValueError) as exc:
            raise BadInputError(f"cannot download eval data {text}: {_line(exc)}") from None
        self._downloads[text] = local
        return local

    def data_hash(self, data: EvalData) -> str:
        """The audit pipeline's ``data_sha256`` of the eval data's arrays (so the version tag
        equals the audit run's ``data_hash`` param), computed once per file."""
        from lossaudit.pipeline.stages import data_sha256
        from lossaudit.sources.files import load_dataset

        path = Path(data.path)
        try:
            stat = path.stat()
        except OSError:
            raise BadInputError(f"data file not found: {path} (from {data.origin} {data.uri})") from None
        key = (str(path), stat.st_size, stat.st_mtime_ns, self.options.label_columns)
        if key not in self._hashes:
            x, y = load_dataset(path, self.options.label_columns)
            self._hashes[key] = data_sha256(x, y)
        return self._hashes[key]


def _input_context(item: Any) -> str:
    for tag in getattr(item, "tags", None) or ():
        if getattr(tag, "key", None) == _CONTEXT_TAG:
            return str(getattr(tag, "value", "")).lower()
    return ""


def dataset_location(source_json: str) -> str | None:
    """The ``uri`` (or ``path``/``url``) in a logged dataset's source JSON, e.g.
    ``{"uri": "/data/eval.npz"}`` from ``mlflow.data.from_numpy(..., source=...)``."""
    try:
        source = json.loads(source_json)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(source, dict):
        return None
    for key in ("uri", "path", "url"):
        value = source.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionResult:
    """One version's outcome in the job."""

    model: str
    version: str
    verdict: str
    """The version's current verdict, ``pass``, ``fail`` or ``error``: what its
    ``lossaudit.verdict`` tag says after the job (see ``verdict_source``)."""
    status: str = AUDITED
    """What this job did: ``audited``, ``skipped`` (already audited with the same data and
    rules) or ``not_audited`` (it could not be audited now: ``error`` says why)."""
    verdict_source: str = FRESH
    """``fresh`` (given by this job) or ``stored`` (given by an earlier job: a skipped version, or
    one this job could not audit, which keeps its earlier pass or fail verdict)."""
    codes: tuple[str, ...] = ()
    data: str | None = None
    data_origin: str | None = None
    data_hash: str | None = None
    """The data hash of the verdict (for a stored verdict, the stored one)."""
    audit_run: str | None = None
    audit_run_url: str | None = None
    audited_at: str | None = None
    """When the verdict was given."""
    seconds: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    error_at: str | None = None
    report_dir: str | None = None
    findings: tuple[Mapping[str, Any], ...] = ()
    peak_rss_mb: float | None = None

    @property
    def label(self) -> str:
        return f"{self.model} v{self.version}"

    @property
    def skipped(self) -> bool:
        return self.status == SKIPPED

    @property
    def gate(self) -> str:
        """The verdict this version gives the job: ``error`` when this job could not audit it
        (whatever verdict it keeps), else its current verdict."""
        if self.status == NOT_AUDITED or self.verdict not in VERDICTS:
            return "error"
        return self.verdict

    def describe(self) -> str:
        """``fail (stored, skipped)``, ``pass (fresh)``, ``pass (stored; not audited now: bad_input)``."""
        if self.status == NOT_AUDITED:
            return f"{self.verdict} ({self.verdict_source}; not audited now: {self.error_kind or 'error'})"
        if self.status == SKIPPED:
            return f"{self.verdict} ({self.verdict_source}, skipped)"
        return f"{self.verdict} ({self.verdict_source})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "verdict": self.verdict,
            "verdict_source": self.verdict_source,
            "status": self.status,
            "gate": self.gate,
            "skipped": self.skipped,
            "codes": list(self.codes),
            "data": self.data,
            "data_origin": self.data_origin,
            "data_hash": self.data_hash,
            "audit_run": self.audit_run,
            "audit_run_url": self.audit_run_url,
            "audited_at": self.audited_at,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "error_kind": self.error_kind,
            "error_at": self.error_at,
            "report_dir": self.report_dir,
            "peak_rss_mb": self.peak_rss_mb,
        }


MOVED = "moved"
REMOVED = "removed"
KEPT = "kept"


@dataclass(frozen=True)
class AliasMove:
    """What ``promote_alias`` did for one model."""

    model: str
    alias: str
    previous: str | None
    """The version the alias pointed to before the job (None: nowhere)."""
    target: str | None
    """The version the alias points to after the job (None: nowhere)."""
    action: str
    """``moved`` (set on ``target``), ``removed`` (deleted from ``previous``) or ``kept``."""
    reason: str

    @property
    def moved(self) -> bool:
        return self.action == MOVED

    @property
    def removed(self) -> bool:
        return self.action == REMOVED

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "previous": self.previous,
            "target": self.target,
            "action": self.action,
            "moved": self.moved,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RegistrySummary:
    """The job's outcome: every version's result, the alias moves and the summary run."""

    versions: tuple[VersionResult, ...]
    alias_moves: tuple[AliasMove, ...] = ()
    summary_run: str | None = None
    summary_run_url: str | None = None
    summary_error: str | None = None
    """Set when the summary run could not be finished (MLflow went away): exit 3."""
    tracking_uri: str = ""
    experiment: str = ""
    rules_version: str = ""
    workers: int = 1
    seconds: float = 0.0

    def _count(self, **match: str) -> int:
        return sum(1 for v in self.versions if all(getattr(v, k) == x for k, x in match.items()))

    @property
    def counts(self) -> dict[str, int]:
        """``n_passed``, ``n_failed``, ``n_error``: the versions by the verdict each gives the job
        (:attr:`VersionResult.gate`); ``n_audited``, ``n_skipped``, ``n_not_audited``: what the
        job did; ``n_fresh``, ``n_stored``: where the current verdicts come from."""
        return {
            "n_versions": len(self.versions),
            "n_passed": self._count(gate="pass"),
            "n_failed": self._count(gate="fail"),
            "n_error": self._count(gate="error"),
            "n_audited": self._count(status=AUDITED),
            "n_skipped": self._count(status=SKIPPED),
            "n_not_audited": self._count(status=NOT_AUDITED),
            "n_fresh": self._count(verdict_source=FRESH),
            "n_stored": self._count(verdict_source=STORED),
        }

    @property
    def verdict(self) -> str:
        """The worst verdict the versions give the job (pass < fail < error), fresh or stored."""
        gates = {v.gate for v in self.versions}
        return max(gates, key=VERDICTS.index) if gates else "pass"

    @property
    def exit_code(self) -> int:
        if self.summary_error is not None:
            return EXIT_TRACKING_UNAVAILABLE
        return {"error": EXIT_BAD_INPUT, "fail": EXIT_FINDINGS}.get(self.verdict, EXIT_PASS)

    def to_dict(self) -> dict[str, Any]:
        findings = [
            {"model": v.model, "version": v.version, **dict(f)}
            for v in self.versions
            if v.verdict_source == FRESH
            for f in v.findings
        ]
        return {
            "verdict": self.verdict,
            "findings": findings,
            "versions": [v.to_dict() for v in self.versions],
            "summary": self.counts,
            "alias_moves": [m.to_dict() for m in self.alias_moves],
            "summary_run": self.summary_run,
            "summary_run_url": self.summary_run_url,
            "summary_error": self.summary_error,
            "tracking_uri": self.tracking_uri,
            "experiment": self.experiment,
            "rules_version": self.rules_version,
            "workers": self.workers,
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)


# --- rendering --------------------------------------------------------------------------------

_COLUMNS = ("model", "version", "verdict", "source", "job", "codes", "data", "seconds")


def _rows(summary: RegistrySummary) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for v in summary.versions:
        data = "-" if v.data is None else f"{v.data_origin}:{Path(v.data).name}"
        rows.append(
            (
                v.model,
                v.version,
                v.verdict,
                v.verdict_source,
                v.status.replace("_", " "),
                ",".join(v.codes) or "-",
                data,
                f"{v.seconds:.1f}" if v.status == AUDITED else "-",
            )
        )
    return rows


def _closing_lines(summary: RegistrySummary) -> list[str]:
    c = summary.counts
    lines = [
        f"{c['n_versions']} version(s): {c['n_audited']} audited now, {c['n_skipped']} skipped (already "
        f"audited with the same data and rules {summary.rules_version}), {c['n_not_audited']} could not "
        f"be audited now; {c['n_fresh']} fresh and {c['n_stored']} stored verdict(s); counted as "
        f"{c['n_passed']} pass, {c['n_failed']} fail, {c['n_error']} error; verdict {summary.verdict} "
        "(the worst)"
    ]
    for v in summary.versions:
        if v.status == NOT_AUDITED and v.verdict_source == STORED:
            lines.append(
                f"{v.label}: could not be audited now ({v.error_kind}): {v.error}; keeps its stored "
                f"{v.verdict} verdict of {v.audited_at or '?'}, counted as error"
            )
        elif v.status == NOT_AUDITED:
            lines.append(f"{v.label}: error ({v.error_kind}), never audited: {v.error}")
        elif v.verdict == "error":
            lines.append(f"{v.label}: stored error ({v.error_kind}) of {v.audited_at or '?'}: {v.error}")
    for move in summary.alias_moves:
        lines.append(f"alias {move.alias!r} of {move.model}: {move.action}: {move.reason}")
    if summary.summary_run is not None:
        where = summary.summary_run_url or summary.tracking_uri
        lines.append(f"summary run {summary.summary_run} ({where})")
    return lines


def render_table(summary: RegistrySummary) -> str:
    """The summary as an aligned plain-text table and closing lines."""
    rows = [_COLUMNS, *_rows(summary)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join([*lines, "", *_closing_lines(summary)])


def render_markdown(summary: RegistrySummary) -> str:
    """The summary as Markdown (the summary run's ``summary.md``)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        f"# lossaudit registry audit: {summary.verdict}",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in _rows(summary)]
    lines += ["", *(f"- {cell(line)}" for line in _closing_lines(summary)), ""]
    return "\n".join(lines)


# --- the job ----------------------------------------------------------------------------------


def _line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]


def _version_folder(name: str, version: str) -> str:
    """``<model>-v<version>``: a safe, bounded folder name; a registered name that had to be changed
    (spaces, case, length) gets a short hash of itself, so "my model" and "my-model", or "Digits"
    and "digits" on a case-insensitive disk, never share a folder."""
    import hashlib

    from lossaudit.safe_names import folder_name

    slug = folder_name(name, what="registered model name", fallback="model")
    if slug != name or slug != slug.lower():
        slug = f"{slug[:80]}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return f"{slug}-v{folder_name(str(version), what='version', fallback='0')}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _already_audited(ref: VersionRef, digest: str, rules: str, fail_on: str) -> bool:
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


def _stored_codes(tags: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(c for c in tags.get(TAG_CODES, "").split(",") if c)


def _skipped_result(ref: VersionRef, data: EvalData, digest: str) -> VersionResult:
    tags = ref.tags
    return VersionResult(
        model=ref.name,
        version=ref.version,
        verdict=tags.get(TAG_VERDICT, ""),
        status=SKIPPED,
        verdict_source=STORED,
        codes=_stored_codes(tags),
        data=data.path,
        data_origin=data.origin,
        data_hash=digest,
        audit_run=tags.get(TAG_AUDIT_RUN) or None,
        audited_at=tags.get(TAG_AUDITED_AT) or None,
        error=tags.get(TAG_ERROR) or None,
        error_kind=tags.get(TAG_ERROR_KIND) or None,
        error_at=tags.get(TAG_ERROR_AT) or None,
    )


def _result_from_worker(result: Mapping[str, Any], data: EvalData | None, audited_at: str) -> VersionResult:
    verdict = str(result["verdict"])
    judged = verdict in JUDGED
    return VersionResult(
        model=str(result["model"]),
        version=str(result["version"]),
        verdict=verdict,
        status=AUDITED if judged else NOT_AUDITED,
        verdict_source=FRESH,
        codes=tuple(result.get("codes") or ()),
        data=None if data is None else data.path,
        data_origin=None if data is None else data.origin,
        data_hash=result.get("data_hash"),
        audit_run=result.get("audit_run"),
        audit_run_url=result.get("audit_run_url"),
        audited_at=audited_at,
        seconds=float(result.get("seconds") or 0.0),
        error=result.get("error"),
        error_kind=result.get("error_kind"),
        error_at=None if judged else audited_at,
        report_dir=result.get("report_dir"),
        findings=tuple(result.get("findings") or ()),
        peak_rss_mb=result.get("peak_rss_mb"),
    )


def settle(ref: VersionRef, result: VersionResult) -> VersionResult:
    """The outcome of a version this job could not audit, given what its tags record.

    A version with an earlier pass or fail verdict keeps it (``verdict_source`` ``stored``, with
    the stored codes, audit run, time and data hash): this job's error is reported beside it,
    never instead of it. A version without one (never audited, or only errors before) gets a
    fresh ``error`` verdict. Audited and skipped versions are returned as they are.
    """
    if result.status != NOT_AUDITED:
        return result
    now = result.error_at or _now()
    tags = ref.tags
    earlier = tags.get(TAG_VERDICT)
    if earlier in JUDGED:
        return replace(
            result,
            verdict=str(earlier),
            verdict_source=STORED,
            codes=_stored_codes(tags),
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
        TAG_ERROR_AT: result.error_at or _now(),
    }
    verdict_tags = {
        TAG_VERDICT: result.verdict,
        TAG_CODES: ",".join(result.codes),
        TAG_AUDIT_RUN: result.audit_run or "",
        TAG_AUDITED_AT: result.audited_at or _now(),
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


def plan_alias_moves(
    results: Sequence[VersionResult],
    alias: str,
    current: Mapping[str, str | None],
    stored: Mapping[str, str | None] | None = None,
) -> list[AliasMove]:
    """Where ``alias`` should point in each model after the job.

    Parameters
    ----------
    results : the job's settled version results (their ``verdict`` is each one's latest).
    alias : the alias to promote.
    current : model -> the version the alias points to now (None: nowhere).
    stored : model -> the ``lossaudit.verdict`` tag of that version, for versions outside the
        job (None or missing: never audited).

    The alias moves to the model's newest passing version in the job (a fresh pass, or the stored
    pass of a skipped version; never one this job could not audit). It never stays on a version
    whose latest verdict is fail or error: with no passing version to move to, it is removed. It
    stays on a version whose latest verdict is pass (even one this job could not audit again), or
    on a never-audited version outside the job, when no newer version passed.
    """
    stored = stored or {}
    by_model: dict[str, list[VersionResult]] = {}
    for result in results:
        by_model.setdefault(result.model, []).append(result)
    moves: list[AliasMove] = []
    for model, versions in by_model.items():
        previous = current.get(model)
        action, target, reason = _plan_alias(versions, previous, stored.get(model) or None)
        moves.append(AliasMove(model, alias, previous, target, action, reason))
    return moves


def _plan_alias(
    versions: Sequence[VersionResult], previous: str | None, stored: str | None
) -> tuple[str, str | None, str]:
    """(action, target, reason) for one model's alias; see :func:`plan_alias_moves`."""
    by_number = {int(v.version): v for v in versions}
    passing = [n for n, v in by_number.items() if v.verdict == "pass" and v.status != NOT_AUDITED]
    best = max(passing, default=None)
    newest = (
        "" if best is None else f"v{best}, the newest passing version ({by_number[best].verdict_source} pass)"
    )
    if previous is None:
        if best is None:
            return KEPT, None, "not set: no version passed"
        return MOVED, str(best), f"set on {newest}; it pointed nowhere"
    p = int(previous)
    latest: str | None
    if p in by_number:
        latest, how = by_number[p].verdict, by_number[p].verdict_source
        if by_number[p].status == NOT_AUDITED:
            how += f", not audited now: {by_number[p].error_kind or 'error'}"
    else:
        latest = stored
        how = "stored, outside this job" if latest else "outside this job, never audited"
    if latest is not None and latest != "pass":
        if best is None:
            return (
                REMOVED,
                None,
                f"removed from v{p}: its latest verdict is {latest} ({how}) and no version passed",
            )
        return MOVED, str(best), f"moved to {newest}: v{p}'s latest verdict is {latest} ({how})"
    shown = f"{latest}, {how}" if latest else how
    if best is None:
        return KEPT, previous, f"kept on v{p} ({shown}): no version passed in this job"
    if best == p:
        return KEPT, previous, f"kept on v{p}, the newest passing version ({shown})"
    if p > best:
        return (
            KEPT,
            previous,
            f"kept on v{p} ({shown}): newer than v{best}, the newest that passed in this job",
        )
    return MOVED, str(best), f"moved to {newest}; was on older v{p} ({shown})"


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


def promote_alias(client: MlflowClient, results: Sequence[VersionResult], alias: str) -> list[AliasMove]:
    """Apply :func:`plan_alias_moves`: ``set_registered_model_alias`` for a move,
    ``delete_registered_model_alias`` for a removal."""
    models = sorted({r.model for r in results})
    current: dict[str, str | None] = {}
    stored: dict[str, str | None] = {}
    for model in models:
        found = alias_target(client, model, alias)
        current[model] = None if found is None else found[0]
        stored[model] = None if found is None else found[1].get(TAG_VERDICT)
    moves = plan_alias_moves(results, alias, current, stored)
    for move in moves:
        if move.moved and move.target is not None:
            client.set_registered_model_alias(move.model, alias, move.target)
        elif move.removed:
            client.delete_registered_model_alias(move.model, alias)
    return moves


class _SummaryRun:
    """The job's parent run: opened before the audits (they nest under it), closed with the
    summary's metrics and artifacts."""

    def __init__(
        self, client: MlflowClient, target: TrackingTarget, options: RegistryOptions, rules: str
    ) -> None:
        from lossaudit import __version__
        from lossaudit.tracking.store import ensure_experiment, run_url

        self.client = client
        self.experiment_id = ensure_experiment(client, options.experiment, target.artifact_root)
        run = client.create_run(
            self.experiment_id,
            run_name=f"registry audit {_now()}",
            tags={
                "lossaudit.kind": "registry",
                "lossaudit.version": __version__,
                "lossaudit.rules_version": rules,
            },
        )
        self.run_id: str = run.info.run_id
        self.url = run_url(target, self.experiment_id, self.run_id)
        from mlflow.entities import Param

        params = {
            "name": options.name or "*",
            "alias": options.alias or "",
            "filter": options.filter or "",
            "workers": str(options.workers),
            "force": str(options.force).lower(),
            "promote_alias": options.promote_alias or "",
            "fail_on": options.fail_on,
        }
        client.log_batch(self.run_id, params=[Param(k, v[:6000]) for k, v in params.items()])

    def close(self, summary: RegistrySummary) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = {**summary.counts, "seconds": summary.seconds}
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
        codes = dict.fromkeys(c for v in summary.versions for c in v.codes)
        self.client.set_tag(self.run_id, "lossaudit.verdict", summary.verdict)
        self.client.set_tag(self.run_id, "lossaudit.codes", ",".join(codes))
        with tempfile.TemporaryDirectory(prefix="lossaudit-registry-summary-") as tmp:
            folder = Path(tmp)
            (folder / "summary.json").write_text(summary.to_json() + "\n", encoding="utf-8")
            (folder / "summary.md").write_text(render_markdown(summary), encoding="utf-8")
            self.client.log_artifacts(self.run_id, str(folder))
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self.client.set_terminated(self.run_id, "FAILED")


def run_registry_audit(
    options: RegistryOptions,
    *,
    task_fn: Callable[[Task], Result] = audit_version,
    on_version: Callable[[VersionResult], None] | None = None,
) -> RegistrySummary:
    """Audit the registry versions ``options`` select and write the results back as tags.

    Parameters
    ----------
    options : what to audit and how (see :class:`RegistryOptions`).
    task_fn : the per-version audit run in the workers; a module-level function taking and
        returning plain dicts (:func:`lossaudit.registry.workers.audit_version`).
    on_version : called with each version's result as soon as it is tagged (progress lines).

    Returns
    -------
    RegistrySummary
        Its ``exit_code`` is the command's, from the worst current verdict of the selected
        versions, fresh or stored: 0 pass, 1 a version's verdict is fail, 2 a version's verdict is
        error or it could not be audited now; 3 the summary run could not be finished.

    Raises
    ------
    TrackingUnavailableError
        The tracking server does not answer at the start.
    BadInputError
        The options select no version, or the filter is not valid.
    """
    from mlflow.exceptions import MlflowException

    from lossaudit.tracking import rules_version
    from lossaudit.tracking.store import connect, resolve_tracking_uri

    start = time.perf_counter()
    target = resolve_tracking_uri(options.tracking_uri)
    client = connect(target)
    rules = rules_version(options.rules)
    try:
        refs = find_versions(client, options)
        summary_run = _SummaryRun(client, target, options, rules)
    except MlflowException as exc:
        raise _mlflow_failure(target, exc) from None
    resolver = DataResolver(client, target, options)
    results: dict[tuple[str, str], VersionResult] = {}
    refs_by_key = {(r.name, r.version): r for r in refs}
    data_by_key: dict[tuple[str, str], EvalData | None] = {}

    def record(ref: VersionRef, result: VersionResult) -> None:
        result = settle(ref, result)
        try:
            write_version_tags(client, ref, result, rules, options.fail_on)
        except (MlflowException, OSError) as exc:
            what = f"audited ({result.verdict})" if result.status == AUDITED else f"error ({result.error})"
            failed = replace(
                result,
                status=NOT_AUDITED,
                error=f"{what} but its tags could not be written: {_line(exc)}",
                error_kind=ERROR_UNAVAILABLE,
                error_at=_now(),
            )
            result = settle(ref, failed)
        results[(ref.name, ref.version)] = result
        if on_version is not None:
            on_version(result)

    try:
        tasks = _plan(options, refs, resolver, rules, summary_run.run_id, target, record, data_by_key)

        def on_result(task: Task, outcome: Result) -> None:
            key = (str(task["model"]), str(task["version"]))
            record(refs_by_key[key], _result_from_worker(outcome, data_by_key.get(key), _now()))

        run_tasks(tasks, workers=options.workers, on_result=on_result, fn=task_fn)
        ordered = tuple(results[(r.name, r.version)] for r in refs)
        moves: list[AliasMove] = []
        summary_error: str | None = None
        if options.promote_alias:
            try:
                moves = promote_alias(client, ordered, options.promote_alias)
            except MlflowException as exc:
                summary_error = f"alias {options.promote_alias!r} not moved: {_line(exc)}"
        summary = RegistrySummary(
            versions=ordered,
            alias_moves=tuple(moves),
            summary_run=summary_run.run_id,
            summary_run_url=summary_run.url,
            summary_error=summary_error,
            tracking_uri=target.uri,
            experiment=options.experiment,
            rules_version=rules,
            workers=options.workers,
            seconds=time.perf_counter() - start,
        )
        try:
            summary_run.close(summary)
        except (MlflowException, OSError) as exc:
            summary_run.fail()
            message = f"the summary run {summary_run.run_id} could not be finished: {_line(exc)}"
            summary = replace(summary, summary_error=message)
        return summary
    except BaseException:
        summary_run.fail()
        raise
    finally:
        resolver.close()


def _plan(
    options: RegistryOptions,
    refs: Sequence[VersionRef],
    resolver: DataResolver,
    rules: str,
    parent_run_id: str,
    target: TrackingTarget,
    record: Callable[..., None],
    data_by_key: dict[tuple[str, str], EvalData | None],
) -> list[Task]:
    """Resolve and hash each version's data; record the versions that are skipped or cannot be
    audited; return tasks for the others."""
    tasks: list[Task] = []
    for ref in refs:
        key = (ref.name, ref.version)
        base: Task = {"model": ref.name, "version": ref.version}
        if ref.status.upper() != "READY":
            reason = f"the version's registration status is {ref.status}, not READY"
            data_by_key[key] = None
            record(ref, _result_from_worker(error_result(base, ERROR_BAD_INPUT, reason), None, _now()))
            continue
        try:
            data = resolver.resolve(ref)
            digest = resolver.data_hash(data)
        except NoEvalDataError as exc:
            data_by_key[key] = None
            record(ref, _result_from_worker(error_result(base, ERROR_NO_DATA, str(exc)), None, _now()))
            continue
        except TrackingUnavailableError as exc:
            data_by_key[key] = None
            record(ref, _result_from_worker(error_result(base, ERROR_UNAVAILABLE, str(exc)), None, _now()))
            continue
        except LossauditError as exc:
            data_by_key[key] = None
            record(ref, _result_from_worker(error_result(base, ERROR_BAD_INPUT, str(exc)), None, _now()))
            continue
        data_by_key[key] = data
        if not options.force and _already_audited(ref, digest, rules, options.fail_on):
            record(ref, _skipped_result(ref, data, digest))
            continue
        tasks.append(
            {
                **base,
                "model_uri": ref.uri,
                "data": data.path,
                "data_hash": digest,
                "label_columns": list(options.label_columns),
                "tracking_uri": target.client_uri,  # what the worker connects with; not printed
                "experiment": options.experiment,
                "parent_run_id": parent_run_id,
                "out_dir": None
                if options.out_dir is None
                else str(Path(options.out_dir) / _version_folder(ref.name, ref.version)),
                "fail_on": options.fail_on,
                "rules": dict(options.rules),
                "batch_size": options.batch_size,
            }
        )
    return tasks


def _mlflow_failure(target: TrackingTarget, exc: BaseException) -> LossauditError:
    """An MLflow error at the start of the job: the server went away (exit 3) or refused (exit 2)."""
    from lossaudit.tracking.store import check_reachable

    if target.is_http:
        try:
            check_reachable(target)
        except TrackingUnavailableError as down:
            return down
    return BadInputError(f"MLflow refused the registry audit: {_line(exc)}")
