"""Keras adapters: read a saved model's head statically, or load and run a model live.

This package's ``__init__`` imports nothing. :mod:`lossaudit.keras.static` reads ``.keras``, ``.h5``
and SavedModel files as data (json, zipfile, the HDF5 reader in :mod:`lossaudit.keras.hdf5` with
h5py for rare layouts, the protobuf reader in :mod:`lossaudit.keras.savedmodel`), so
``lossaudit check --model`` never imports TensorFlow or Keras. :mod:`~lossaudit.keras.live`,
:mod:`~lossaudit.keras.predict` and :mod:`~lossaudit.keras.retrain` need Keras and import it inside
their functions.
"""
