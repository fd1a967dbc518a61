"""Eval data as a Spark DataFrame: Parquet files (a path, a folder or a glob such as
``'eval/*.parquet'``) holding the label column(s) named by ``--label-column`` and, besides them,
either one numeric column per feature or one array column of features.

As for a local Parquet file (:func:`lossaudit.sources.files.load_dataset`): label columns are
matched by name or glob (several columns are one-hot or multi-hot labels; one array column is too),
the other columns are the features, features must be numeric and are read as float32, and features
holding NaN or an infinity stop the audit with one line.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType

FEATURES = "features"
LABEL = "label"
"""The audit frame's two columns: features (array<float>) and the label as the file holds it (a
number, or an array for one-hot, multi-hot and soft labels)."""
FEATURE_PREFIX = "_f"
"""With one column per feature, the frame also holds them as float columns ``_f0``, ``_f1``, ...:
the model's input is handed over column by column (no array is built and taken apart per row)."""

_NUMPY_NAMES = {
    "ByteType": "int8",
    "ShortType": "int16",
    "IntegerType": "int32",
    "LongType": "int64",
    "FloatType": "float32",
    "DoubleType": "float64",
    "BooleanType": "bool",
}


@dataclass(frozen=True)
class EvalData:
    """The eval data read by Spark, and how its columns were laid out."""

    frame: DataFrame
    """Columns :data:`FEATURES` and :data:`LABEL` (and :attr:`inputs`)."""
    path: str
    feature_columns: tuple[str, ...]
    feature_layout: str
    """``columns`` (one per feature) or ``array`` (one array column)."""
    label_columns: tuple[str, ...]
    label_layout: str
    """``scalar`` (one number per row), ``array`` (one array column) or ``columns`` (several)."""
    label_dtype: str
    """numpy's name for the label values' type (``int64``, ``float64``, ...; ``object`` otherwise)."""
    label_numeric: bool
    partitions: int
    inputs: tuple[str, ...] = ()
    """The frame's float column per feature (``_f0``, ...); empty for an array column of features."""

    @property
    def label_is_matrix(self) -> bool:
        return self.label_layout != "scalar"


def quoted(name: str) -> Column:
    """A column by its exact name (dots and spaces in it are not struct paths)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def numpy_dtype(data_type: DataType) -> str:
    return _NUMPY_NAMES.get(type(data_type).__name__, "object")


def _is_number(data_type: DataType) -> bool:
    # DecimalType is left out as a local read leaves it out: pandas reads decimals as objects.
    return type(data_type).__name__ in _NUMPY_NAMES


def select_columns(columns: Sequence[str], patterns: Sequence[str], path: str) -> list[str]:
    """The columns that the patterns name (exact names or globs), in pattern order."""
    chosen: list[str] = []
    for pattern in patterns:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise BadInputError(
                f"data {path}: no column matches {pattern!r}; columns are {list(columns)[:20]}"
            )
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def read_eval_data(spark: SparkSession, path: str, label_columns: Sequence[str]) -> EvalData:
    """Read ``path`` (Parquet; a glob or a folder too) into the audit frame.

    Raises
    ------
    BadInputError
        No label column named, no file, no feature column, non-numeric features or ragged feature
        arrays (one line each). Non-finite features are found by the first aggregate
        (:func:`lossaudit.spark.labels.summarise`).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType

    if not label_columns:
        raise BadInputError(f"data {path}: name the label column(s) with --label-column")
    try:
        raw = spark.read.parquet(path)
        fields = list(raw.schema.fields)
    except Exception as exc:  # AnalysisException (PATH_NOT_FOUND), a file that is not Parquet
        raise BadInputError(f"data {path} cannot be read as Parquet: {_first_line(exc)}") from None
    names = [f.name for f in fields]
    types = {f.name: f.dataType for f in fields}
    labels = select_columns(names, label_columns, path)
    features = [n for n in names if n not in labels]
    if not features:
        raise BadInputError(f"data {path}: no feature columns besides the label column(s) {labels}")

    if len(features) == 1 and isinstance(types[features[0]], ArrayType):
        element = types[features[0]].elementType  # type: ignore[attr-defined]  # narrowed above
        if not _is_number(element):
            raise BadInputError(f"data {path}: feature array column {features[0]!r} is not numeric")
        features_col = quoted(features[0]).cast("array<float>")
        feature_layout = "array"
    else:
        non_numeric = [c for c in features if not _is_number(types[c])]
        if non_numeric:
            raise BadInputError(f"data {path}: feature column(s) {non_numeric[:5]} are not numeric")
        features_col = F.array(*[quoted(c).cast("float") for c in features])
        feature_layout = "columns"
    inputs = (
        tuple(f"{FEATURE_PREFIX}{i}" for i in range(len(features))) if feature_layout == "columns" else ()
    )

    label_numeric = True
    if len(labels) == 1 and isinstance(types[labels[0]], ArrayType):
        element = types[labels[0]].elementType  # type: ignore[attr-defined]  # narrowed above
        label_col = quoted(labels[0])
        label_layout, label_dtype, label_numeric = "array", numpy_dtype(element), _is_number(element)
    elif len(labels) == 1:
        label_col = quoted(labels[0])
        label_layout, label_dtype = "scalar", numpy_dtype(types[labels[0]])
        label_numeric = _is_number(types[labels[0]])
    else:
        kinds = {numpy_dtype(types[c]) for c in labels}
        label_numeric = all(_is_number(types[c]) for c in labels)
        # Text in a label column: the values as text, for the detector to name (as a local read).
        label_col = F.array(*[quoted(c) if label_numeric else quoted(c).cast("string") for c in labels])
        label_layout = "columns"
        label_dtype = kinds.pop() if len(kinds) == 1 else "float64"
    per_column = [quoted(c).cast("float").alias(name) for c, name in zip(features, inputs, strict=False)]
    frame = raw.select(features_col.alias(FEATURES), label_col.alias(LABEL), *per_column)
    try:
        partitions = frame.rdd.getNumPartitions()
    except Exception as exc:  # listing the files failed
        raise BadInputError(f"data {path} cannot be read as Parquet: {_first_line(exc)}") from None
    return EvalData(
        frame=frame,
        path=path,
        feature_columns=tuple(features),
        feature_layout=feature_layout,
        label_columns=tuple(labels),
        label_layout=label_layout,
        label_dtype=label_dtype,
        label_numeric=label_numeric,
        partitions=partitions,
        inputs=inputs,
    )


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
