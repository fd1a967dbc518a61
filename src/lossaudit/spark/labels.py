"""Label evidence and data checks as Spark aggregates: the labels are counted where they are, never
collected.

One aggregate over the frame counts rows, NaN and infinite labels, label widths and non-finite
features. Then the distinct labels (one value per row, or whole rows of (n, K) labels) are grouped
and counted; while there are at most :data:`DISTINCT_BOUND` of them they are collected with their
counts and handed to the core's detector (:func:`lossaudit.core.labels.detect_labels`), which names
the encoding exactly as it does for local data; the class counts come from the group counts.
Beyond the bound (ids as labels, soft labels), the encoding is named from element aggregates
(:func:`lossaudit.core.labels.evidence_from_aggregates`).

The data checks mirror the Great Expectations suite that :mod:`lossaudit.validation.gx` generates
from the head (same names, same pass or fail), computed as one more aggregate: Great Expectations
itself runs on local data only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lossaudit.core.findings import DataCheck
from lossaudit.core.head import MAX_UNITS, HeadSpec, LossKind
from lossaudit.core.labels import (
    SOFT_ROW_TOLERANCE,
    LabelEncoding,
    LabelEvidence,
    detect_labels,
    evidence_from_aggregates,
)
from lossaudit.errors import BadInputError
from lossaudit.spark.data import FEATURES, LABEL, EvalData

if TYPE_CHECKING:
    import numpy as np
    from pyspark.sql import DataFrame

DISTINCT_BOUND = 100_001
"""Distinct labels collected with their counts (more than any head's units: beyond it, one label
per row cannot be class indices)."""
DISTINCT_CELLS = 4_000_000
"""Distinct (n, K) label rows are collected up to this many values (rows x K)."""
_SMALLEST = 12
_PER_COLUMN_LIMIT = 20
"""As :data:`lossaudit.validation.gx.PER_COLUMN_LIMIT`: wider groups get one row-wise check."""


@dataclass(frozen=True)
class LabelFacts:
    """What the first aggregates measured: rows, label layout, and the distinct labels (or, beyond
    the bound, their aggregates)."""

    n_rows: int
    width: int | None
    """None for one label per row, else K (the label array's or the label columns' count)."""
    dtype: str
    feature_count: int
    fingerprint: str
    nan_rows: int = 0
    inf_rows: int = 0
    ragged: bool = False
    distinct: np.ndarray | None = None
    """Distinct labels, (m,) or (m, K), when at most the bound; with :attr:`distinct_counts`."""
    distinct_counts: np.ndarray | None = None
    aggregates: dict[str, Any] = field(default_factory=dict)
    """Beyond the bound: the keyword arguments of ``evidence_from_aggregates`` but ``units``."""
    strings: tuple[Any, ...] = ()
    """A few values of a label column that is not numeric (the detector names what they are)."""

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_rows,) if self.width is None else (self.n_rows, self.width)

    def evidence(self, units: int | None) -> LabelEvidence:
        """What the labels are against a head of ``units`` (None: as the labels imply)."""
        import numpy as np

        shape = self.shape
        if self.strings:
            seen = detect_labels(np.asarray(self.strings, dtype=object), units=units)
            return replace(seen, shape=shape, n_samples=self.n_rows)
        if self.ragged:
            return replace(
                detect_labels([[0.0], [0.0, 1.0]], units=units),
                shape=(self.n_rows,),
                n_samples=self.n_rows,
            )
        if self.n_rows == 0 or self.nan_rows or self.inf_rows or self.distinct is None:
            return evidence_from_aggregates(
                shape=shape,
                dtype=self.dtype,
                units=units,
                nan_rows=self.nan_rows,
                inf_rows=self.inf_rows,
                **self.aggregates,
            )
        assert self.distinct_counts is not None
        seen = detect_labels(self.distinct, units=units)
        found = replace(seen, shape=shape, n_samples=self.n_rows, details=dict(seen.details))
        if not seen.is_valid:
            return found
        counts = self.distinct_counts.astype(np.int64)
        k = seen.n_classes
        details: dict[str, Any] = {}
        if self.width is None or seen.encoding in (LabelEncoding.INDEX, LabelEncoding.BINARY):
            per_class = np.bincount(self.distinct.reshape(-1).astype(np.int64), weights=counts, minlength=k)
        elif seen.encoding is LabelEncoding.SOFT:
            per_class = np.bincount(self.distinct.argmax(axis=1), weights=counts, minlength=k)
        else:
            per_class = (self.distinct.astype(np.int64) * counts[:, None]).sum(axis=0)
            if seen.encoding is LabelEncoding.MULTI_HOT:
                sums = self.distinct.sum(axis=1, dtype=np.float64).astype(np.int64)
                details = {
                    "rows_with_no_label": int(counts[sums == 0].sum()),
                    "rows_with_several_labels": int(counts[sums > 1].sum()),
                    "max_labels_per_row": int(sums.max()),
                }
        class_counts = tuple(int(c) for c in per_class[:k])
        return replace(
            found,
            class_counts=class_counts,
            classes_absent=tuple(i for i, c in enumerate(class_counts) if c == 0),
            details=details,
        )


def _sql_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def summarise(data: EvalData) -> LabelFacts:
    """Count the rows and measure the labels (two or three Spark jobs; labels never collected).

    Raises
    ------
    BadInputError
        Features that hold NaN, an infinity or a null, or feature arrays of different lengths.
    """
    from pyspark.sql import functions as F

    frame = data.frame
    f, y = _sql_name(FEATURES), _sql_name(LABEL)
    bad_feature = f"({f} IS NULL OR exists({f}, v -> v IS NULL OR isnan(v) OR abs(v) = double('Infinity')))"
    aggs = [
        F.count(F.lit(1)).alias("n"),
        F.sum(F.expr(f"CAST({bad_feature} AS INT)")).alias("bad_features"),
        F.min(F.size(FEATURES)).alias("f_min"),
        F.max(F.size(FEATURES)).alias("f_max"),
        # Order-independent: the sums of each row hash's high and low 32 bits (exact in a long).
        F.sum(F.expr(f"shiftright(xxhash64({f}, {y}), 32)")).alias("hash_high"),
        F.sum(F.expr(f"xxhash64({f}, {y}) & 4294967295")).alias("hash_low"),
    ]
    if data.label_numeric and data.label_is_matrix:
        aggs += [
            F.sum(F.expr(f"CAST(({y} IS NULL OR exists({y}, v -> v IS NULL OR isnan(v))) AS INT)")).alias(
                "nan"
            ),
            F.sum(F.expr(f"CAST(exists({y}, v -> abs(v) = double('Infinity')) AS INT)")).alias("inf"),
            F.min(F.size(LABEL)).alias("w_min"),
            F.max(F.size(LABEL)).alias("w_max"),
        ]
    elif data.label_numeric:
        aggs += [
            F.sum(F.expr(f"CAST(({y} IS NULL OR isnan({y})) AS INT)")).alias("nan"),
            F.sum(F.expr(f"CAST(abs({y}) = double('Infinity') AS INT)")).alias("inf"),
        ]
    row = frame.agg(*aggs).collect()[0].asDict()
    n = int(row["n"])
    if n and int(row["bad_features"] or 0):
        raise BadInputError(f"data {data.path}: features contain NaN or infinite values")
    f_min, f_max = int(row["f_min"] or 0), int(row["f_max"] or 0)
    if f_min != f_max:
        raise BadInputError(
            f"data {data.path}: feature arrays have different lengths ({f_min} to {f_max}); "
            "every row needs the same features"
        )
    fingerprint = f"xxhash64-sums:{int(row['hash_high'] or 0):x}:{int(row['hash_low'] or 0):x}"
    base: dict[str, Any] = {"n_rows": n, "dtype": data.label_dtype, "feature_count": f_max}
    base["fingerprint"] = fingerprint
    if not data.label_numeric:
        values = tuple(r[0] for r in frame.select(LABEL).limit(_SMALLEST).collect())
        return LabelFacts(width=None, strings=values or ("?",), **base)
    width: int | None = None
    if data.label_is_matrix:
        w_min, w_max = int(row["w_min"] or 0), int(row["w_max"] or 0)
        if w_min != w_max and n:
            return LabelFacts(width=None, ragged=True, **base)
        width = w_max
    nan_rows, inf_rows = int(row.get("nan") or 0), int(row.get("inf") or 0)
    if n == 0 or nan_rows or inf_rows or width == 0:
        return LabelFacts(width=width, nan_rows=nan_rows, inf_rows=inf_rows, **base)
    return _distinct(frame, width, base)


def _distinct(frame: DataFrame, width: int | None, base: dict[str, Any]) -> LabelFacts:
    """The distinct labels with their counts, or their aggregates beyond the bound."""
    import numpy as np

    bound = DISTINCT_BOUND if width is None else min(DISTINCT_BOUND, max(1000, DISTINCT_CELLS // width))
    groups = frame.groupBy(LABEL).count()
    rows = groups.limit(bound + 1).collect()
    if len(rows) <= bound:
        dtype = _numpy_type(base["dtype"])
        values = [r[0] for r in rows]
        distinct = np.asarray(values, dtype=dtype)
        if width is not None:
            distinct = distinct.reshape(len(values), width)
        counts = np.asarray([r[1] for r in rows], dtype=np.int64)
        return LabelFacts(width=width, distinct=distinct, distinct_counts=counts, **base)
    return LabelFacts(width=width, aggregates=_beyond(frame, width, groups), **base)


def _numpy_type(dtype: str) -> Any:
    import numpy as np

    return np.dtype(dtype) if dtype != "object" else np.float64


def _beyond(frame: DataFrame, width: int | None, groups: DataFrame) -> dict[str, Any]:
    """Aggregates that name the encoding when the distinct labels are too many to collect."""
    from pyspark.sql import functions as F

    y = _sql_name(LABEL)
    if width is None:
        values = frame.select(F.col(LABEL).cast("double").alias("v"))
        row = values.agg(
            F.max("v").alias("max"),
            F.sum(F.expr("CAST(v <> floor(v) AS INT)")).alias("fractional"),
        ).collect()[0]
        smallest = tuple(
            float(r[0])
            for r in groups.select(F.col(LABEL).cast("double")).orderBy(LABEL).limit(_SMALLEST).collect()
        )
        maximum = float(row["max"])
        all_integers = int(row["fractional"] or 0) == 0
        found: dict[str, Any] = {
            "smallest": smallest,
            "n_distinct": int(groups.count()),
            "maximum": maximum,
            "all_integers": all_integers,
        }
        if all_integers and smallest and smallest[0] >= 0 and maximum < MAX_UNITS:
            # Class indices after all (a bound set below the head's largest K): count them.
            counts = [0] * (int(maximum) + 1)
            for value, count in groups.collect():
                counts[int(value)] += int(count)
            found["class_counts"] = tuple(counts)
        return found
    elements = frame.select(F.explode(F.col(LABEL).cast("array<double>")).alias("v"))
    element_values = elements.groupBy("v").count()
    smallest = tuple(float(r[0]) for r in element_values.orderBy("v").limit(_SMALLEST).collect())
    row_sum = f"aggregate(CAST({y} AS ARRAY<DOUBLE>), 0D, (a, v) -> a + v)"
    argmax = f"array_position({y}, array_max({y})) - 1"
    stats = frame.agg(
        F.max(F.expr(f"array_max(CAST({y} AS ARRAY<DOUBLE>))")).alias("max"),
        F.sum(F.expr(f"CAST(abs({row_sum} - 1D) > 1e-8 + 1e-5 AS INT)")).alias("not_one"),
        F.max(F.expr(f"abs({row_sum} - 1D)")).alias("worst"),
        F.sum(F.expr(f"CAST({row_sum} = 0D AS INT)")).alias("no_label"),
        F.sum(F.expr(f"CAST({row_sum} > 1D AS INT)")).alias("several"),
        F.max(F.expr(f"CAST({row_sum} AS BIGINT)")).alias("most"),
        *[F.sum(F.expr(f"CAST({y}[{i}] AS BIGINT)")).alias(f"c{i}") for i in range(width)],
    ).collect()[0]
    soft: dict[int, int] = dict(
        frame.groupBy(F.expr(argmax).alias("k")).count().collect()  # at most K groups
    )
    assert width is not None
    return {
        "smallest": smallest,
        "n_distinct": int(element_values.count()),
        "maximum": float(stats["max"]),
        "class_counts": tuple(int(stats[f"c{i}"] or 0) for i in range(width)),
        "soft_counts": tuple(int(soft.get(i, 0)) for i in range(width)),
        "rows_not_one": int(stats["not_one"] or 0),
        "worst_row_offset": float(stats["worst"] or 0.0),
        "multi_hot": {
            "rows_with_no_label": int(stats["no_label"] or 0),
            "rows_with_several_labels": int(stats["several"] or 0),
            "max_labels_per_row": int(stats["most"] or 0),
        },
    }


# -- the data checks ----------------------------------------------------------------------------


def expected_encoding(facts: LabelFacts, head: HeadSpec) -> LabelEncoding:
    """The encoding the head expects of labels laid out as these are (as
    :func:`lossaudit.validation.gx.expected_label_encoding` decides it)."""
    sparse_loss = head.loss is not None and head.loss.kind is LossKind.SPARSE_CE
    if (facts.width or 1) == 1 or sparse_loss:
        return LabelEncoding.BINARY if head.units == 1 else LabelEncoding.INDEX
    bce_logits = (
        head.activation == "linear" and head.loss is not None and head.loss.kind is LossKind.BINARY_CE
    )
    if head.activation == "sigmoid" or bce_logits:
        return LabelEncoding.MULTI_HOT
    if facts.evidence(head.units).encoding is LabelEncoding.SOFT:
        return LabelEncoding.SOFT
    return LabelEncoding.ONE_HOT


def _span(columns: list[str]) -> str:
    return columns[0] if len(columns) == 1 else f"{columns[0]}..{columns[-1]}"


def _rows_text(count: int, total: int) -> str:
    percent = 100.0 * count / total if total else 0.0
    return f"{count} of {total} rows unexpected ({percent:.3g}%)"


def data_checks(data: EvalData, facts: LabelFacts, head: HeadSpec) -> tuple[DataCheck, ...]:
    """The checks of the Great Expectations suite generated from ``head``, as one Spark aggregate:
    the label columns the head expects, labels never null and in range (0/1 or [0, 1] per column,
    one-hot and soft rows summing to 1), features never null and finite, no other columns."""
    from pyspark.sql import functions as F

    encoding = expected_encoding(facts, head)
    width = facts.width or 1
    actual = ["label"] if width == 1 else [f"label_{i}" for i in range(width)]
    sparse = encoding in (LabelEncoding.INDEX, LabelEncoding.BINARY)
    expected = ["label"] if sparse else [f"label_{k}" for k in range(head.units)]
    present = [c for c in expected if c in actual]
    n = facts.n_rows
    y = _sql_name(LABEL)
    checks: list[tuple[str, str | None, str, str]] = []  # name, column, counted expression, detail kind
    if len(expected) == 1:
        exists = "label" in actual
        head_checks = [
            DataCheck(
                "column label exists", exists, "label", "error", "" if exists else "column label is missing"
            )
        ]
    else:
        missing = [c for c in expected if c not in actual]
        head_checks = [
            DataCheck(
                f"label columns {_span(expected)} are all present",
                not missing,
                None,
                "error",
                "missing columns: " + ", ".join(missing) if missing else "",
            )
        ]
    soft = encoding is LabelEncoding.SOFT
    if present and sparse:
        k = 2 if encoding is LabelEncoding.BINARY and head.units == 1 else head.units
        what = "0 or 1" if k == 2 and head.units == 1 else f"class indices in range({k})"
        v = f"CAST({y} AS DOUBLE)" if facts.width is None else f"CAST({y}[0] AS DOUBLE)"
        checks.append(("label is never null", "label", f"({v} IS NULL OR isnan({v}))", "rows"))
        checks.append(
            (
                f"label values are {what}",
                "label",
                f"({v} IS NOT NULL AND NOT isnan({v}) AND NOT ({v} >= 0 AND {v} < {k} AND {v} = floor({v})))",
                "rows",
            )
        )
    elif present:
        cells = [f"CAST({y}[{int(c.rsplit('_', 1)[1])}] AS DOUBLE)" for c in present]
        null = [f"({v} IS NULL OR isnan({v}))" for v in cells]
        if soft:
            wrong = [f"({v} IS NOT NULL AND NOT isnan({v}) AND ({v} < 0 OR {v} > 1))" for v in cells]
        else:
            wrong = [f"({v} IS NOT NULL AND NOT isnan({v}) AND {v} NOT IN (0D, 1D))" for v in cells]
        if len(present) <= _PER_COLUMN_LIMIT:
            for column, is_null, is_wrong in zip(present, null, wrong, strict=True):
                checks.append((f"{column} is never null", column, is_null, "rows"))
                rule = f"{column} values lie in [0, 1]" if soft else f"{column} values are 0 or 1"
                checks.append((rule, column, is_wrong, "rows"))
        else:
            what = "in [0, 1]" if soft else "0 or 1"
            any_bad = " OR ".join(f"({a} OR {b})" for a, b in zip(null, wrong, strict=True))
            checks.append(
                (
                    f"every label value of {_span(present)} is {what} (not null)",
                    "all_label_values_valid",
                    any_bad,
                    "rows",
                )
            )
        total = " + ".join(cells)
        if encoding is LabelEncoding.ONE_HOT:
            checks.append(
                (
                    f"one-hot rows of {_span(present)} sum to 1",
                    None,
                    f"(coalesce({total}, 0D) <> 1D OR ({total}) IS NULL)",
                    "rows",
                )
            )
        elif soft:
            checks.append(
                (
                    f"soft label rows of {_span(present)} sum to 1 (within {SOFT_ROW_TOLERANCE:g})",
                    "label_row_sum",
                    f"(({total}) IS NOT NULL AND abs(({total}) - 1D) > {SOFT_ROW_TOLERANCE})",
                    "rows",
                )
            )
    counted: list[int] = []
    if checks:
        row = data.frame.agg(
            *[
                F.sum(F.expr(f"CAST({expr} AS INT)")).alias(f"c{i}")
                for i, (_, _, expr, _) in enumerate(checks)
            ]
        ).collect()[0]
        counted = [int(row[f"c{i}"] or 0) for i in range(len(checks))]
    label_checks = [
        DataCheck(name, count == 0, column, "error", "" if count == 0 else _rows_text(count, n))
        for (name, column, _, _), count in zip(checks, counted, strict=True)
    ]
    d = facts.feature_count
    names = [f"x_{j}" for j in range(d)]
    if d <= _PER_COLUMN_LIMIT:
        feature_checks = []
        for name in names:
            feature_checks.append(DataCheck(f"feature {name} is never null or NaN", True, name, "error"))
            feature_checks.append(DataCheck(f"feature {name} is finite (no +-inf)", True, name, "error"))
    else:
        feature_checks = [
            DataCheck(
                f"every feature of {_span(names)} is non-null and finite",
                True,
                "all_features_finite",
                "error",
            )
        ]
    missing = [c for c in expected if c not in actual]
    unexpected = [c for c in actual if c not in expected]
    parts = []
    if missing:
        parts.append("missing columns: " + ", ".join(missing))
    if unexpected:
        parts.append("unexpected columns: " + ", ".join(unexpected))
    extra = DataCheck(
        "no columns besides the expected label and feature columns",
        not parts,
        None,
        "warning",
        "; ".join(parts),
    )
    return (*head_checks, *label_checks, *feature_checks, extra)
