"""Log an audit to MLflow as one run: params, metrics, tags and the report folder as artifacts.

The run is built from the report folder alone (``report.json`` and the files beside it), never
from live Python objects: the audit pipeline's sink and ``lossaudit log REPORT_DIR`` (which
uploads a folder written while MLflow was down) are one code path and log the same run.

Names in the run:

* params -- ``head.units``, ``head.activation``, ``head.activation_chain``, ``head.loss``,
  ``head.from_logits``, ``head.label_smoothing``, ``head.metrics``, ``keras_family``,
  ``labels.encoding``, ``labels.n_classes``, ``labels.n_samples``, ``data_hash``, ``fail_on``,
  ``command``, the effective rule configuration as ``config.<key>`` and the report context's
  scalar values as ``context.<key>``;
* metrics -- ``recomputed.<name>``, ``reported.<source>.<name>``, ``difference.<source>.<name>``
  (reported minus the definition the task needs), ``class.<k>.precision|recall|f1|support`` and
  ``findings.error|warning|info``;
* tags -- ``lossaudit.verdict``, ``lossaudit.codes`` (comma list), ``lossaudit.version``,
  ``lossaudit.rules_version``, ``lossaudit.schema_version``, ``lossaudit.comparison.<source>.<name>``
  (agrees, wrong_definition, ...), the audited model's links (``lossaudit.model_uri``,
  ``lossaudit.source_run_id``, ``lossaudit.model_name``, ``lossaudit.model_version``,
  ``lossaudit.logged_model_id``), ``mlflow.runName`` and a ``mlflow.note.content`` summary.

Tied to MLflow's own objects:

* the eval data (``report.context["dataset"]``, written by the pipeline) is the run's dataset
  input with context ``eval``: its name, digest (``data_sha256``'s first 16 hex digits), source
  (the file, or code for in-memory arrays), ``mlflow.data.from_numpy``'s profile and tensor schema;
* an audited MLflow model (an MLflow 3 logged model, ``context["mlflow_source"]["logged_model_id"]``)
  is the run's model input, and the metrics are logged against it too (``model_id=``, with the
  dataset's name and digest), so the logged model's page lists them;
* a registry version (``model_name`` and ``model_version`` there) gets the tags
  ``lossaudit.verdict`` and ``lossaudit.audit_run`` (this run's id) on its page.

The folder records the run it is logged to in ``upload.json`` (one entry per tracking URI, without
passwords: run id, experiment, state ``started`` as soon as the run exists, ``complete`` once it is
FINISHED, and the SHA-256 of the ``report.json`` it is about), which makes uploads idempotent and
resumable: see :func:`log_report_folder`. ``upload.json`` is not uploaded.

MLflow's limits (``mlflow/utils/validation.py``): keys of at most 250 characters from
``[A-Za-z0-9_-. /]`` that do not normalise to another path, param values of at most 6000
characters, 100 params and 100 tags per batch (``MlflowClient.log_batch`` splits larger lists).

Why one module of about 1100 lines: it is the one code path from a report folder to an MLflow run,
shared by the pipeline's sink, ``lossaudit log`` and the Python API. The names above, the ties to
MLflow's own objects (dataset and model inputs, registry tags), the upload record and the resume
of an interrupted upload change together; one file keeps the shape of a logged run in one place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError, LossauditError, TrackingUnavailableError
from lossaudit.redact import redact_uri
from lossaudit.tracking import CONTEXT_KEY, DEFAULT_EXPERIMENT, rules_version
from lossaudit.tracking.store import (
    TrackingTarget,
    connect,
    ensure_experiment,
    file_lock,
    resolve_tracking_uri,
    run_url,
    sqlite_db_path,
    store_failure_message,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from lossaudit.core.report import AuditReport

REPORT_FILE = "report.json"
UPLOAD_FILE = "upload.json"
"""The upload record of a report folder (see :func:`log_report_folder`); not an artifact."""
UPLOAD_STARTED = "started"
UPLOAD_COMPLETE = "complete"
MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
MAX_NOTE_LENGTH = 5000
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. ]+")
# Keys of the report context that say which data was audited (written by the pipeline).
_DATA_HASH_KEYS = ("data_hash", "data_sha256", "dataset_hash", "data_digest")
# Context keys whose values link the run to the audited model, beside the MLflow source entry.
_MODEL_KEYS = ("model_uri", "model", "model_file")


def metric_key(*parts: object) -> str:
    """A valid MLflow metric/param key from parts joined with dots.

    Characters MLflow refuses become ``_``; slashes too, because MLflow treats keys as paths and
    refuses names that normalise to other names (``a/../b``).
    """
    cleaned = []
    for part in parts:
        text = _BAD_KEY_CHARS.sub("_", str(part).replace("/", "_")).strip(" .")
        text = re.sub(r"\.{2,}", ".", text).replace(" ", "_")
        cleaned.append(text or "_")
    return ".".join(cleaned)[:MAX_KEY_LENGTH]


def load_report_dict(report_dir: str | Path) -> dict[str, Any]:
    """Read ``REPORT_DIR/report.json`` as written by the local report sink.

    Raises
    ------
    BadInputError
        When the folder or its ``report.json`` is missing or is not a lossaudit report.
    """
    folder = Path(report_dir)
    if not folder.is_dir():
        raise BadInputError(f"report folder not found: {folder}")
    path = folder / REPORT_FILE
    if not path.is_file():
        raise BadInputError(f"{folder} has no {REPORT_FILE}; is it a lossaudit report folder?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path} is not valid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or data.get("tool") != "lossaudit" or "verdict" not in data:
        raise BadInputError(f"{path} is not a lossaudit report (no tool/verdict keys)")
    return data


def _param_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        text = ",".join(str(v) for v in value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text[:MAX_PARAM_LENGTH]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def data_hash(report: Mapping[str, Any]) -> str | None:
    """The audited data's hash from the report context, wherever the pipeline put it."""
    context = _mapping(report.get("context"))
    for key in _DATA_HASH_KEYS:
        if isinstance(context.get(key), str):
            return str(context[key])
    data = _mapping(context.get("data"))
    for key in ("sha256", "hash", *_DATA_HASH_KEYS):
        if isinstance(data.get(key), str):
            return str(data[key])
    return None


def run_params(report: Mapping[str, Any]) -> dict[str, str]:
    """The run's params from a report dict (see the module docstring for the names)."""
    params: dict[str, str] = {}
    head = _mapping(report.get("head"))
    if head:
        loss = _mapping(head.get("loss"))
        params["head.units"] = _param_text(head.get("units"))
        params["head.activation"] = _param_text(head.get("activation"))
        params["head.activation_chain"] = _param_text(head.get("activation_chain", []))
        params["head.loss"] = _param_text(loss.get("name", "none"))
        params["head.from_logits"] = _param_text(bool(loss.get("from_logits", False)))
        params["head.label_smoothing"] = _param_text(loss.get("label_smoothing", 0.0))
        params["head.metrics"] = _param_text(head.get("metrics", []))
        params["head.source"] = _param_text(head.get("source", ""))
        params["keras_family"] = _param_text(head.get("keras_family"))
    labels = _mapping(report.get("labels"))
    if labels:
        params["labels.encoding"] = _param_text(labels.get("encoding"))
        params["labels.n_classes"] = _param_text(labels.get("n_classes"))
        params["labels.n_samples"] = _param_text(labels.get("n_samples"))
    digest = data_hash(report)
    if digest is not None:
        params["data_hash"] = _param_text(digest)
    params["fail_on"] = _param_text(report.get("fail_on", "error"))
    params["command"] = _param_text(report.get("command", ""))
    # The effective rule configuration (lossaudit.core.config_file): config.select, config.ignore,
    # config.severity (CODE=severity list), config.fail_on, config.alpha, config.tolerance
    # ("auto": half a unit of the reported number's last digit) and config.source.
    for key, value in _mapping(report.get("config")).items():
        if isinstance(value, Mapping):
            value = [f"{code}={sev}" for code, sev in value.items()]
        params[f"config.{key}"] = _param_text("auto" if value is None and key == "tolerance" else value)
    for key, value in _mapping(report.get("context")).items():
        if key in _DATA_HASH_KEYS:
            continue
        if value is None or isinstance(value, str | int | float | bool):
            params[metric_key("context", key)] = _param_text("" if value is None else value)
    return params


def run_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The run's metrics from a report dict; undefined (null) values are left out."""
    metrics: dict[str, float] = {}
    recomputed = _mapping(report.get("metrics"))
    for name, value in _mapping(recomputed.get("values")).items():
        number = _finite(value)
        if number is not None:
            metrics[metric_key("recomputed", name)] = number
    for row in recomputed.get("per_class") or ():
        row = _mapping(row)
        label = row.get("class")
        for name in ("precision", "recall", "f1", "support"):
            number = _finite(row.get(name))
            if label is not None and number is not None:
                metrics[metric_key("class", label, name)] = number
    for comparison in report.get("comparisons") or ():
        comparison = _mapping(comparison)
        metric = comparison.get("metric")
        source = comparison.get("source") or "user"
        reported = _finite(comparison.get("reported"))
        if metric is None or reported is None:
            continue
        metrics[metric_key("reported", source, metric)] = reported
        difference = _finite(comparison.get("difference"))
        if difference is not None:
            metrics[metric_key("difference", source, metric)] = difference
    for severity_name, count in _mapping(report.get("summary")).items():
        number = _finite(count)
        if number is not None:
            metrics[metric_key("findings", severity_name)] = number
    return metrics


def model_links(report: Mapping[str, Any]) -> dict[str, str]:
    """Tags that link the audit run to the audited model: its URI, source run, registry version."""
    context = _mapping(report.get("context"))
    links: dict[str, str] = {}
    source = _mapping(context.get(CONTEXT_KEY))
    for key in ("model_uri", "source_run_id", "model_name", "model_version", "logged_model_id"):
        value = source.get(key)
        if value not in (None, ""):
            links[f"lossaudit.{key}"] = str(value)
    if "lossaudit.model_uri" not in links:
        for key in _MODEL_KEYS:
            value = context.get(key)
            if isinstance(value, str) and value:
                links["lossaudit.model_uri"] = value
                break
    return links


def run_subject(report: Mapping[str, Any]) -> str:
    """What was audited, for a run name: ``audit <model> v<version>``, the model's URI or its file name."""
    links = model_links(report)
    if "lossaudit.model_name" in links and "lossaudit.model_version" in links:
        subject = f"{links['lossaudit.model_name']} v{links['lossaudit.model_version']}"
    elif "lossaudit.model_uri" in links:
        uri = links["lossaudit.model_uri"]
        subject = uri if ":/" in uri else Path(uri).name
    else:
        return str(report.get("command", "audit"))
    return f"audit {subject}"


_SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
MAX_NAME_CODES = 3


def verdict_phrase(report: Mapping[str, Any]) -> str:
    """``fail LA101,LA501`` (the codes at or above ``fail_on`` that failed it) or ``pass``."""
    verdict = str(report.get("verdict", "") or "")
    if verdict != "fail":
        return verdict
    threshold = _SEVERITY_RANK.get(str(report.get("fail_on") or "error"), 2)
    codes = dict.fromkeys(
        str(f.get("code"))
        for f in (_mapping(f) for f in report.get("findings") or ())
        if _SEVERITY_RANK.get(str(f.get("severity")), -1) >= threshold
    )
    shown = list(codes)[:MAX_NAME_CODES]
    more = f" +{len(codes) - len(shown)}" if len(codes) > len(shown) else ""
    return f"fail {','.join(shown)}{more}".strip()


def default_run_name(report: Mapping[str, Any], subject: str | None = None) -> str:
    """``<subject>: <verdict>``, e.g. ``audit digits v3: fail LA101``: what was audited (``subject``,
    else :func:`run_subject`) and what the audit said, so a list of runs reads as a list of verdicts."""
    phrase = verdict_phrase(report)
    subject = subject or run_subject(report)
    return f"{subject}: {phrase}" if phrase else subject


def run_note(report: Mapping[str, Any]) -> str:
    """A Markdown summary shown as the run's description in the MLflow UI."""
    lines = [f"**lossaudit verdict: {report.get('verdict')}** (fail on {report.get('fail_on')})", ""]
    findings = [_mapping(f) for f in report.get("findings") or ()]
    if not findings:
        lines.append("No findings.")
    for finding in findings:
        lines.append(f"- `{finding.get('code')}` {finding.get('severity')}: {finding.get('message')}")
    lines += ["", "Full report: the run's `report.html` and `report.md` artifacts."]
    text = "\n".join(lines)
    return text if len(text) <= MAX_NOTE_LENGTH else text[: MAX_NOTE_LENGTH - 3] + "..."


def run_tags(
    report: Mapping[str, Any],
    *,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    subject: str | None = None,
) -> dict[str, str]:
    """The run's tags from a report dict (see the module docstring for the names)."""
    tags = {
        "lossaudit.verdict": str(report.get("verdict")),
        "lossaudit.codes": ",".join(str(c) for c in report.get("codes") or ()),
        "lossaudit.version": str(report.get("tool_version", "")),
        "lossaudit.rules_version": rules_version(),
        "lossaudit.schema_version": str(report.get("schema_version", "")),
        "lossaudit.created_at": str(report.get("created_at", "")),
        "mlflow.runName": run_name or default_run_name(report, subject),
        "mlflow.note.content": run_note(report),
    }
    for comparison in report.get("comparisons") or ():
        comparison = _mapping(comparison)
        if comparison.get("metric") is not None and comparison.get("status"):
            key = metric_key("lossaudit.comparison", comparison.get("source") or "user", comparison["metric"])
            tags[key] = str(comparison["status"])
    tags.update(model_links(report))
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    return {k: v[:MAX_TAG_LENGTH] for k, v in tags.items()}


@dataclass(frozen=True)
class LoggedRun:
    """Where an audit went."""

    run_id: str
    experiment_id: str
    experiment: str
    tracking_uri: str
    url: str | None
    """The run's page on an HTTP(S) server; None for a local store."""
    store: str
    """A human line: the server or the local store (and its artifact folder)."""
    action: str = "created"
    """``created`` (a new run), ``resumed`` (the run of an interrupted upload, finished),
    ``none`` (the folder was already uploaded: nothing was sent) or ``logged_into`` (an existing
    run of the caller's: :func:`log_report_into_run`)."""
    notes: tuple[str, ...] = ()
    """What happened to runs of earlier, interrupted uploads of the folder."""

    def where(self) -> str:
        return self.url or f"{self.store}; browse with `mlflow ui --backend-store-uri {self.tracking_uri}`"

    def describe(self) -> str:
        run = f"MLflow run {self.run_id} (experiment {self.experiment!r})"
        if self.action == "none":
            return f"already uploaded: {run} in {self.where()}; nothing to do"
        if self.action == "resumed":
            return f"finished {run}, left unfinished by an interrupted upload, in {self.where()}"
        if self.action == "logged_into":
            return f"logged the audit into {run} in {self.where()}"
        return f"logged {run} to {self.where()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "experiment": self.experiment,
            "tracking_uri": self.tracking_uri,
            "url": self.url,
            "action": self.action,
            "notes": list(self.notes),
        }


# --- the upload record: which run a report folder was (or is being) logged to -------------------


@dataclass(frozen=True)
class UploadEntry:
    """One store's line of ``upload.json``: the run a report folder was logged to there."""

    tracking_uri: str
    """Without passwords or tokens (:func:`lossaudit.redact.redact_uri`)."""
    run_id: str
    experiment_id: str
    experiment: str
    state: str
    """``started`` from the moment the run exists, ``complete`` once it is FINISHED."""
    report_sha256: str
    """The ``report.json`` that was logged: another audit written into the folder is not this one."""
    url: str | None = None
    started_at: str = ""
    finished_at: str | None = None

    @property
    def complete(self) -> bool:
        return self.state == UPLOAD_COMPLETE

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "experiment": self.experiment,
            "state": self.state,
            "report_sha256": self.report_sha256,
            "url": self.url,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UploadEntry | None:
        try:
            return cls(
                tracking_uri=str(data["tracking_uri"]),
                run_id=str(data["run_id"]),
                experiment_id=str(data["experiment_id"]),
                experiment=str(data.get("experiment", "")),
                state=str(data["state"]),
                report_sha256=str(data["report_sha256"]),
                url=None if data.get("url") is None else str(data["url"]),
                started_at=str(data.get("started_at", "")),
                finished_at=None if data.get("finished_at") is None else str(data["finished_at"]),
            )
        except (KeyError, TypeError):
            return None


def read_upload_record(report_dir: str | Path) -> dict[str, UploadEntry]:
    """The entries of ``REPORT_DIR/upload.json`` by tracking URI; empty when there is none.

    An unreadable or foreign file counts as none: the worst outcome is one more run.
    """
    path = Path(report_dir) / UPLOAD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    uploads = data.get("uploads") if isinstance(data, dict) else None
    entries: dict[str, UploadEntry] = {}
    for item in uploads if isinstance(uploads, list) else ():
        entry = UploadEntry.from_dict(item) if isinstance(item, Mapping) else None
        if entry is not None:
            entries[entry.tracking_uri] = entry
    return entries


def _write_upload_entry(folder: Path, entry: UploadEntry) -> None:
    """Put ``entry`` into ``upload.json`` (atomically); a folder that cannot be written keeps
    none: the upload itself goes on."""
    entries = read_upload_record(folder)
    entries[entry.tracking_uri] = entry
    document = {
        "tool": "lossaudit",
        "about": "MLflow runs this report folder was logged to; `lossaudit log` reads it",
        "uploads": [e.to_dict() for e in entries.values()],
    }
    data = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    path = folder / UPLOAD_FILE
    with contextlib.suppress(OSError):
        descriptor, name = tempfile.mkstemp(dir=folder, prefix=f".{UPLOAD_FILE}.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(name, 0o644)
            os.replace(name, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise


def record_key(target: TrackingTarget) -> str:
    """The tracking URI an upload record is filed under: without secrets, a SQLite store by its
    absolute database path, a server without a trailing slash (one store, one key)."""
    db_path = sqlite_db_path(target.uri)
    if db_path is not None:
        return f"sqlite:///{db_path}"
    return redact_uri(target.uri).rstrip("/")


def report_digest(report_dir: str | Path) -> str:
    """SHA-256 of the folder's ``report.json``: which audit an upload record is about."""
    return hashlib.sha256((Path(report_dir) / REPORT_FILE).read_bytes()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _is_artifact(path: Path) -> bool:
    """Every file and folder of the report folder is an artifact, except the upload record and the
    temporary files of an atomic write in progress."""
    return path.name != UPLOAD_FILE and not (path.name.startswith(".") and path.name.endswith(".tmp"))


def _log_contents(
    client: MlflowClient,
    run_id: str,
    report: Mapping[str, Any],
    folder: Path,
    existing: Any,
    *,
    artifact_path: str | None = None,
) -> None:
    """Metrics, params, inputs and artifacts of ``report``/``folder`` into run ``run_id``, and the
    verdict on the audited registry version.

    ``existing`` (the run as it is, when resuming, or a run the audit is logged into) leaves out
    the params and metrics it already has: params cannot change and a metric logged twice would
    have two points; and a dataset input it already has. Artifacts are uploaded again, each to the
    same path (under ``artifact_path`` when given).
    """
    from mlflow.entities import Metric, Param

    have_params = dict(existing.data.params) if existing is not None else {}
    have_metrics = dict(existing.data.metrics) if existing is not None else {}
    now = int(time.time() * 1000)
    dataset = dataset_entity(report)
    model_id = logged_model_id(report)
    link: dict[str, Any] = {}
    if model_id is not None:
        link = {"model_id": model_id}
        if dataset is not None:
            link.update(dataset_name=dataset.name, dataset_digest=dataset.digest)
    metrics = [Metric(k, v, now, 0, **link) for k, v in run_metrics(report).items() if k not in have_metrics]
    params = [Param(k, v) for k, v in run_params(report).items() if k not in have_params]
    # Inputs first: a metric logged against a model and a dataset names that dataset.
    _log_inputs(client, run_id, dataset, model_id, existing)
    if metrics or params:
        client.log_batch(run_id, metrics=metrics, params=params)
    for path in sorted(folder.iterdir()):
        if not _is_artifact(path):
            continue
        if path.is_dir():
            sub = path.name if artifact_path is None else f"{artifact_path}/{path.name}"
            client.log_artifacts(run_id, str(path), artifact_path=sub)
        elif path.is_file():
            client.log_artifact(run_id, str(path), artifact_path=artifact_path)
    _tag_model_version(client, report, run_id)


EVAL_CONTEXT = "eval"
"""The ``mlflow.data.context`` tag of the eval data's dataset input."""


def logged_model_id(report: Mapping[str, Any]) -> str | None:
    """The MLflow 3 logged model the audit is about (``models:/m-...``), if any."""
    source = _mapping(_mapping(report.get("context")).get(CONTEXT_KEY))
    value = source.get("logged_model_id")
    return str(value) if isinstance(value, str) and value else None


def _tensor_schema(dtype: Any, shape: Any) -> Any:
    """An ``mlflow.types.Schema`` of one tensor of ``dtype`` and the per-row ``shape``."""
    import numpy as np
    from mlflow.types import Schema, TensorSpec

    dims = [int(d) for d in shape[1:]] if isinstance(shape, list) else []
    return Schema([TensorSpec(np.dtype(str(dtype)), (-1, *dims))])


def dataset_entity(report: Mapping[str, Any]) -> Any:
    """The eval data as an ``mlflow.entities.Dataset`` from ``report.context["dataset"]`` (None
    when the report has none: a report of ``lossaudit check``, or one written before it existed)."""
    info = _mapping(_mapping(report.get("context")).get("dataset"))
    name, digest = info.get("name"), info.get("digest")
    if not isinstance(name, str) or not isinstance(digest, str) or not name or not digest:
        return None
    from mlflow.entities import Dataset

    profile = _mapping(info.get("profile"))
    schema: str | None = None
    with contextlib.suppress(Exception):  # an exotic dtype: the dataset goes without a schema
        from mlflow.data.schema import TensorDatasetSchema

        tensors = TensorDatasetSchema(
            features=_tensor_schema(info.get("features_dtype"), profile.get("features_shape")),
            targets=_tensor_schema(info.get("targets_dtype"), profile.get("targets_shape")),
        )
        schema = json.dumps(tensors.to_dict())
    return Dataset(
        name=name[:500],
        digest=digest[:36],
        source_type=str(info.get("source_type") or "code"),
        source=json.dumps(_mapping(info.get("source")) or {"tags": {}}),
        schema=schema,
        profile=json.dumps(dict(profile)) if profile else None,
    )


def _log_inputs(client: MlflowClient, run_id: str, dataset: Any, model_id: str | None, existing: Any) -> None:
    """The eval data as a dataset input (context ``eval``) and the audited logged model as a model
    input of the run; a dataset the run already has is not logged again."""
    from mlflow.entities import DatasetInput, InputTag, LoggedModelInput

    datasets = []
    if dataset is not None:
        have = getattr(getattr(existing, "inputs", None), "dataset_inputs", None) or []
        if not any(
            (item.dataset.name, item.dataset.digest) == (dataset.name, dataset.digest) for item in have
        ):
            tags = [InputTag(key="mlflow.data.context", value=EVAL_CONTEXT)]
            datasets.append(DatasetInput(dataset=dataset, tags=tags))
    models = [LoggedModelInput(model_id=model_id)] if model_id is not None else None
    if datasets or models:
        client.log_inputs(run_id, datasets=datasets or None, models=models)


def _tag_model_version(client: MlflowClient, report: Mapping[str, Any], run_id: str) -> None:
    """The verdict and this run's id on the audited registry version's page."""
    source = _mapping(_mapping(report.get("context")).get(CONTEXT_KEY))
    name, version = source.get("model_name"), source.get("model_version")
    if not name or not version:
        return
    from mlflow.exceptions import MlflowException

    try:
        client.set_model_version_tag(str(name), str(version), "lossaudit.verdict", str(report.get("verdict")))
        client.set_model_version_tag(str(name), str(version), "lossaudit.audit_run", run_id)
    except MlflowException as exc:
        # Read-only access to the registry, or a version deleted since the audit: the run is
        # complete without the tag. Anything else is the store failing, as for the run.
        if exc.error_code not in ("PERMISSION_DENIED", "RESOURCE_DOES_NOT_EXIST"):
            raise


def log_report_into_run(
    report_dir: str | Path,
    run_id: str,
    *,
    tracking_uri: str | None = None,
    artifact_path: str = "lossaudit",
) -> LoggedRun:
    """Log the report folder ``report_dir`` into the existing run ``run_id`` (an ``mlflow.evaluate``
    run, or the run autologging opened for a fit) instead of a run of its own.

    The same params, metrics, tags, inputs and version tags as :func:`log_report_folder` logs,
    except that the run keeps its name and description, keeps every param and metric it already
    has (a param of the same key is not logged again), and gets the report files under
    ``artifact_path``. No upload record is written: the run is the caller's.

    Raises
    ------
    BadInputError
        The folder has no readable ``report.json``.
    TrackingUnavailableError
        The store cannot be reached, has no such run, or refused what was logged.
    """
    from mlflow.entities import RunTag

    folder = Path(report_dir)
    report = load_report_dict(folder)
    target = resolve_tracking_uri(tracking_uri)
    try:
        client = connect(target)
        run = client.get_run(run_id)
        tags = run_tags(report)
        tags.pop("mlflow.runName", None)
        if run.data.tags.get("mlflow.note.content"):
            tags.pop("mlflow.note.content", None)
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        _log_contents(client, run_id, report, folder, run, artifact_path=artifact_path)
        experiment_id = str(run.info.experiment_id)
        experiment = client.get_experiment(experiment_id).name
    except LossauditError:
        raise
    except Exception as exc:
        raise _upload_failed(target, exc, None) from None
    return LoggedRun(
        run_id=run_id,
        experiment_id=experiment_id,
        experiment=experiment,
        tracking_uri=target.uri,
        url=run_url(target, experiment_id, run_id),
        store=target.describe(),
        action="logged_into",
    )


def _finish(client: MlflowClient, run_id: str, work: Callable[[], None]) -> None:
    """Run ``work`` then mark the run FINISHED; on any error try to mark it FAILED and re-raise
    (the upload record stays ``started``: ``lossaudit log`` resumes the run)."""
    try:
        work()
    except BaseException:
        # The server may be gone: the original error says more than this one would.
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")


def _logged(target: TrackingTarget, entry: UploadEntry, action: str, notes: list[str]) -> LoggedRun:
    return LoggedRun(
        run_id=entry.run_id,
        experiment_id=entry.experiment_id,
        experiment=entry.experiment,
        tracking_uri=target.uri,
        url=run_url(target, entry.experiment_id, entry.run_id),
        store=target.describe(),
        action=action,
        notes=tuple(notes),
    )


def _log_run(
    client: MlflowClient,
    target: TrackingTarget,
    experiment_id: str,
    experiment: str,
    report: Mapping[str, Any],
    report_dir: Path,
    *,
    digest: str,
    run_name: str | None,
    parent_run_id: str | None,
    notes: list[str],
    subject: str | None = None,
) -> LoggedRun:
    tags = run_tags(report, run_name=run_name, parent_run_id=parent_run_id, subject=subject)
    run = client.create_run(experiment_id, tags=tags, run_name=tags["mlflow.runName"])
    run_id = run.info.run_id
    entry = UploadEntry(
        tracking_uri=record_key(target),
        run_id=run_id,
        experiment_id=experiment_id,
        experiment=experiment,
        state=UPLOAD_STARTED,
        report_sha256=digest,
        url=run_url(target, experiment_id, run_id),
        started_at=_now(),
    )
    # Recorded before anything else is sent: an upload cut short from here on is resumed.
    _write_upload_entry(report_dir, entry)
    _finish(client, run_id, lambda: _log_contents(client, run_id, report, report_dir, None))
    entry = replace(entry, state=UPLOAD_COMPLETE, finished_at=_now())
    _write_upload_entry(report_dir, entry)
    return _logged(target, entry, "created", notes)


def _resume(
    client: MlflowClient,
    target: TrackingTarget,
    entry: UploadEntry,
    report: Mapping[str, Any],
    folder: Path,
    notes: list[str],
) -> LoggedRun | None:
    """Finish the run of an interrupted upload of this very report; None when it is gone (deleted,
    or not in this store any more), which ``notes`` then says."""
    from mlflow.exceptions import MlflowException

    where = redact_uri(target.uri)
    try:
        run = client.get_run(entry.run_id)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        notes.append(
            f"run {entry.run_id} of an interrupted upload of this folder is not in {where} any more; "
            "logging a new run"
        )
        return None
    if run.info.lifecycle_stage == "deleted":
        notes.append(
            f"run {entry.run_id} of an interrupted upload of this folder was deleted in {where}; "
            "logging a new run"
        )
        return None
    status = run.info.status
    action = "none"  # FINISHED: only the record's last write was lost
    if status != "FINISHED":
        _finish(client, entry.run_id, lambda: _log_contents(client, entry.run_id, report, folder, run))
        notes.append(f"run {entry.run_id} was left {status} by an interrupted upload: resumed and finished")
        action = "resumed"
    finished = replace(
        entry,
        experiment_id=str(run.info.experiment_id),
        state=UPLOAD_COMPLETE,
        finished_at=_now(),
    )
    if not finished.experiment:
        finished = replace(finished, experiment=client.get_experiment(finished.experiment_id).name)
    _write_upload_entry(folder, finished)
    return _logged(target, finished, action, notes)


def _fail_orphan(client: MlflowClient, target: TrackingTarget, entry: UploadEntry, notes: list[str]) -> None:
    """An interrupted upload of an earlier audit written into the same folder cannot be resumed
    (the folder holds another report now): its run, if still RUNNING, is marked FAILED."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(entry.run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return
        raise
    if run.info.lifecycle_stage == "deleted" or run.info.status not in ("RUNNING", "SCHEDULED"):
        return
    client.set_terminated(entry.run_id, "FAILED")
    notes.append(
        f"marked run {entry.run_id} in {redact_uri(target.uri)} FAILED: an upload of an earlier audit "
        "in this folder was interrupted and cannot be resumed"
    )


def log_report_folder(
    report_dir: str | Path,
    *,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    upload_hint: bool = True,
    subject: str | None = None,
) -> LoggedRun:
    """Log the report folder ``report_dir`` as one MLflow run and return where it went.

    Idempotent and resumable through ``REPORT_DIR/upload.json``, which records, per tracking URI,
    the run the folder's ``report.json`` is logged to (written as soon as the run exists, marked
    complete once it is FINISHED):

    * already complete there: nothing is sent (``action == "none"``);
    * started but not complete (a killed process or server): that run is resumed -- the params
      and metrics it lacks are logged, the artifacts uploaded again -- and FINISHED
      (``action == "resumed"``); when it no longer exists, a new run is logged;
    * started for another ``report.json`` (a new audit written into the folder): that run, if
      still RUNNING, is marked FAILED (said in ``notes``) and a new run is logged.

    Uploads of one folder are serialised by a lock on the folder, so logging it twice at once
    also makes one run.

    Parameters
    ----------
    report_dir : path
        A folder written by the local report sink: ``report.json`` and the files beside it, all
        uploaded as the run's artifacts (except ``upload.json``).
    tracking_uri : str, optional
        See :func:`lossaudit.tracking.store.resolve_tracking_uri`.
    experiment : str
        Created when missing.
    run_name : str, optional
        The run's name as given. By default the name says what was audited (``subject``, else
        the model) and the verdict: ``audit digits v3: fail LA101`` (:func:`default_run_name`).
    subject : str, optional
        What was audited, for the default name (``audit iris``, ``demo one-unit-cce``).
    parent_run_id : str, optional
        Makes the run a nested child (several models audited together).
    upload_hint : bool
        Name the folder and ``lossaudit log`` in the error when MLflow is down (False for a
        temporary folder that will not outlive the call).

    Raises
    ------
    BadInputError
        The folder has no readable ``report.json``.
    TrackingUnavailableError
        The store cannot be reached or refused the run, whatever the cause (a killed server, a
        locked or damaged database); the message names the folder to upload later with
        ``lossaudit log``. Never any other exception.
    """
    folder = Path(report_dir)
    report = load_report_dict(folder)
    hint = folder if upload_hint else None
    target = resolve_tracking_uri(tracking_uri)
    try:
        digest = report_digest(folder)
        with file_lock(folder):
            return _log_locked(
                target,
                folder,
                report,
                digest,
                hint,
                experiment=experiment,
                run_name=run_name,
                parent_run_id=parent_run_id,
                subject=subject,
            )
    except LossauditError:
        raise
    except Exception as exc:
        raise _upload_failed(target, exc, hint) from None


def _log_locked(
    target: TrackingTarget,
    folder: Path,
    report: Mapping[str, Any],
    digest: str,
    hint: Path | None,
    *,
    experiment: str,
    run_name: str | None,
    parent_run_id: str | None,
    subject: str | None = None,
) -> LoggedRun:
    previous = read_upload_record(folder).get(record_key(target))
    if previous is not None and previous.complete and previous.report_sha256 == digest:
        return _logged(target, previous, "none", [])
    client = connect(target, report_dir=hint)
    notes: list[str] = []
    if previous is not None and not previous.complete:
        if previous.report_sha256 == digest:
            resumed = _resume(client, target, previous, report, folder, notes)
            if resumed is not None:
                return resumed
        else:
            _fail_orphan(client, target, previous, notes)
    if parent_run_id is not None:
        # A child lives in its parent's experiment (under `mlflow run`, the project's).
        parent = client.get_run(parent_run_id)
        experiment_id = parent.info.experiment_id
        experiment = client.get_experiment(experiment_id).name
    else:
        experiment_id = ensure_experiment(client, experiment, target.artifact_root)
    return _log_run(
        client,
        target,
        experiment_id,
        experiment,
        report,
        folder,
        digest=digest,
        run_name=run_name,
        parent_run_id=parent_run_id,
        notes=notes,
        subject=subject,
    )


def _upload_failed(
    target: TrackingTarget, exc: BaseException, folder: Path | None
) -> TrackingUnavailableError:
    return TrackingUnavailableError(store_failure_message(target, "refused the audit run", exc, folder))


def project_run_id(tracking_uri: str | None = None) -> str | None:
    """The run ``mlflow run`` opened for this process (``MLFLOW_RUN_ID``), if any: audits logged
    from inside an MLflow project become its nested children. With ``tracking_uri``, only when
    that is the project run's store (see :func:`lossaudit.tracking.store.project_run_id`)."""
    from lossaudit.tracking.store import project_run_id as from_environment

    return from_environment(tracking_uri)


def report_folder_of(files: Mapping[str, Path]) -> Path | None:
    """The folder the local report sink wrote, from the files it returned (None when it wrote none)."""
    paths = [Path(p) for p in files.values()]
    for path in paths:
        if path.name == REPORT_FILE:
            return path.parent
    return None


@dataclass
class MlflowSink:
    """The audit pipeline's MLflow sink (``ReportSink`` in ``lossaudit.pipeline.stages``).

    :meth:`send` runs after the local report folder is written and logs that folder. For several
    models audited together, :meth:`parent` opens a parent run; runs logged inside the ``with``
    block are its nested children, and the parent gets the worst verdict and every code of its
    children.
    """

    tracking_uri: str | None = None
    experiment: str = DEFAULT_EXPERIMENT
    parent_run_id: str | None = None
    run_name: str | None = None
    """A run name used as given (``lossaudit log --run-name``)."""
    run_subject: str | None = None
    """What each run audits (``audit iris``); its name adds the verdict: ``audit iris: pass``."""
    logged: list[LoggedRun] = field(default_factory=list)
    _child_reports: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list, repr=False)
    """(run name, report) of each child logged under the open parent run."""

    def __post_init__(self) -> None:
        # A tracking URI MLflow has no store for is bad input now (exit 2), not after the audit.
        resolve_tracking_uri(self.tracking_uri)

    @property
    def name(self) -> str:
        return "mlflow"

    def send(self, report: AuditReport, files: Mapping[str, Path]) -> dict[str, Any]:
        """Log the report folder ``files`` came from; return the run's id, URL and store.

        The folder's ``report.json`` is the record, not ``report``: ``lossaudit log`` uploads the
        same folder the same way. When no folder was written, one is written to a temporary
        folder for the upload.
        """
        folder = report_folder_of(files)
        if folder is not None:
            return self.log_folder(folder).to_dict()
        from lossaudit.sinks.local import write_report_folder

        with tempfile.TemporaryDirectory(prefix="lossaudit-report-") as tmp:
            write_report_folder(report, Path(tmp))
            return self.log_folder(Path(tmp), keep_hint=False).to_dict()

    def log_folder(self, report_dir: str | Path, *, keep_hint: bool = True) -> LoggedRun:
        """Log ``report_dir`` (nested under the open parent run, if any)."""
        logged = log_report_folder(
            report_dir,
            tracking_uri=self.tracking_uri,
            experiment=self.experiment,
            run_name=self.run_name,
            parent_run_id=self.parent_run_id,
            upload_hint=keep_hint,
            subject=self.run_subject,
        )
        self.logged.append(logged)
        if self.parent_run_id is not None:
            child = load_report_dict(report_dir)
            self._child_reports.append((self.run_name or default_run_name(child, self.run_subject), child))
        return logged

    @contextmanager
    def parent(self, name: str, explain: Callable[[], str] | None = None) -> Iterator[str]:
        """Open a parent run named ``name``; yields its id; finishes it with the children's verdict.

        The parent's description (``mlflow.note.content``) lists its children with their
        verdicts and ends with ``explain()``, called when the children are done: why the job's own
        verdict is what it is (a demo passes when its models fail as they should).
        """
        target = resolve_tracking_uri(self.tracking_uri)
        client = connect(target)
        try:
            experiment_id = ensure_experiment(client, self.experiment, target.artifact_root)
            run = client.create_run(
                experiment_id,
                tags={"lossaudit.version": _tool_version(), "lossaudit.rules_version": rules_version()},
                run_name=name,
            )
        except LossauditError:
            raise
        except Exception as exc:
            raise _upload_failed(target, exc, None) from None
        run_id = run.info.run_id
        previous, self.parent_run_id = self.parent_run_id, run_id
        self._child_reports = []
        status = "FAILED"
        try:
            yield run_id
            status = "FINISHED"
        finally:
            self.parent_run_id = previous
            self._finish_parent(client, run_id, status, explain)

    def _finish_parent(
        self, client: MlflowClient, run_id: str, status: str, explain: Callable[[], str] | None = None
    ) -> None:
        verdicts = [str(r.get("verdict")) for _, r in self._child_reports]
        codes = dict.fromkeys(str(c) for _, r in self._child_reports for c in r.get("codes") or ())
        # The children are logged (or their folders are kept for `lossaudit log`); a parent left
        # RUNNING is the only loss, and raising here would hide the audit's own outcome.
        with contextlib.suppress(Exception):
            if verdicts:
                client.set_tag(run_id, "lossaudit.verdict", "fail" if "fail" in verdicts else "pass")
                client.set_tag(run_id, "lossaudit.codes", ",".join(codes))
                client.log_metric(run_id, "audits.failed", float(verdicts.count("fail")))
                client.log_metric(run_id, "audits.total", float(len(verdicts)))
            client.set_tag(run_id, "mlflow.note.content", self._parent_note(verdicts, explain))
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, status)

    def _parent_note(self, verdicts: list[str], explain: Callable[[], str] | None) -> str:
        """The parent's description: how many children failed, each child's run name (which says
        its verdict), and why the job's own verdict is what it is."""
        if verdicts:
            failed = verdicts.count("fail")
            lines = [f"**{failed} of {len(verdicts)} audited model(s) failed their audit.**", ""]
            lines += [f"- {name}" for name, _ in self._child_reports]
        else:
            lines = ["**No audit was logged under this run.**"]
        if explain is not None:
            lines += ["", explain()]
        text = "\n".join(lines).strip()
        return text if len(text) <= MAX_NOTE_LENGTH else text[: MAX_NOTE_LENGTH - 3] + "..."


def _tool_version() -> str:
    from lossaudit import __version__

    return __version__
