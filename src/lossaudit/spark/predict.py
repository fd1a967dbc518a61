"""Predictions and Keras's own evaluate, on the Spark executors.

Predictions: ``mlflow.pyfunc.spark_udf`` over the model (a Keras file wrapped as a pyfunc model,
:mod:`lossaudit.spark.pyfunc`), one ``array<double>`` of outputs per row, cached for the counts.

Keras's evaluate: each partition runs ``model.evaluate`` on its rows and returns the state of every
metric variable (a ``Mean``'s total and count, a ``Precision``'s true and false positives, ...).
Keras metric states are sums of per-batch updates, so the states of all partitions add up to the
state one evaluate over all rows would reach; the driver loads them into its own model's metrics
and reads the results. The numbers are Keras's, over every row, to float32 rounding.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError
from lossaudit.spark.data import FEATURES, LABEL

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from lossaudit.keras.predict import LiveEvaluation

PREDICTION = "prediction"
EVALUATE_ROWS = 65_536
"""Rows per evaluate call on an executor (Arrow hands them over 10,000 at a time)."""
_MODELS: dict[tuple[str, bool], Any] = {}
"""Models loaded on this worker process, by (file, unsafe)."""


@dataclass
class ShippedModel:
    """The audited model file, copied where Spark ships it from, and its pyfunc wrapper."""

    folder: Path
    model_file: Path
    pyfunc_dir: Path

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def ship_model(model_file: Path, *, sha256: str | None, unsafe: bool, batch_size: int) -> ShippedModel:
    """Copy ``model_file`` to a temporary folder (checking it is the file the audit read, when its
    sha256 is known) and save the pyfunc wrapper beside it."""
    import hashlib

    folder = Path(tempfile.mkdtemp(prefix="lossaudit-spark-"))
    try:
        digest = hashlib.sha256()
        with model_file.open("rb") as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
        name = f"model-{digest.hexdigest()[:16]}{model_file.suffix.lower()}"
        copy = folder / name
        shutil.copyfile(model_file, copy)
        if sha256 is not None and _sha256(copy) != sha256:
            raise BadInputError(f"{model_file}: the model file changed since it was read; not shipping it")
        from lossaudit.spark.pyfunc import save_wrapper

        pyfunc_dir = folder / "pyfunc"
        save_wrapper(str(pyfunc_dir), str(copy), unsafe=unsafe, batch_size=batch_size)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return ShippedModel(folder=folder, model_file=copy, pyfunc_dir=pyfunc_dir)


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """No download progress bars and no INFO lines from ``spark_udf``."""
    import logging

    saved = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        if saved is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = saved


def predictions_frame(
    spark: SparkSession, frame: DataFrame, shipped: ShippedModel, *, units: int, inputs: tuple[str, ...] = ()
) -> DataFrame:
    """``frame``'s labels and the model's outputs (``array<double>`` of ``units``), cached (memory
    and disk). The model gets ``inputs`` (one float column per feature) when given, else the
    features array."""
    import warnings

    import mlflow.pyfunc
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from lossaudit.spark.pyfunc import output_name

    names = [output_name(i) for i in range(units)]
    result_type = "struct<" + ", ".join(f"{n}: double" for n in names) + ">"
    with _quiet_mlflow(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        udf = mlflow.pyfunc.spark_udf(
            spark, str(shipped.pyfunc_dir), result_type=result_type, env_manager="local"
        )
    arguments = [F.col(c) for c in inputs] if inputs else [F.col(FEATURES)]
    outputs = frame.select(F.col(LABEL), udf(*arguments).alias("_out"))
    predicted = outputs.select(LABEL, F.array(*[F.col("_out").getField(n) for n in names]).alias(PREDICTION))
    return predicted.persist(StorageLevel.MEMORY_AND_DISK)


def check_input(model: Any, n_features: int, n_rows: int) -> None:
    """One line when the data's feature count is not the model's input, as a local audit says it."""
    import numpy as np

    from lossaudit.keras.predict import check_input_shape, conform_input

    probe = np.broadcast_to(np.float32(0.0), (max(n_rows, 1), n_features))
    check_input_shape(model, conform_input(model, probe))


# -- Keras's evaluate, merged -------------------------------------------------------------------


def metric_variables(model: Any) -> list[Any]:
    """Every metric state variable of a compiled model, in a fixed order."""
    variables = getattr(model, "metrics_variables", None)
    if variables is not None:
        return list(variables)
    return [v for m in getattr(model, "metrics", []) for v in m.variables]


def _variable_name(variable: Any) -> str:
    return str(getattr(variable, "path", None) or getattr(variable, "name", ""))


def labels_array(column: pd.Series[Any]) -> np.ndarray:
    """A label column as the array a local audit hands Keras: (n,) numbers, or (n, K) rows."""
    import numpy as np

    values = column.to_numpy()
    if len(values) and isinstance(values[0], np.ndarray | list):
        return np.stack([np.asarray(v) for v in values])
    return values


def features_of(rows: pd.DataFrame, inputs: tuple[str, ...] = ()) -> np.ndarray:
    """The float32 (n, d) feature matrix of rows of the audit frame."""
    import numpy as np

    if inputs:
        matrix: np.ndarray = rows[list(inputs)].to_numpy(dtype=np.float32)
        return matrix
    return np.stack([np.asarray(v, dtype=np.float32) for v in rows[FEATURES].to_numpy()])


def _loaded(path: str, unsafe: bool) -> Any:
    key = (path, unsafe)
    if key not in _MODELS:
        from lossaudit.keras.live import load_model_file

        _MODELS[key] = load_model_file(path, unsafe=unsafe)
    return _MODELS[key]


def evaluate_partition(
    batches: Iterator[pd.DataFrame],
    *,
    file_name: str,
    unsafe: bool,
    batch_size: int,
    inputs: tuple[str, ...] = (),
) -> Iterator[pd.DataFrame]:
    """On an executor: ``model.evaluate`` over the partition's rows, in chunks of about
    :data:`EVALUATE_ROWS` (each evaluate call costs a data pipeline), summing the metric states of
    each chunk; one row (rows, states as float64 bytes, variable names) per partition."""
    import numpy as np
    import pandas as pd
    from pyspark import SparkFiles

    model = _loaded(SparkFiles.get(file_name), unsafe)
    total: np.ndarray | None = None
    rows = 0
    pending: list[pd.DataFrame] = []
    waiting = 0

    def evaluate(chunk: pd.DataFrame) -> np.ndarray:
        import warnings

        from lossaudit.keras.predict import conform_input

        x = features_of(chunk, inputs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.evaluate(
                conform_input(model, x), labels_array(chunk[LABEL]), batch_size=batch_size, verbose=0
            )
        states = [np.asarray(v.numpy(), dtype=np.float64).ravel() for v in metric_variables(model)]
        return np.concatenate(states) if states else np.zeros(0)

    for batch in itertools.chain(batches, [None]):
        if batch is not None and len(batch):
            pending.append(batch)
            waiting += len(batch)
        if pending and (batch is None or waiting >= EVALUATE_ROWS):
            chunk = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
            flat = evaluate(chunk)
            total = flat if total is None else total + flat
            rows += len(chunk)
            pending, waiting = [], 0
    if total is not None:
        names = json.dumps([_variable_name(v) for v in metric_variables(model)])
        yield pd.DataFrame({"rows": [rows], "state": [total.tobytes()], "names": [names]})


def evaluate_merged(
    spark: SparkSession,
    frame: DataFrame,
    model: Any,
    shipped: ShippedModel,
    *,
    unsafe: bool,
    batch_size: int,
    inputs: tuple[str, ...] = (),
) -> LiveEvaluation:
    """Keras's evaluate over every row of ``frame``, run where the rows are and merged.

    The driver first evaluates one batch of rows itself: that builds its model's metrics (the
    classes Keras resolves, rule LA505), records Keras's warnings, and finds what Keras refuses
    (labels that do not fit the loss) as a local evaluate would. Then every partition evaluates
    its rows and the summed metric states are loaded into the driver's metrics.
    """
    import functools
    import math

    import numpy as np

    from lossaudit.keras.predict import LiveEvaluation, evaluate_live

    columns = [LABEL, *inputs] if inputs else [LABEL, FEATURES]
    head_rows = frame.select(*columns).limit(batch_size).toPandas()
    first = evaluate_live(
        model, features_of(head_rows, inputs), labels_array(head_rows[LABEL]), batch_size=batch_size
    )
    if not first.ran:
        return first
    spark.sparkContext.addFile(str(shipped.model_file))
    run = functools.partial(
        evaluate_partition,
        file_name=shipped.model_file.name,
        unsafe=unsafe,
        batch_size=batch_size,
        inputs=inputs,
    )
    try:
        parts = (
            frame.select(*columns).mapInPandas(run, schema="rows long, state binary, names string").collect()
        )
    except Exception as exc:  # the executors' Keras refused what the driver's accepted
        return LiveEvaluation(error=f"evaluate failed on the executors: {_first_line(exc)}")
    variables = metric_variables(model)
    names = [_variable_name(v) for v in variables]
    total = np.zeros(sum(int(np.prod(v.shape)) for v in variables), dtype=np.float64)
    for part in parts:
        if json.loads(part["names"]) != names:
            return LiveEvaluation(error="evaluate on the executors built other metrics than on the driver")
        total += np.frombuffer(part["state"], dtype=np.float64)
    start = 0
    for variable in variables:
        size = int(np.prod(variable.shape))
        chunk = total[start : start + size].reshape(tuple(variable.shape))
        dtype = getattr(variable.dtype, "name", variable.dtype)  # tf.DType or Keras 3's string
        variable.assign(chunk.astype(np.dtype(dtype)))
        start += size
    results = _metric_results(model)
    values: dict[str, float] = {}
    non_finite: list[str] = []
    for name in (*first.values, *first.non_finite):  # Keras's own order of the names
        if name not in results:
            continue
        number = results[name]
        if math.isfinite(number):
            values[name] = number
        else:
            non_finite.append(name)
    return LiveEvaluation(values=values, non_finite=tuple(non_finite), keras_warnings=first.keras_warnings)


def _metric_results(model: Any) -> dict[str, float]:
    getter = getattr(model, "get_metrics_result", None)
    raw = getter() if getter is not None else {m.name: m.result() for m in model.metrics}
    out: dict[str, float] = {}
    for name, value in dict(raw).items():
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:limit]
