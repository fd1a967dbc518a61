"""Keras adapters: read a saved model's head statically, or load and run a model live.

This package's ``__init__`` imports nothing. :mod:`lossaudit.keras.static` reads ``.keras``, ``.h5``
and SavedModel files as data (json, zipfile, the HDF5 reader in :mod:`lossaudit.keras.hdf5` with
h5py for rare layouts, the protobuf reader in :mod:`lossaudit.keras.savedmodel`), so
``lossaudit check --model`` never imports TensorFlow or Keras. :mod:`~lossaudit.keras.live`,
:mod:`~lossaudit.keras.predict` and :mod:`~lossaudit.keras.retrain` need Keras and import it inside
their functions.

``lossaudit.keras.AuditCallback`` (the audit inside ``model.fit``) is the Python API's
:class:`lossaudit.api.callback.AuditCallback`, imported on first use: importing it imports Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lossaudit.api.callback import AuditCallback

__all__ = ["AuditCallback"]


def __getattr__(name: str) -> Any:
    """``AuditCallback``, imported on first use (PEP 562): it subclasses a Keras class."""
    if name == "AuditCallback":
        from lossaudit.api.callback import AuditCallback

        return AuditCallback
    raise AttributeError(f"module 'lossaudit.keras' has no attribute {name!r}")
