"""The Spark adapter: ``lossaudit audit --engine spark`` reads, validates, predicts and counts on a
Spark cluster (or ``local[*]``), and hands the core merged counts instead of arrays.

This package's ``__init__`` imports nothing; pyspark is an optional dependency
(``pip install 'lossaudit[spark]'``), imported inside the functions that use it.
"""
