"""Great Expectations 1.x adapter: validate labels and features with a suite generated from the head.

The head spec says what the labels must be (index labels in ``range(K)``, 0/1 binary labels, one-hot
rows summing to 1, multi-hot 0/1 columns); this module writes that down as a GX expectation suite,
runs it on the eval data in an ephemeral (in-memory) GX context, and turns each expectation's
outcome into a :class:`~lossaudit.core.findings.DataCheck`. Rule LA601 turns failed checks into
findings; the raw GX result and the generated suite are kept for the ``gx_result.json`` artifact,
and GX's Data Docs HTML site is built when a folder is given.

GX stays behind this module: it is imported inside :func:`validate_with_gx` only (the import takes
3.5-4 s), with its progress bars off, analytics off and its loggers held at ERROR.

Facts relied on, read from great_expectations 1.24 source:

* ``get_context(mode="ephemeral", project_config=DataContextConfig(...))`` builds an in-memory
  context; ``InMemoryStoreBackendDefaults(init_temp_docs_sites=False)`` leaves out the temporary
  Data Docs site, and a ``SiteBuilder`` site with a ``TupleFilesystemStoreBackend`` writes the HTML
  to a local folder when ``build_data_docs()`` runs (``ValidationDefinition.run`` stores its result
  in the in-memory validation results store the site builder reads).
* ``ExpectColumnValuesToBeInSet`` and ``ExpectColumnValuesToBeBetween`` count nulls (NaN included)
  as missing, not unexpected: every value check is paired with ``ExpectColumnValuesToNotBeNull``.
  ``ExpectColumnValuesToBeBetween(min=-max_float, max=max_float)`` flags +-inf.
* ``ExpectMulticolumnSumToEqual`` compares row sums exactly (``sum(axis=1, skipna=False) == 1``).
* ``suite.add_expectation`` on a stored suite re-saves it each time (~25 ms per expectation):
  the suite is built whole, then added once.
* Each expectation costs ~10 ms per run on pandas whatever the row count, so a wide feature matrix
  (64 pixel columns: 130 expectations, ~1.2 s) is checked through one derived row-wise column.
  For a numpy array that column is computed from the array a block of rows at a time, in its own
  dtype (a memory-mapped array stays on disk): the frame GX validates holds the labels and that
  one column, never a column per feature.
* 1.24 has no analytics client; 1.x releases before it read ``GX_ANALYTICS_ENABLED`` at import.

Why one module of about 870 lines: it is the only module that imports Great Expectations, and
the facts above tie its parts (planning the suite, the ephemeral context, reading the result) to
one GX release; a split would spread that dependency over several files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.core.findings import DataCheck
from lossaudit.core.head import HeadSpec, LossKind
from lossaudit.core.labels import SOFT_ROW_TOLERANCE, LabelEncoding
from lossaudit.errors import BadInputError
from lossaudit.quiet import hide_pyspark_import_warnings

if TYPE_CHECKING:
    from types import ModuleType

    import numpy as np
    import pandas as pd

PER_COLUMN_LIMIT = 20
"""Up to this many feature (or dense label) columns get one expectation pair each; wider groups are
checked through one derived row-wise column (per-column expectations cost ~10 ms each)."""

LABEL_COLUMN = "label"
"""The column of index or binary labels; one-hot and multi-hot columns are ``label_0 .. label_{K-1}``."""

FEATURES_OK_COLUMN = "all_features_finite"
LABELS_OK_COLUMN = "all_label_values_valid"
LABEL_ROW_SUM_COLUMN = "label_row_sum"
_DERIVED_COLUMNS = (FEATURES_OK_COLUMN, LABELS_OK_COLUMN, LABEL_ROW_SUM_COLUMN)

_META_KEY = "lossaudit_check"
_SEVERITY_TO_CHECK = {"critical": "error", "warning": "warning", "info": "info"}
"""GX ``FailureSeverity`` value -> ``DataCheck.severity``."""
_EXAMPLES_SHOWN = 5
_GX_LOGGER = "great_expectations"


@dataclass(frozen=True)
class GxValidation:
    """What one GX validation run found.

    ``checks`` holds one :class:`DataCheck` per expectation, in suite order; ``result_json`` is the
    validation result's ``to_json_dict()`` (non-finite floats written as strings so it stays valid
    JSON); ``data_docs_dir`` is the folder holding the Data Docs ``index.html`` when one was built.
    """

    success: bool
    checks: tuple[DataCheck, ...]
    result_json: dict[str, Any] = field(repr=False)
    data_docs_dir: Path | None
    suite_json: dict[str, Any] = field(repr=False)
    seconds: float

    @property
    def failed(self) -> tuple[DataCheck, ...]:
        return tuple(c for c in self.checks if not c.success)


@dataclass(frozen=True)
class _Planned:
    """One expectation to generate, before GX is imported: GX class name, its kwargs, and ours."""

    gx_class: str
    kwargs: Mapping[str, Any]
    name: str
    column: str | None = None
    severity: str = "critical"
    notes: str | None = None
    extra_detail: str = ""
    """Appended to the detail when the expectation fails (e.g. which columns a row check saw fail)."""


@dataclass(frozen=True)
class _Plan:
    frame: pd.DataFrame
    expectations: tuple[_Planned, ...]
    encoding: LabelEncoding
    n_classes: int


def validate_with_gx(
    y: Any,
    head: HeadSpec,
    x: Any = None,
    *,
    feature_columns: Sequence[str] | None = None,
    expected_columns: Sequence[str] | None = None,
    docs_dir: Path | None = None,
    finite_rows: np.ndarray | None = None,
) -> GxValidation:
    """Validate labels (and features) against expectations generated from the head spec.

    Parameters
    ----------
    y : array-like of shape (n_samples,), (n_samples, 1) or (n_samples, n_columns)
        The labels. One column: index labels (checked against ``range(head.units)``), or 0/1 labels
        for a 1-unit head. Several columns: one-hot (softmax or categorical heads: each column in
        {0, 1}, rows sum to 1), multi-hot (sigmoid heads, or logits with binary cross-entropy: each
        column in {0, 1}) or, when the data are soft labels for a single-label head, each column in
        [0, 1] with rows summing to 1 within ``SOFT_ROW_TOLERANCE``. A sparse loss expects the
        one-column layout.
    head : HeadSpec
        Units, activation and loss decide the expected encoding and K.
    x : array-like of shape (n_samples, ...) or pandas.DataFrame, optional
        Features: every feature must be non-null, and every float feature finite. Arrays of rank > 2
        (images) are flattened per sample. A numeric array wider than :data:`PER_COLUMN_LIMIT`
        columns (without ``expected_columns``) is read block by block into the one derived column,
        not laid out as a frame.
    feature_columns : sequence of str, optional
        For an array ``x``, the names of its columns (default ``x_0 .. x_{d-1}``). For a DataFrame,
        the columns to check (default all); a named column the DataFrame lacks fails a check.
    expected_columns : sequence of str, optional
        Feature columns that must exist; with them, any other column (besides the labels) fails a
        warning-level check.
    docs_dir : Path, optional
        Build GX's Data Docs HTML site in this folder.
    finite_rows : array of bool, shape (n_samples,), optional
        For a wide numeric array ``x``: whether each row's features are all finite, already
        computed by the caller (:func:`lossaudit.sources.files.finite_feature_rows`), so x is not
        read again; NaN and infinity are told apart only in the rows it flags.

    Returns
    -------
    GxValidation

    Raises
    ------
    BadInputError
        Labels or features that cannot be laid out as a table (ragged, rank > 2 labels, empty,
        row counts that differ, a feature column named like a label column).
    """
    started = time.perf_counter()
    plan = _plan(
        y,
        head,
        x,
        feature_columns=feature_columns,
        expected_columns=expected_columns,
        finite_rows=finite_rows,
    )
    suite_name = f"lossaudit_{plan.encoding.value}_labels_k{plan.n_classes}"
    with _quiet_gx() as gx:
        result, suite_json, built_docs = _run(gx, plan, suite_name, docs_dir)
    result_json = _json_safe(result.to_json_dict())
    checks = _checks_from_result(result_json, plan.expectations)
    return GxValidation(
        success=bool(result.success),
        checks=checks,
        result_json=result_json,
        data_docs_dir=built_docs,
        suite_json=_json_safe(suite_json),
        seconds=time.perf_counter() - started,
    )


# -- the plan: which expectations, on which table ------------------------------------------------


def expected_label_encoding(labels: np.ndarray, head: HeadSpec) -> LabelEncoding:
    """The label encoding the head expects, given the layout of ``labels`` (2-D, one row a sample).

    One column, or a sparse loss -> index labels (binary for a 1-unit head). Several columns -> the
    head decides: multi-hot for sigmoid outputs or logits trained with binary cross-entropy, else
    one-hot; soft labels (rows that are distributions) keep their soft suite.
    """
    from lossaudit.core.labels import detect_labels

    sparse_loss = head.loss is not None and head.loss.kind is LossKind.SPARSE_CE
    if labels.shape[1] == 1 or sparse_loss:
        return LabelEncoding.BINARY if head.units == 1 else LabelEncoding.INDEX
    bce_logits = (
        head.activation == "linear" and head.loss is not None and head.loss.kind is LossKind.BINARY_CE
    )
    if head.activation == "sigmoid" or bce_logits:
        return LabelEncoding.MULTI_HOT
    if detect_labels(labels, units=head.units).encoding is LabelEncoding.SOFT:
        return LabelEncoding.SOFT
    return LabelEncoding.ONE_HOT


def _plan(
    y: Any,
    head: HeadSpec,
    x: Any,
    *,
    feature_columns: Sequence[str] | None,
    expected_columns: Sequence[str] | None,
    finite_rows: np.ndarray | None = None,
) -> _Plan:
    import pandas as pd

    labels = _label_matrix(y)
    n_rows = labels.shape[0]
    encoding = expected_label_encoding(labels, head)
    if labels.shape[1] == 1:
        actual_label_columns = [LABEL_COLUMN]
    else:
        actual_label_columns = [f"{LABEL_COLUMN}_{k}" for k in range(labels.shape[1])]
    frame = pd.DataFrame(labels, columns=pd.Index(actual_label_columns))

    streamed = _feature_rows(x, n_rows, feature_columns, finite_rows) if expected_columns is None else None
    checked_features: list[str]
    if streamed is not None:  # wide features: one derived column, never a frame of every feature
        features, checked_features = pd.DataFrame(index=pd.RangeIndex(n_rows)), []
        feature_names = list(streamed.names)
    else:
        features, checked_features = _feature_frame(x, n_rows, feature_columns)
        feature_names = list(features.columns)
    clash = sorted(set(feature_names) & ({LABEL_COLUMN, *actual_label_columns, *_DERIVED_COLUMNS}))
    if clash:
        raise BadInputError(
            f"feature column(s) {', '.join(clash)} clash with the names lossaudit gives label columns"
        )
    if len(features.columns):
        frame = pd.concat([frame, features], axis=1)

    planned: list[_Planned] = []
    expected_labels = _expected_label_columns(encoding, head)
    if len(expected_labels) == 1:
        planned.append(
            _Planned("ExpectColumnToExist", {"column": LABEL_COLUMN}, "column label exists", LABEL_COLUMN)
        )
    else:  # one table-level check for K label columns rather than K existence checks (~10 ms each)
        planned.append(
            _Planned(
                "ExpectTableColumnsToMatchSet",
                {"column_set": expected_labels, "exact_match": False},
                f"label columns {_span(expected_labels)} are all present",
            )
        )
    present_labels = [c for c in expected_labels if c in frame.columns]
    frame, label_checks = _label_expectations(frame, encoding, head, present_labels)
    planned += label_checks

    must_exist = [*(expected_columns or ()), *(c for c in checked_features if c not in features.columns)]
    for column in dict.fromkeys(must_exist):
        if column not in expected_labels:
            planned.append(
                _Planned("ExpectColumnToExist", {"column": column}, f"column {column} exists", column)
            )
    if streamed is not None:
        frame, feature_checks = _streamed_feature_expectation(frame, streamed)
    else:
        frame, feature_checks = _feature_expectations(
            frame, [c for c in checked_features if c in features.columns]
        )
    planned += feature_checks

    # The full column set: extra label columns (more than K) or, when expected columns were given,
    # extra feature columns. Missing columns already fail the critical existence checks above.
    feature_set = list(expected_columns) if expected_columns is not None else list(features.columns)
    derived = [c for c in _DERIVED_COLUMNS if c in frame.columns]
    column_set = list(dict.fromkeys([*expected_labels, *feature_set, *derived]))
    planned.append(
        _Planned(
            "ExpectTableColumnsToMatchSet",
            {"column_set": column_set, "exact_match": True},
            "no columns besides the expected label and feature columns",
            severity="warning",
        )
    )
    return _Plan(frame, tuple(planned), encoding, 2 if head.units == 1 else head.units)


def _label_matrix(y: Any) -> np.ndarray:
    import numpy as np

    if y is None:
        raise BadInputError("labels: none given")
    try:
        with np.errstate(all="ignore"):
            arr = np.asarray(y)
    except ValueError as exc:
        raise BadInputError(f"labels are ragged: {exc}") from None
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int8)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise BadInputError(
            f"labels have rank {arr.ndim} (shape {arr.shape}); expected (n,), (n, 1) or (n, K)"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise BadInputError(f"labels are empty (shape {arr.shape})")
    return arr


def _feature_frame(
    x: Any, n_rows: int, feature_columns: Sequence[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """The features as a DataFrame with string column names and a 0..n-1 index, and which to check."""
    import numpy as np
    import pandas as pd

    if x is None:
        return pd.DataFrame(index=pd.RangeIndex(n_rows)), list(feature_columns or ())
    if isinstance(x, pd.DataFrame):
        frame = x.reset_index(drop=True)
        frame.columns = pd.Index([str(c) for c in frame.columns])
        checked = [str(c) for c in feature_columns] if feature_columns is not None else list(frame.columns)
    else:
        try:
            with np.errstate(all="ignore"):
                arr = np.asarray(x)
        except ValueError as exc:
            raise BadInputError(f"features are ragged: {exc}") from None
        if arr.ndim == 0:
            raise BadInputError("features are a single scalar, not an array")
        arr = arr.reshape(arr.shape[0], -1) if arr.ndim != 1 else arr.reshape(-1, 1)
        if feature_columns is not None:
            names = [str(c) for c in feature_columns]
            if len(names) != arr.shape[1]:
                raise BadInputError(
                    f"{len(names)} feature column names for features with {arr.shape[1]} columns"
                )
        else:
            names = [f"x_{j}" for j in range(arr.shape[1])]
        frame = pd.DataFrame(arr, columns=pd.Index(names))
        checked = names
    if len(frame) != n_rows:
        raise BadInputError(f"features have {len(frame)} rows but labels have {n_rows}")
    if frame.columns.has_duplicates:
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise BadInputError(f"feature column names repeat: {', '.join(dupes)}")
    return frame, checked


@dataclass(frozen=True)
class _FeatureRows:
    """The per-row verdict on wide array features, read block by block outside any frame."""

    names: tuple[str, ...]
    row_ok: np.ndarray
    """True where every feature of the row is non-null and finite."""
    null_counts: np.ndarray
    """Rows with a NaN, per feature column."""
    inf_counts: np.ndarray | None
    """Rows with an infinity, per feature column; None for integer or boolean features."""


def _feature_rows(
    x: Any, n_rows: int, feature_columns: Sequence[str] | None, finite_rows: np.ndarray | None = None
) -> _FeatureRows | None:
    """For a numeric array of more than :data:`PER_COLUMN_LIMIT` columns per sample, what the
    derived ``all_features_finite`` column needs, computed a block of rows at a time in the array's
    own dtype (a memory-mapped array stays on disk); None for anything else (DataFrames, narrow or
    non-numeric arrays), which goes through :func:`_feature_frame` as before."""
    import math

    import numpy as np

    from lossaudit.core.chunks import row_blocks

    if x is None or not isinstance(x, np.ndarray) or x.ndim == 0 or x.dtype.kind not in "biufc":
        return None
    width = math.prod(x.shape[1:]) if x.ndim > 1 else 1
    if width <= PER_COLUMN_LIMIT:
        return None
    if len(x) != n_rows:
        raise BadInputError(f"features have {len(x)} rows but labels have {n_rows}")
    if feature_columns is not None:
        names = tuple(str(c) for c in feature_columns)
        if len(names) != width:
            raise BadInputError(f"{len(names)} feature column names for features with {width} columns")
        if len(set(names)) != len(names):
            dupes = sorted({c for c in names if names.count(c) > 1})
            raise BadInputError(f"feature column names repeat: {', '.join(dupes)}")
    else:
        names = tuple(f"x_{j}" for j in range(width))
    row_ok = np.ones(n_rows, dtype=bool)
    null_counts = np.zeros(width, dtype=np.int64)
    inexact = x.dtype.kind in "fc"
    inf_counts = np.zeros(width, dtype=np.int64) if inexact else None
    if inexact and finite_rows is not None:  # the caller's pass: x is read only where rows fail
        row_ok = np.asarray(finite_rows, dtype=bool).reshape(-1)
        if row_ok.shape != (n_rows,):
            raise BadInputError(f"{row_ok.size} feature row flags for {n_rows} rows")
        bad = np.flatnonzero(~row_ok)
        if bad.size:
            flat = np.asarray(x[bad]).reshape(bad.size, width)
            null_counts += np.isnan(flat).sum(axis=0)
            assert inf_counts is not None
            inf_counts += np.isinf(flat).sum(axis=0)
    elif inexact:
        for start, block in row_blocks(x):
            flat = block.reshape(len(block), width)
            ok = np.isfinite(flat).all(axis=1)
            row_ok[start : start + len(block)] = ok
            if not ok.all():  # only the rows that fail are split into NaN and infinity
                bad_rows = flat[~ok]
                null_counts += np.isnan(bad_rows).sum(axis=0)
                assert inf_counts is not None
                inf_counts += np.isinf(bad_rows).sum(axis=0)
    return _FeatureRows(names, row_ok, null_counts, inf_counts)


def _streamed_feature_expectation(
    frame: pd.DataFrame, rows: _FeatureRows
) -> tuple[pd.DataFrame, list[_Planned]]:
    """The derived check of :func:`_feature_expectations` on wide features, from :class:`_FeatureRows`."""
    columns = list(rows.names)
    breakdown = "; ".join(
        part
        for part in (
            _counts_breakdown(columns, rows.null_counts, "null/NaN"),
            "" if rows.inf_counts is None else _counts_breakdown(columns, rows.inf_counts, "inf"),
        )
        if part
    )
    check = _Planned(
        "ExpectColumnValuesToBeInSet",
        {"column": FEATURES_OK_COLUMN, "value_set": [True]},
        f"every feature of {_span(columns)} is non-null and finite",
        FEATURES_OK_COLUMN,
        notes=(
            f"Derived by lossaudit: True where all {len(columns)} feature columns of the row are "
            "non-null and finite (one row-wise check instead of one per column, for speed)."
        ),
        extra_detail=breakdown,
    )
    return frame.assign(**{FEATURES_OK_COLUMN: rows.row_ok}), [check]


def _expected_label_columns(encoding: LabelEncoding, head: HeadSpec) -> list[str]:
    if encoding in (LabelEncoding.INDEX, LabelEncoding.BINARY):
        return [LABEL_COLUMN]
    return [f"{LABEL_COLUMN}_{k}" for k in range(head.units)]


def _label_expectations(
    frame: pd.DataFrame, encoding: LabelEncoding, head: HeadSpec, columns: list[str]
) -> tuple[pd.DataFrame, list[_Planned]]:
    if not columns:
        return frame, []
    if encoding in (LabelEncoding.INDEX, LabelEncoding.BINARY):
        k = 2 if encoding is LabelEncoding.BINARY and head.units == 1 else head.units
        allowed = list(range(k))
        what = "0 or 1" if k == 2 and head.units == 1 else f"class indices in range({k})"
        return frame, [
            _Planned(
                "ExpectColumnValuesToNotBeNull", {"column": LABEL_COLUMN}, "label is never null", LABEL_COLUMN
            ),
            _Planned(
                "ExpectColumnValuesToBeInSet",
                {"column": LABEL_COLUMN, "value_set": allowed},
                f"label values are {what}",
                LABEL_COLUMN,
                notes="Set membership also requires whole numbers: 2.5 is not in the set.",
            ),
        ]
    soft = encoding is LabelEncoding.SOFT
    planned: list[_Planned] = []
    if len(columns) <= PER_COLUMN_LIMIT:
        for column in columns:
            planned.append(
                _Planned(
                    "ExpectColumnValuesToNotBeNull", {"column": column}, f"{column} is never null", column
                )
            )
            if soft:
                planned.append(
                    _Planned(
                        "ExpectColumnValuesToBeBetween",
                        {"column": column, "min_value": 0, "max_value": 1},
                        f"{column} values lie in [0, 1]",
                        column,
                    )
                )
            else:
                planned.append(
                    _Planned(
                        "ExpectColumnValuesToBeInSet",
                        {"column": column, "value_set": [0, 1]},
                        f"{column} values are 0 or 1",
                        column,
                    )
                )
    else:
        frame, check = _derived_label_check(frame, columns, soft)
        planned.append(check)
    if encoding is LabelEncoding.ONE_HOT:
        planned.append(
            _Planned(
                "ExpectMulticolumnSumToEqual",
                {"column_list": columns, "sum_total": 1},
                f"one-hot rows of {_span(columns)} sum to 1",
            )
        )
    elif soft:
        import numpy as np

        numeric = frame[columns].apply(_to_float)
        frame = frame.assign(**{LABEL_ROW_SUM_COLUMN: numeric.sum(axis=1, skipna=False).to_numpy(np.float64)})
        planned.append(
            _Planned(
                "ExpectColumnValuesToBeBetween",
                {
                    "column": LABEL_ROW_SUM_COLUMN,
                    "min_value": 1.0 - SOFT_ROW_TOLERANCE,
                    "max_value": 1.0 + SOFT_ROW_TOLERANCE,
                },
                f"soft label rows of {_span(columns)} sum to 1 (within {SOFT_ROW_TOLERANCE:g})",
                LABEL_ROW_SUM_COLUMN,
                notes=f"Derived by lossaudit: the row sum of {_span(columns)}.",
            )
        )
    return frame, planned


def _derived_label_check(
    frame: pd.DataFrame, columns: list[str], soft: bool
) -> tuple[pd.DataFrame, _Planned]:
    """One row-wise check for many label columns: every value 0/1 (or in [0, 1]) and not null."""
    block = frame[columns]
    if soft:
        numeric = block.apply(_to_float)
        bad = numeric.isna() | (numeric < 0) | (numeric > 1)
        what = "in [0, 1]"
    else:
        bad = ~block.isin([0, 1])
        what = "0 or 1"
    row_ok = ~bad.any(axis=1)
    check = _Planned(
        "ExpectColumnValuesToBeInSet",
        {"column": LABELS_OK_COLUMN, "value_set": [True]},
        f"every label value of {_span(columns)} is {what} (not null)",
        LABELS_OK_COLUMN,
        notes=f"Derived by lossaudit: True where all {len(columns)} label columns of the row are {what}.",
        extra_detail=_columns_breakdown(bad, "invalid"),
    )
    return frame.assign(**{LABELS_OK_COLUMN: row_ok.to_numpy()}), check


def _feature_expectations(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, list[_Planned]]:
    import numpy as np

    if not columns:
        return frame, []
    float_columns = [c for c in columns if frame[c].dtype.kind in "fc"]
    if len(columns) <= PER_COLUMN_LIMIT:
        largest = float(np.finfo(np.float64).max)
        planned: list[_Planned] = []
        for column in columns:
            planned.append(
                _Planned(
                    "ExpectColumnValuesToNotBeNull",
                    {"column": column},
                    f"feature {column} is never null or NaN",
                    column,
                )
            )
            if column in float_columns:
                planned.append(
                    _Planned(
                        "ExpectColumnValuesToBeBetween",
                        {"column": column, "min_value": -largest, "max_value": largest},
                        f"feature {column} is finite (no +-inf)",
                        column,
                    )
                )
        return frame, planned
    block = frame[columns]
    null = block.isna()
    inf = block[float_columns].apply(_is_inf)
    bad = null.copy()
    if float_columns:
        bad[float_columns] = bad[float_columns] | inf
    row_ok = ~bad.any(axis=1)
    breakdown = "; ".join(
        part
        for part in (
            _columns_breakdown(null, "null/NaN"),
            _columns_breakdown(inf, "inf") if float_columns else "",
        )
        if part
    )
    check = _Planned(
        "ExpectColumnValuesToBeInSet",
        {"column": FEATURES_OK_COLUMN, "value_set": [True]},
        f"every feature of {_span(columns)} is non-null and finite",
        FEATURES_OK_COLUMN,
        notes=(
            f"Derived by lossaudit: True where all {len(columns)} feature columns of the row are "
            "non-null and finite (one row-wise check instead of one per column, for speed)."
        ),
        extra_detail=breakdown,
    )
    return frame.assign(**{FEATURES_OK_COLUMN: row_ok.to_numpy()}), [check]


def _is_inf(series: pd.Series[Any]) -> pd.Series[bool]:
    import numpy as np
    import pandas as pd

    # Nullable Float64 columns hold pd.NA: read them with NaN so np.isinf can look at them.
    values = series.to_numpy(dtype=np.complex128 if series.dtype.kind == "c" else np.float64, na_value=np.nan)
    return pd.Series(np.isinf(values), index=series.index, name=series.name)


def _to_float(series: pd.Series[Any]) -> pd.Series[float]:
    import pandas as pd

    return pd.to_numeric(series, errors="coerce").astype("float64")


def _columns_breakdown(bad: pd.DataFrame, what: str) -> str:
    """``"inf in x_3 (2 rows), x_7 (1 row)"``: the columns behind a failed row-wise check."""
    counts = bad.sum(axis=0)
    return _counts_breakdown([str(c) for c in counts.index], counts.to_numpy(), what)


def _counts_breakdown(columns: Sequence[str], values: Any, what: str) -> str:
    """:func:`_columns_breakdown` from the bad-row count of each column."""
    import pandas as pd

    counts = pd.Series(values, index=pd.Index(columns))
    counts = counts[counts > 0].sort_values(ascending=False, kind="stable")
    if counts.empty:
        return ""
    shown = [
        f"{col} ({int(n)} row{'s' if int(n) != 1 else ''})"
        for col, n in counts.iloc[:_EXAMPLES_SHOWN].items()
    ]
    more = f", {len(counts) - _EXAMPLES_SHOWN} more column(s)" if len(counts) > _EXAMPLES_SHOWN else ""
    return f"{what} in {', '.join(shown)}{more}"


def _span(columns: Sequence[str]) -> str:
    return columns[0] if len(columns) == 1 else f"{columns[0]}..{columns[-1]}"


# -- running GX ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_gx() -> Iterator[ModuleType]:
    """Import GX with analytics off, its warnings ignored and its loggers at ERROR; restore after.

    ``great_expectations.data_context.types.base`` sets its own logger to INFO, so quieting the
    parent logger is not enough: every GX logger with a level of its own is raised too.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    saved: dict[str, int] = {}

    def hold(name: str) -> None:
        logger = logging.getLogger(name)
        if name not in saved:
            saved[name] = logger.level
        if logger.level < logging.ERROR:
            logger.setLevel(logging.ERROR)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"great_expectations(\.|$)")
        hide_pyspark_import_warnings()  # GX imports pyspark when it is installed
        hold(_GX_LOGGER)
        try:
            import great_expectations as gx

            for name, logger in list(logging.root.manager.loggerDict.items()):
                if (
                    name.startswith(_GX_LOGGER + ".")
                    and isinstance(logger, logging.Logger)
                    and logger.level != logging.NOTSET
                ):
                    hold(name)
            yield gx
        finally:
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)


def _run(
    gx: ModuleType, plan: _Plan, suite_name: str, docs_dir: Path | None
) -> tuple[Any, dict[str, Any], Path | None]:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites: dict[str, Any] = {}
    if docs_dir is not None:
        docs_dir = Path(docs_dir).resolve()
        sites["lossaudit"] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    # A fresh context per call already isolates names; the token keeps them unique should GX ever
    # share state between contexts (its project manager is a process-wide singleton).
    token = uuid.uuid4().hex[:8]
    batch_definition = (
        context.data_sources.add_pandas(f"lossaudit_{token}")
        .add_dataframe_asset("eval_data")
        .add_batch_definition_whole_dataframe("whole_dataframe")
    )
    expectations = [_to_gx(gx, p, position) for position, p in enumerate(plan.expectations)]
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"lossaudit_validation_{token}", data=batch_definition, suite=suite)
    )
    # Always pass the frame at run time (GX #10270: a dataframe bound earlier is not reused).
    result = definition.run(batch_parameters={"dataframe": plan.frame})
    built: Path | None = None
    if docs_dir is not None:
        context.build_data_docs(site_names=["lossaudit"])
        if (docs_dir / "index.html").is_file():
            built = docs_dir
    return result, dict(suite.to_json_dict()), built


def _to_gx(gx: ModuleType, planned: _Planned, position: int) -> Any:
    """The GX expectation; ``meta`` carries its position in the plan (GX reorders results)."""
    expectation_class = getattr(gx.expectations, planned.gx_class)
    extra: dict[str, Any] = {"notes": planned.notes} if planned.notes else {}
    return expectation_class(
        **planned.kwargs,
        severity=planned.severity,
        meta={_META_KEY: position, "check": planned.name},
        **extra,
    )


# -- reading the result ----------------------------------------------------------------------------


def _checks_from_result(result_json: Mapping[str, Any], planned: Sequence[_Planned]) -> tuple[DataCheck, ...]:
    """One DataCheck per planned expectation, in plan order (GX lists failed ones first)."""
    by_position: dict[int, Mapping[str, Any]] = {}
    for item in result_json.get("results", []):
        meta = item.get("expectation_config", {}).get("meta") or {}
        if isinstance(meta.get(_META_KEY), int):
            by_position[meta[_META_KEY]] = item
    checks: list[DataCheck] = []
    for position, p in enumerate(planned):
        item = by_position.get(position)
        if item is None:  # GX dropped an expectation it was given: say so rather than pass it
            checks.append(DataCheck(p.name, False, p.column, _SEVERITY_TO_CHECK[p.severity], "no GX result"))
            continue
        config = item.get("expectation_config", {})
        severity = _SEVERITY_TO_CHECK.get(str(config.get("severity", p.severity)), "error")
        success = bool(item.get("success"))
        detail = "" if success else _detail(item, p)
        checks.append(DataCheck(p.name, success, p.column, severity, detail))
    return tuple(checks)


def _detail(item: Mapping[str, Any], planned: _Planned) -> str:
    error = _exception_message(item.get("exception_info"))
    if error:
        return f"GX could not evaluate it: {error}"
    result = item.get("result") or {}
    parts: list[str] = []
    mismatched = (result.get("details") or {}).get("mismatched")
    if mismatched:
        if mismatched.get("missing"):
            parts.append("missing columns: " + ", ".join(map(str, mismatched["missing"])))
        if mismatched.get("unexpected"):
            parts.append("unexpected columns: " + ", ".join(map(str, mismatched["unexpected"])))
    elif "unexpected_count" in result:
        count = int(result["unexpected_count"])
        total = int(result.get("element_count", 0))
        # unexpected_percent leaves nulls out of the denominator; the total share reads plainer.
        percent = float(result.get("unexpected_percent_total", result.get("unexpected_percent")) or 0.0)
        text = f"{count} of {total} rows unexpected ({percent:.3g}%)"
        values = result.get("partial_unexpected_list") or []
        if planned.column in _DERIVED_COLUMNS and planned.gx_class == "ExpectColumnValuesToBeInSet":
            values = []  # a derived row flag is always False where it fails: the rows say more
        examples = [_example(v) for v in values[:_EXAMPLES_SHOWN]]
        if examples:
            text += ", e.g. " + ", ".join(examples)
        rows = (result.get("partial_unexpected_index_list") or [])[:_EXAMPLES_SHOWN]
        if rows:
            text += "; rows " + ", ".join(str(r) for r in rows)
        parts.append(text)
    elif planned.gx_class == "ExpectColumnToExist":
        parts.append(f"column {planned.column} is missing")
    elif "observed_value" in result:
        parts.append(f"observed {result['observed_value']!r}")
    if planned.extra_detail:
        parts.append(planned.extra_detail)
    return "; ".join(parts)


def _exception_message(info: Any) -> str:
    """GX puts one exception record, or a mapping of metric id -> record, under ``exception_info``."""
    if not isinstance(info, Mapping):
        return ""
    records = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, Mapping)]
    for record in records:
        if record.get("raised_exception") or record.get("exception_message"):
            message = str(record.get("exception_message") or "exception").strip()
            return message.splitlines()[0] if message else "exception"
    return ""


def _example(value: Any) -> str:
    if isinstance(value, Mapping):  # a multicolumn row: name its non-zero entries (K may be large)
        entries = [f"{k}={_example(v)}" for k, v in value.items() if v != 0]
        return "(" + (", ".join(entries) if entries else "all 0") + ")"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "null" if value is None else str(value)


def _json_safe(value: Any) -> Any:
    """``to_json_dict()`` output with +-inf and NaN floats as strings: strict JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
