"""Keras adapters: read a saved model's head statically, or load and run a model live.

This package's ``__init__`` imports nothing: :mod:`lossaudit.keras.static` reads ``.keras``, ``.h5``
and SavedModel files as data (json, zipfile, its own HDF5 and protobuf readers, h5py for rare HDF5
layouts), so ``lossaudit check --model`` never imports TensorFlow or Keras. Modules that need Keras
import it inside their functions.
"""
