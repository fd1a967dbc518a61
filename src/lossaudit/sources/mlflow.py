"""Models and their reported metrics from MLflow: ``models:/`` and ``runs:/`` URIs.

Accepted URIs (the forms ``mlflow/store/artifact/utils/models.py`` parses, plus runs):

* ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME/latest`` -- registry versions;
  ``models:/NAME/STAGE`` (legacy stages) still resolves to the stage's latest version;
* ``models:/m-...`` -- an MLflow 3 logged model by id;
* ``runs:/RUN_ID/PATH`` -- a model logged in a run (MLflow 3 resolves it to the run's logged model).

The model folder is downloaded with :func:`mlflow.artifacts.download_artifacts` and the Keras file
is found through its ``MLmodel`` (the ``keras`` flavour saves ``data/model.keras``, see
``mlflow/keras/save.py``; the ``tensorflow`` flavour ``data/model.keras`` or ``data/model.h5``).

Reported metrics come from the model's source training run: the latest value of every metric
autolog or the user logged whose name lossaudit can attribute (accuracy and its variants,
precision, recall, f1, auc, and losses, which are listed but not recomputed).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError, LossauditError, TrackingUnavailableError
from lossaudit.tracking import CONTEXT_KEY
from lossaudit.tracking.store import (
    TrackingTarget,
    check_reachable,
    connect,
    resolve_tracking_uri,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlflow import MlflowClient

    from lossaudit.core.compare import ReportedMetric
    from lossaudit.keras.static import StaticModel

SOURCE_RUN = "source_run"
"""The ``source`` of reported metrics read from the audited model's training run."""

_SCHEMES = ("models:", "runs:")
_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
# Metric names (after val_/test_/... prefixes) taken from a source run.
_ATTRIBUTABLE = frozenset(
    {
        "accuracy",
        "acc",
        "binary_accuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        "compile_metrics",
        "precision",
        "recall",
        "f1",
        "f1_score",
        "auc",
        "roc_auc",
        "loss",
    }
)


def is_mlflow_uri(text: str | Path) -> bool:
    """True for ``models:/...`` and ``runs:/...`` (the model is in MLflow, not a local file)."""
    return isinstance(text, str) and text.strip().lower().startswith(_SCHEMES)


@dataclass(frozen=True)
class MlflowModelRef:
    """A parsed ``models:/`` or ``runs:/`` URI."""

    uri: str
    kind: str
    """``version``, ``alias``, ``latest``, ``stage``, ``logged_model`` or ``run``."""
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    stage: str | None = None
    model_id: str | None = None
    run_id: str | None = None
    path: str | None = None


def _malformed(uri: str) -> BadInputError:
    return BadInputError(
        f"not a usable MLflow model URI: {uri!r}; use models:/NAME/VERSION, models:/NAME@ALIAS, "
        "models:/MODEL_ID or runs:/RUN_ID/PATH"
    )


def parse_model_uri(uri: str) -> MlflowModelRef:
    """Parse ``uri``; raise :class:`BadInputError` for anything else."""
    text = uri.strip()
    parsed = urllib.parse.urlparse(text, allow_fragments=False)
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.scheme == "runs":
        if len(parts) < 2:
            raise _malformed(uri)
        return MlflowModelRef(text, "run", run_id=parts[0], path="/".join(parts[1:]))
    if parsed.scheme != "models" or not parts or len(parts) > 2:
        raise _malformed(uri)
    if len(parts) == 2:
        name, suffix = parts
        if suffix.isdigit():
            return MlflowModelRef(text, "version", name=name, version=suffix)
        if suffix.lower() == "latest":
            return MlflowModelRef(text, "latest", name=name)
        return MlflowModelRef(text, "stage", name=name, stage=suffix)
    if "@" in parts[0]:
        name, _, alias = parts[0].rpartition("@")
        if not name or not alias:
            raise _malformed(uri)
        return MlflowModelRef(text, "alias", name=name, alias=alias)
    return MlflowModelRef(text, "logged_model", model_id=parts[0])


@dataclass(frozen=True)
class FetchedModel:
    """An MLflow model downloaded to a local folder, with what MLflow says about it."""

    ref: MlflowModelRef
    tracking_uri: str
    model_dir: Path
    model_file: Path
    """The ``.keras`` / ``.h5`` file inside ``model_dir``: what the static reader and loader take."""
    source_run_id: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    logged_model_id: str | None = None
    reported: Mapping[str, float] = field(default_factory=dict)
    """Latest values of the source run's attributable metrics (empty without a source run)."""
    reported_n: int | None = None
    """Rows of the held-out data the run logged as a dataset input, where its profile says."""
    flavors: tuple[str, ...] = ()

    def reported_metrics(self) -> tuple[ReportedMetric, ...]:
        """The source run's numbers as reported metrics with source ``source_run``."""
        return run_reported_metrics(self.reported, self.reported_n)

    def context(self) -> dict[str, Any]:
        """The report context entry (under :data:`lossaudit.tracking.CONTEXT_KEY`) for this model."""
        return {
            CONTEXT_KEY: {
                "model_uri": self.ref.uri,
                "tracking_uri": self.tracking_uri,
                "source_run_id": self.source_run_id,
                "model_name": self.model_name,
                "model_version": self.model_version,
                "logged_model_id": self.logged_model_id,
                "flavors": list(self.flavors),
                "reported_from_source_run": dict(self.reported),
            },
        }

    def cleanup(self) -> None:
        """Remove the downloaded folder."""
        shutil.rmtree(self.model_dir, ignore_errors=True)


_HELD_OUT_CONTEXTS = frozenset({"validation", "val", "eval", "evaluation", "test", "testing"})


def held_out_size(run: Any) -> int | None:
    """Rows of the held-out data a run logged (``mlflow.log_input(dataset, context="validation")``),
    read from the dataset's profile (``num_rows`` for pandas, ``targets_shape``/``features_shape``
    for numpy); None when the run logged none, or several of different sizes."""
    sizes: set[int] = set()
    inputs = getattr(getattr(run, "inputs", None), "dataset_inputs", None) or []
    for item in inputs:
        contexts = {
            str(tag.value).strip().lower()
            for tag in getattr(item, "tags", None) or []
            if getattr(tag, "key", "") == "mlflow.data.context"
        }
        if not contexts & _HELD_OUT_CONTEXTS:
            continue
        try:
            profile = json.loads(getattr(item.dataset, "profile", None) or "{}")
        except (json.JSONDecodeError, TypeError):
            continue
        if not isinstance(profile, dict):
            continue
        rows = profile.get("num_rows")
        for key in ("targets_shape", "features_shape"):
            shape = profile.get(key)
            if rows is None and isinstance(shape, list) and shape and isinstance(shape[0], int):
                rows = shape[0]
        if isinstance(rows, int) and not isinstance(rows, bool) and rows > 0:
            sizes.add(rows)
    return sizes.pop() if len(sizes) == 1 else None


def run_reported_metrics(reported: Mapping[str, float], n: int | None) -> tuple[ReportedMetric, ...]:
    """A source run's attributable metrics (:func:`attributable_metrics`) as reported numbers with
    source ``source_run``; ``n`` is the size of its held-out data (:func:`held_out_size`)."""
    from lossaudit.core.compare import OTHER_DATA, ReportedMetric, measured_on_for_run_metric

    # The run measured its numbers on its own data (its validation split, or the training
    # data), never on the eval set being audited: they are judged against sampling error.
    out = []
    for name, value in reported.items():
        where = measured_on_for_run_metric(name)
        size = n if where == OTHER_DATA else None
        out.append(ReportedMetric.from_value(name, value, SOURCE_RUN, measured_on=where, n=size))
    return tuple(out)


def attributable_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The metrics of a run that lossaudit can attribute or list, in name order."""
    from lossaudit.core.compare import base_metric_name

    out: dict[str, float] = {}
    for name in sorted(metrics):
        base = base_metric_name(name)
        if base in _ATTRIBUTABLE or (base.endswith("_loss") and base != "log_loss"):
            out[name] = float(metrics[name])
    return out


def find_model_file(model_dir: str | Path) -> tuple[Path, tuple[str, ...]]:
    """The Keras model file inside a downloaded MLflow model folder, and the folder's flavours.

    Raises
    ------
    BadInputError
        No Keras file (an exported SavedModel, or a non-Keras flavour).
    """
    import yaml

    folder = Path(model_dir)
    if folder.is_file():
        if folder.suffix.lower() in _MODEL_SUFFIXES:
            return folder, ()
        raise BadInputError(f"{folder} is not a Keras model file (.keras or .h5)")
    flavors: dict[str, Any] = {}
    mlmodel = folder / "MLmodel"
    if mlmodel.is_file():
        try:
            loaded = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            loaded = {}
        flavors = dict(loaded.get("flavors") or {}) if isinstance(loaded, dict) else {}
    names = tuple(flavors)
    for flavor in ("keras", "tensorflow"):
        options = flavors.get(flavor)
        if not isinstance(options, dict):
            continue
        if options.get("save_exported_model"):
            raise BadInputError(
                f"the MLflow model in {folder} was logged with save_exported_model=True (a TensorFlow "
                "SavedModel); lossaudit reads .keras/.h5 models: log it with save_exported_model=False"
            )
        data = folder / str(options.get("data", "data"))
        for stem in ("model", "keras_model"):
            for suffix in _MODEL_SUFFIXES:
                candidate = data / (stem + suffix)
                if candidate.is_file():
                    return candidate, names
    candidates = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in _MODEL_SUFFIXES)
    if len(candidates) == 1:
        return candidates[0], names
    if candidates:
        listed = ", ".join(str(p.relative_to(folder)) for p in candidates[:5])
        raise BadInputError(f"the MLflow model in {folder} holds several Keras files ({listed}); which one?")
    shown = ", ".join(names) or "none (no MLmodel file)"
    raise BadInputError(f"the MLflow model in {folder} has no .keras or .h5 file; its flavours: {shown}")


def _not_found(uri: str, exc: BaseException) -> BadInputError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return BadInputError(f"cannot get {uri} from MLflow: {text[:240]}")


def _classify(target: TrackingTarget, uri: str, exc: BaseException) -> LossauditError:
    """A failure during a fetch: the server went away (exit 3) or the model is not there (exit 2)."""
    if target.is_http:
        try:
            check_reachable(target)
        except TrackingUnavailableError as down:
            return TrackingUnavailableError(f"{down}; cannot fetch {uri}")
    return _not_found(uri, exc)


def _version_facts(client: MlflowClient, ref: MlflowModelRef) -> tuple[str | None, str | None, str | None]:
    """(version, source run id, logged model id) of a registry reference."""
    assert ref.name is not None
    if ref.kind == "version":
        mv = client.get_model_version(ref.name, str(ref.version))
    elif ref.kind == "alias":
        mv = client.get_model_version_by_alias(ref.name, str(ref.alias))
    else:
        versions = list(client.search_model_versions(f"name = '{ref.name.replace(chr(39), chr(39) * 2)}'"))
        if ref.kind == "stage":
            stage = str(ref.stage).lower()
            versions = [v for v in versions if str(v.current_stage or "").lower() == stage]
        if not versions:
            what = f"in stage {ref.stage!r}" if ref.kind == "stage" else "at all"
            raise BadInputError(f"cannot get {ref.uri} from MLflow: model {ref.name!r} has no version {what}")
        mv = max(versions, key=lambda v: int(v.version))
    model_id = getattr(mv, "model_id", None) or None
    if model_id is None and str(mv.source or "").startswith("models:/m-"):
        # MLflow 3 registers a logged model with source models:/<model id>.
        model_id = str(mv.source)[len("models:/") :].split("/")[0]
    run_id = mv.run_id or None
    if run_id is None and model_id is not None:
        run_id = client.get_logged_model(model_id).source_run_id or None
    return str(mv.version), run_id, model_id


def _storage_uri(
    client: MlflowClient, ref: MlflowModelRef, version: str | None, model_id: str | None
) -> tuple[str, str | None]:
    """Where the model's files are stored (``mlflow-artifacts:/...``, ``file:///...``, ``s3://...``),
    and the logged model id found on the way.

    MLflow's own ``models:/`` download asks the default registry (``mlflow.get_registry_uri()``,
    in ``ModelsArtifactRepository.get_underlying_uri``), not the URI it is given; resolving with
    this client keeps ``--tracking-uri`` in charge.
    """
    if model_id is not None:
        return str(client.get_logged_model(model_id).artifact_location), model_id
    if ref.kind == "run":
        run_id, path = str(ref.run_id), str(ref.path)
        run = client.get_run(run_id)
        # MLflow 3 keeps a model logged in a run as a logged model named after the path.
        quoted = path.replace("'", "''")
        for logged in client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"name = '{quoted}'"
        ):
            if logged.source_run_id == run_id:
                return str(logged.artifact_location), str(logged.model_id)
        return f"{run.info.artifact_uri.rstrip('/')}/{path}", None
    assert ref.name is not None and version is not None
    location = str(client.get_model_version_download_uri(ref.name, version))
    if location.startswith("runs:/"):
        run_ref = parse_model_uri(location)
        return _storage_uri(client, run_ref, None, None)
    return location, None


def fetch_model(
    uri: str,
    *,
    tracking_uri: str | None = None,
    dst_dir: str | Path | None = None,
    read_reported: bool = True,
) -> FetchedModel:
    """Download the model ``uri`` names and read its source run's metrics.

    Parameters
    ----------
    uri : str
        ``models:/...`` or ``runs:/...`` (see the module docstring).
    tracking_uri : str, optional
        Tracking and registry URI; see :func:`lossaudit.tracking.store.resolve_tracking_uri`.
    dst_dir : path, optional
        Where to download; a new temporary folder when not given (remove it with
        :meth:`FetchedModel.cleanup`).
    read_reported : bool
        Read the source run's metrics as reported numbers.

    Raises
    ------
    TrackingUnavailableError
        The tracking server does not answer: without it there is no model to audit.
    BadInputError
        The URI is malformed, names nothing, or holds no Keras model.
    """
    ref = parse_model_uri(uri)
    target = resolve_tracking_uri(tracking_uri)
    try:
        client = connect(target)
    except TrackingUnavailableError as exc:
        raise TrackingUnavailableError(f"{exc}; cannot fetch {ref.uri}") from None
    from mlflow.exceptions import MlflowException

    version: str | None = None
    run_id: str | None = None
    model_id: str | None = None
    try:
        if ref.kind == "run":
            run_id = ref.run_id
        elif ref.kind == "logged_model":
            model_id = ref.model_id
            run_id = client.get_logged_model(str(model_id)).source_run_id or None
        else:
            version, run_id, model_id = _version_facts(client, ref)
        storage, found_model_id = _storage_uri(client, ref, version, model_id)
        model_id = model_id or found_model_id
        reported: dict[str, float] = {}
        reported_n: int | None = None
        if read_reported and run_id is not None:
            source_run = client.get_run(run_id)
            reported = attributable_metrics(source_run.data.metrics)
            reported_n = held_out_size(source_run)
    except LossauditError:
        raise
    except MlflowException as exc:
        raise _classify(target, ref.uri, exc) from None
    except OSError as exc:
        raise _classify(target, ref.uri, exc) from None

    if dst_dir is not None:
        folder = Path(dst_dir)
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="lossaudit-mlflow-"))
        # The audit reads the file twice (statically, then live) and may end anywhere after;
        # removing the download at exit needs no caller to remember it.
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    try:
        import mlflow.artifacts

        local = mlflow.artifacts.download_artifacts(
            artifact_uri=storage,
            dst_path=str(folder),
            tracking_uri=target.client_uri,
            registry_uri=target.client_uri,
        )
        model_file, flavors = find_model_file(local)
    except LossauditError:
        if dst_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    except (MlflowException, OSError) as exc:
        if dst_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
        raise _classify(target, ref.uri, exc) from None
    return FetchedModel(
        ref=ref,
        tracking_uri=target.uri,
        model_dir=folder,
        model_file=model_file,
        source_run_id=run_id,
        model_name=ref.name,
        model_version=version,
        logged_model_id=model_id,
        reported=reported,
        reported_n=reported_n,
        flavors=flavors,
    )


class MlflowModelSource:
    """The audit pipeline's model source for ``models:/`` and ``runs:/`` URIs.

    The model is downloaded on first use (:meth:`read_static`, the pipeline's first stage), so a
    down server ends the audit with exit 3 before any data or TensorFlow is loaded. Its source
    run's metrics are offered to the compare stage through :meth:`reported_metrics`.
    """

    def __init__(self, uri: str, *, tracking_uri: str | None = None, read_reported: bool = True) -> None:
        self._ref = parse_model_uri(uri)
        self._tracking_uri = tracking_uri
        self._read_reported = read_reported
        self._fetched: FetchedModel | None = None

    @property
    def uri(self) -> str:
        return self._ref.uri

    def fetch(self) -> FetchedModel:
        """The downloaded model (downloaded once)."""
        if self._fetched is None:
            self._fetched = fetch_model(
                self._ref.uri, tracking_uri=self._tracking_uri, read_reported=self._read_reported
            )
        return self._fetched

    def read_static(self) -> StaticModel:
        from lossaudit.keras.static import read_model_file

        return read_model_file(self.fetch().model_file)

    def load(self, static: StaticModel, *, unsafe: bool, on_note: Callable[[str], None]) -> Any:
        from lossaudit.sources.local import LocalFileSource

        on_note(f"model downloaded from {self._ref.uri} ({self.fetch().tracking_uri})")
        return LocalFileSource(self.fetch().model_file).load(static, unsafe=unsafe, on_note=on_note)

    def context(self) -> dict[str, Any]:
        return self.fetch().context()

    def reported_metrics(self) -> tuple[ReportedMetric, ...]:
        """The source run's attributable metrics, as reported numbers with source ``source_run``."""
        return self.fetch().reported_metrics() if self._read_reported else ()
