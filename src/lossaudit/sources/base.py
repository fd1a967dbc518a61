"""The model-source interface of the audit pipeline, and the registry of URI prefixes.

A :class:`ModelSource` gives the pipeline a model in two steps: its saved head read as data
(:meth:`~ModelSource.read_static`, no TensorFlow) and then the live model
(:meth:`~ModelSource.load`). :func:`model_source_for` picks one for a path or URI: a registered
prefix's factory (:func:`register_model_source`: how another adapter adds a scheme), else a file on
disk (:class:`lossaudit.sources.local.LocalFileSource`). ``models:/`` and ``runs:/`` URIs need a
tracking URI, so the CLI, the pipeline runner and the Python API build their
:class:`lossaudit.sources.mlflow.MlflowModelSource` themselves and hand it to the audit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    from lossaudit.core.compare import ReportedMetric
    from lossaudit.keras.static import StaticModel


@runtime_checkable
class ModelSource(Protocol):
    """Where a model is read from: its saved head (no TensorFlow), then the live model."""

    @property
    def uri(self) -> str:
        """What the user named: a path or a URI (goes to ``report.context["model"]``)."""
        ...

    def read_static(self) -> StaticModel:
        """The saved model's head and Lambda layers, read as data (never runs the file)."""
        ...

    def load(self, static: StaticModel, *, unsafe: bool, on_note: Callable[[str], None]) -> Any:
        """The live Keras model; refuses Lambda layers unless ``unsafe``. ``on_note`` gets lines
        worth keeping in the report (how the model was loaded)."""
        ...

    def context(self) -> dict[str, Any]:
        """Plain-JSON facts about the source for the report context (run id, registry version)."""
        ...

    def reported_metrics(self) -> tuple[ReportedMetric, ...]:
        """Numbers the source itself carries (an MLflow model's training run), compared like the
        live evaluate's; empty for a file."""
        ...


SourceFactory = Callable[[str], ModelSource]
_SOURCE_FACTORIES: dict[str, SourceFactory] = {}
_URI_PREFIXES_NEEDING_A_FACTORY = ("models:/", "runs:/", "mlflow-artifacts:/")


def register_model_source(prefix: str, factory: SourceFactory) -> None:
    """Make :func:`model_source_for` send URIs starting with ``prefix`` to ``factory``."""
    _SOURCE_FACTORIES[prefix] = factory


def model_source_for(uri: str) -> ModelSource:
    """The :class:`ModelSource` for a model path or URI (longest registered prefix wins)."""
    for prefix in sorted(_SOURCE_FACTORIES, key=len, reverse=True):
        if uri.startswith(prefix):
            return _SOURCE_FACTORIES[prefix](uri)
    if uri.startswith(_URI_PREFIXES_NEEDING_A_FACTORY):
        raise BadInputError(f"{uri}: MLflow model URIs need the MLflow adapter, which is not available here")
    from lossaudit.sources.local import LocalFileSource

    return LocalFileSource(Path(uri))
