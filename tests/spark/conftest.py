"""One local-mode Spark session for every test in this folder (``local[1]``, made as the CLI makes
it): the JVM and its Python worker start once. Skips without pyspark or Java.

One core, so one Python worker: TensorFlow is imported and a model loaded once, not once per core,
on CI's two cores that other test workers share (partitions and versions still run, and merge,
one after another)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark_local() -> Iterator[Any]:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'lossaudit[spark]')")
    if shutil.which("java") is None:
        pytest.skip("Java is not installed: Spark needs it")
    from lossaudit.spark.session import spark_session

    session = spark_session("local[1]")
    yield session
    session.stop()
