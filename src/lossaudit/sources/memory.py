"""A Keras model already in memory: a notebook's model, or the model behind an MLflow pyfunc.

Its head is read from the live model (:func:`lossaudit.keras.live.head_from_model`, the same
reading the audit's ``obtain_model`` stage makes of a loaded file), so the ``check_compatibility``
stage judges what the file's saved config would say; :meth:`InMemoryModelSource.load` hands the
same object to the pipeline. Nothing is saved, reloaded or copied: the model is audited as it is,
Lambda layers included (their code is already running in this process).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    from lossaudit.core.compare import ReportedMetric
    from lossaudit.keras.static import StaticModel

IN_MEMORY_FORMAT = "in_memory"
"""``StaticModel.format`` (and the report's ``model_format``) of a model audited in memory."""
READ_LIVE = "live"


def is_keras_model(obj: Any) -> bool:
    """True for a Keras 3 or tf-keras model object (told by duck typing, importing neither)."""
    module = type(obj).__module__ or ""
    return (
        module.split(".")[0] in ("keras", "tf_keras", "tensorflow")
        and hasattr(obj, "layers")
        and hasattr(obj, "predict")
        and hasattr(obj, "compile")
    )


def _output_layers(model: Any) -> tuple[str, ...]:
    """Class names of the layers from the last one with ``units`` to the output, in order."""
    from lossaudit.keras.live import flat_layers

    layers = flat_layers(model)
    start = 0
    for index in range(len(layers) - 1, -1, -1):
        units = getattr(layers[index], "units", None)
        if isinstance(units, int) and not isinstance(units, bool):
            start = index
            break
    return tuple(type(layer).__name__ for layer in layers[start:])


class InMemoryModelSource:
    """The audit pipeline's :class:`~lossaudit.sources.base.ModelSource` for a live Keras model.

    Parameters
    ----------
    model : a ``keras.Model`` (or a tf-keras model), compiled or not.
    uri : what the report names as the model; default ``in-memory:<model.name>``.
    context : extra plain-JSON facts for the report context (an MLflow model's ids).
    reported : numbers the model's source carries (an MLflow model's training run), compared like
        the live evaluate's.
    """

    def __init__(
        self,
        model: Any,
        *,
        uri: str | None = None,
        context: Mapping[str, Any] | None = None,
        reported: Sequence[ReportedMetric] = (),
    ) -> None:
        if not is_keras_model(model):
            raise BadInputError(
                f"lossaudit audits Keras models: got a {type(model).__module__}.{type(model).__name__}"
            )
        self._model = model
        self._uri = uri or f"in-memory:{getattr(model, 'name', None) or type(model).__name__}"
        self._context = dict(context or {})
        self._reported = tuple(reported)

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def model(self) -> Any:
        return self._model

    def read_static(self) -> StaticModel:
        from lossaudit.keras.live import head_from_model, keras_version, model_family
        from lossaudit.keras.static import StaticModel

        return StaticModel(
            path=self._uri,
            format=IN_MEMORY_FORMAT,
            head=head_from_model(self._model, source=self._uri),
            keras_version=keras_version(self._model),
            keras_family=model_family(self._model),
            read_mode=READ_LIVE,
            output_layers=_output_layers(self._model),
        )

    def load(self, static: StaticModel, *, unsafe: bool, on_note: Callable[[str], None]) -> Any:
        on_note("audited the model object in memory (not saved or reloaded)")
        return self._model

    def context(self) -> dict[str, Any]:
        return dict(self._context)

    def reported_metrics(self) -> tuple[ReportedMetric, ...]:
        return self._reported
