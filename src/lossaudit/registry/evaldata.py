"""Each version's eval data: where it is named, fetched once per job, hashed once per file.

In order: an explicit mapping (registered model name or glob -> data path), else the version tag
``lossaudit.data`` (a path or an artifact URI such as ``runs:/<run id>/eval/data.npz``), else the
dataset input logged on the version's source run (``mlflow.log_input``: the dataset's ``source``
JSON holds a ``uri`` or ``path``; eval-like contexts first). Artifact URIs are downloaded into a
folder of the job's (:meth:`DataResolver.close` removes it); the hash is the audit pipeline's own
``data_sha256``, so a version's ``lossaudit.data_hash`` tag equals its audit run's param.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError
from lossaudit.registry.datafiles import download_eval_data, is_artifact_uri, local_path
from lossaudit.registry.tags import TAG_DATA

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from lossaudit.registry.options import RegistryOptions
    from lossaudit.registry.versions import VersionRef
    from lossaudit.tracking.store import TrackingTarget

EVAL_CONTEXTS = ("eval", "evaluation", "test", "testing", "validation", "val")
"""``mlflow.log_input`` contexts preferred when a source run logged several datasets."""
_CONTEXT_TAG = "mlflow.data.context"


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
        if not is_artifact_uri(text):
            return local_path(text)
        if text in self._downloads:
            return self._downloads[text]
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="lossaudit-registry-data-"))
        folder = self._folder / hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        local = download_eval_data(text, folder, self.target.client_uri)
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


def _line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]
