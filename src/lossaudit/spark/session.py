"""The SparkSession an audit runs on: the master from ``--master``, else ``SPARK_MASTER``, else
``local[*]``, so the same command runs on a laptop and on a cluster.

Local masters run the Python workers with this interpreter (``spark.pyspark.python``), so they see
the packages the driver sees; on a cluster the workers' Python is the cluster's (``PYSPARK_PYTHON``
or ``spark.pyspark.python`` as the cluster sets it) and must have lossaudit installed. The UI and
the console progress bar are off and Spark logs only errors: an audit's output is its report.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import warnings
from typing import TYPE_CHECKING

from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"
MASTER_ENV = "SPARK_MASTER"
APP_NAME = "lossaudit"
MISSING_PYSPARK = "pyspark is not installed: pip install 'lossaudit[spark]'"
_LOCAL_MASTER = re.compile(r"local(\[(\*|\d+)(,\s*\d+)?\])?")
_WORKER_ENV = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES")
"""Driver settings the Python workers get too (they import TensorFlow)."""
_QUIET_WORKERS = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # pyspark warns (FutureWarning) on each worker's start under pandas 3; harmless.
    "PYTHONWARNINGS": "ignore::FutureWarning",
}
_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def require_pyspark() -> None:
    """Stop with one line (exit 2) when pyspark is not installed."""
    if importlib.util.find_spec("pyspark") is None:
        raise BadInputError(MISSING_PYSPARK)


def resolve_master(master: str | None = None) -> str:
    """``master``, else ``$SPARK_MASTER``, else ``local[*]``."""
    chosen = (master or "").strip() or os.environ.get(MASTER_ENV, "").strip() or DEFAULT_MASTER
    return chosen


def is_local(master: str) -> bool:
    return _LOCAL_MASTER.fullmatch(master.strip()) is not None


def _local_cores(master: str) -> int:
    """The cores a local master uses: N of local[N], all of local[*], one of local."""
    match = _LOCAL_MASTER.fullmatch(master.strip())
    threads = match.group(2) if match else None
    if threads is None:
        return 1
    if threads == "*":
        return os.cpu_count() or 1
    return max(1, int(threads))


def spark_session(master: str | None = None) -> SparkSession:
    """The active SparkSession if there is one (a test's, or ``spark-submit``'s), else a new one on
    :func:`resolve_master`.

    Raises
    ------
    BadInputError
        pyspark is missing, or Spark could not start (no Java, an unreachable master): one line.
    """
    require_pyspark()
    # pyspark warns (FutureWarning) on pandas 3 at import and on each conversion; harmless.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark(\.|$)")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    chosen = resolve_master(master)
    builder = (
        SparkSession.builder.master(chosen)
        .appName(APP_NAME)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "ERROR")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if is_local(chosen):
        # A few shuffle partitions per core, not Spark's 200: the shuffles here are small groups.
        builder = builder.config("spark.sql.shuffle.partitions", str(4 * _local_cores(chosen)))
    if is_local(chosen) and not os.environ.get("PYSPARK_PYTHON"):
        # Without it the workers start the system python, which lacks the driver's packages.
        # pyspark reads the variable (the setting is for the executors' launcher).
        os.environ["PYSPARK_PYTHON"] = sys.executable
        builder = builder.config("spark.pyspark.python", sys.executable)
    for name in _WORKER_ENV:
        value = os.environ.get(name)
        if value is not None:
            builder = builder.config(f"spark.executorEnv.{name}", value)
    for name, value in _QUIET_WORKERS.items():
        builder = builder.config(f"spark.executorEnv.{name}", os.environ.get(name, value))
    if is_local(chosen):
        # The JVM starts here: quiet from its first line (a cluster keeps its own log settings).
        builder = builder.config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{_log4j2_file()}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            session = builder.getOrCreate()
    except Exception as exc:  # PySparkRuntimeError (no Java), Py4JError, an unreachable master
        raise BadInputError(
            f"Spark could not start on master {chosen}: {_first_line(exc)} "
            "(the Spark engine needs Java 17+ and a reachable master)"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def _log4j2_file() -> str:
    """A log4j2 configuration that logs errors only (the JVM reads it at start)."""
    import tempfile
    from pathlib import Path

    path = Path(tempfile.gettempdir()) / f"lossaudit-log4j2-{os.getuid()}.properties"
    if not path.is_file() or path.read_text(encoding="utf-8") != _LOG4J2:
        path.write_text(_LOG4J2, encoding="utf-8")
    return str(path)


def describe(session: SparkSession) -> dict[str, str | int]:
    """Where the audit ran, for the report context."""
    context = session.sparkContext
    return {
        "spark_master": str(context.master),
        "spark_version": str(session.version),
        "spark_parallelism": int(context.defaultParallelism),
    }


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
