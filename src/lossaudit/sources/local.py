"""A model on disk: a ``.keras`` zip, a legacy ``.h5`` file or a SavedModel folder.

Reads through the Keras adapter: the static reader (:mod:`lossaudit.keras.static`) for the head,
:mod:`lossaudit.keras.live` (or tf-keras, for a SavedModel) for the live model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    from lossaudit.core.compare import ReportedMetric
    from lossaudit.keras.static import ModelSnapshot, StaticModel


@dataclass(frozen=True)
class LocalFileSource:
    """A ``.keras`` zip, a legacy ``.h5`` file or a SavedModel folder on disk.

    One model, one reading: :meth:`read_static` copies the file to a private folder (hashing it,
    refusing a polyglot or a suffix that disagrees with the content) and reads the copy;
    :meth:`load` checks the copy's hash again and loads that same copy, then removes it. What the
    rules judged is what Keras runs, whatever happens to the original in between. The copy's
    sha256 goes to the report context (``model_sha256``).
    """

    path: Path
    _held: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    """The snapshot of the last :meth:`read_static` (until loaded) and its sha256."""

    @property
    def uri(self) -> str:
        return str(self.path)

    def read_static(self) -> StaticModel:
        from lossaudit.keras.static import snapshot_model_file

        self._release()
        snapshot = snapshot_model_file(self.path)
        try:
            static = snapshot.read_static()
        except BaseException:
            snapshot.close()
            raise
        self._held.update(snapshot=snapshot, sha256=snapshot.sha256)
        return static

    def load(self, static: StaticModel, *, unsafe: bool, on_note: Callable[[str], None]) -> Any:
        held = self._held.get("snapshot")
        # The copy the static read came from; another static read (a caller's own) is compared
        # with a fresh copy instead.
        snapshot: ModelSnapshot | None = held if held is not None and held.sha256 == static.sha256 else None
        try:
            if static.format == "savedmodel":
                return _load_savedmodel(self.path, static, unsafe=unsafe, snapshot=snapshot)
            from lossaudit.keras.live import load_model_file

            return load_model_file(
                self.path, unsafe=unsafe, static=static, snapshot=snapshot, on_note=on_note
            )
        finally:
            self._release()  # the model is in memory now (or failed to load): the copy goes

    def context(self) -> dict[str, Any]:
        # The path is the report's "model" already; the hash says which bytes were audited.
        sha256 = self._held.get("sha256")
        return {} if sha256 is None else {"model_sha256": sha256}

    def reported_metrics(self) -> tuple[ReportedMetric, ...]:
        return ()  # a file carries no record of what its training reported

    def _release(self) -> None:
        snapshot = self._held.pop("snapshot", None)
        if snapshot is not None:
            snapshot.close()


def _load_savedmodel(path: Path, static: StaticModel, *, unsafe: bool, snapshot: ModelSnapshot | None) -> Any:
    """A tf-keras SavedModel folder: only tf-keras can load it back as a Keras model. It loads
    the private copy its static read came from (made here when not given)."""
    if snapshot is None:
        from lossaudit.keras.static import snapshot_model_file

        with snapshot_model_file(path) as own:
            return _load_savedmodel(path, static, unsafe=unsafe, snapshot=own)
    from lossaudit.keras.live import checked_static, refuse_lambda

    checked = checked_static(path, snapshot, static, unsafe=unsafe)
    refuse_lambda(path, checked.lambda_layers if checked is not None else static.lambda_layers, unsafe)
    try:
        import tf_keras
    except ImportError:
        raise BadInputError(
            f"{path}: a SavedModel folder loads only with tf_keras (pip install tf-keras), or save "
            "the model as .keras"
        ) from None
    try:
        return tf_keras.models.load_model(str(snapshot.path), compile=True)
    except Exception as exc:  # tf-keras raises many types on foreign or damaged folders
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BadInputError(
            f"cannot load model {path}: {line.replace(str(snapshot.path), str(path))}"
        ) from None
