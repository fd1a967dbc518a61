"""Where an audit's inputs come from: the model and its eval data.

:mod:`.base` is the interface (:class:`~lossaudit.sources.base.ModelSource`) and the registry of
URI prefixes; :mod:`.local` reads a model file on disk; :mod:`.mlflow` a registered model or a
run's model (``models:/``, ``runs:/``) and the metrics its source run reported; :mod:`.files`
loads labels, predictions and data files (``.npy``, ``.npz``, ``.csv``, ``.parquet``), and
:mod:`.tables` streams a CSV or Parquet eval table into a memory-mapped float32 x.

Importing this package imports nothing.
"""
