"""One local-mode Spark session for every test in this folder (``local[2]``, made as the CLI makes
it): the JVM and its Python workers start once. Skips without pyspark or Java."""

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

    session = spark_session("local[2]")
    yield session
    session.stop()
