"""Label-encoding detection: what an array of labels is, before any metric runs.

Finer than :func:`sklearn.utils.multiclass.type_of_target` where that matters for Keras (one-hot vs
multi-hot vs soft labels, index labels checked against the head's units) and in agreement with it
where the two overlap:

============================  ==========================
:func:`detect_labels`          ``type_of_target``
============================  ==========================
``binary``                     ``binary``
``index`` (>= 3 values seen)   ``multiclass``
``index`` (<= 2 values seen)   ``binary``
``one_hot``, ``multi_hot``     ``multilabel-indicator``
``soft``                       ``continuous-multioutput``
============================  ==========================

:func:`detect_labels` takes any input: what cannot be read as labels (strings, bytes, complex
numbers, ragged or nested lists, integers too large for a float, arrays of rank 0 or 3) comes back
as ``invalid`` evidence, and a bad ``units`` raises :class:`~lossaudit.errors.BadInputError`. No
array it allocates grows with a label's value: K is capped at :data:`MAX_INFERRED_CLASSES` (the
head's :data:`~lossaudit.core.head.MAX_UNITS`).

Why one module of about 770 lines: the evidence type, the detector on arrays and
:func:`evidence_from_aggregates` (the same verdicts from a distributed engine's distinct values and
row sums) must say the same thing in the same words for the same labels; they share the problem
kinds, the message helpers and the validity checks, and the tests hold the two paths to each other.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from lossaudit.core.head import MAX_UNITS
from lossaudit.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class LabelEncoding(StrEnum):
    INDEX = "index"
    """Integers 0..K-1, shape (n,) or (n, 1)."""
    BINARY = "binary"
    """0/1, shape (n,) or (n, 1): one probability per sample."""
    ONE_HOT = "one_hot"
    """{0, 1}, shape (n, K), every row sums to 1."""
    MULTI_HOT = "multi_hot"
    """{0, 1}, shape (n, K), some row sum differs from 1 (multi-label)."""
    SOFT = "soft"
    """Floats in [0, 1], shape (n, K), rows sum to 1 (label smoothing, distillation targets)."""
    INVALID = "invalid"


class LabelProblem(StrEnum):
    """Why labels are ``invalid``. The first group cannot be read as labels at all."""

    EMPTY = "empty"
    RAGGED = "ragged"
    NON_NUMERIC = "non_numeric"
    NAN = "nan"
    INF = "inf"
    RANK = "rank"
    # Readable, but not a valid encoding for a classifier (or for this head).
    NEGATIVE = "negative"
    NON_INTEGER = "non_integer"
    OUT_OF_RANGE = "out_of_range"
    NOT_BINARY = "not_binary"
    ROWS_NOT_NORMALISED = "rows_not_normalised"

    @property
    def unreadable(self) -> bool:
        """Labels that no rule can judge: a command stops on them with exit code 2."""
        return self in _UNREADABLE


_UNREADABLE = frozenset(
    {
        LabelProblem.EMPTY,
        LabelProblem.RAGGED,
        LabelProblem.NON_NUMERIC,
        LabelProblem.NAN,
        LabelProblem.INF,
        LabelProblem.RANK,
    }
)

SOFT_ROW_TOLERANCE = 1e-4
"""How far a soft label row may sum from 1 (float32 targets carry about 1e-7 relative error)."""

_MAX_VALUES_REPORTED = 12

MAX_INFERRED_CLASSES = MAX_UNITS
"""Largest K inferred from index labels when the head's units are not given. Beyond it the values
are ids, not class indices, and counting K classes would exhaust memory."""

MAX_ONE_HOT_CELLS = 1 << 28
"""Largest one-hot matrix (samples x classes) :func:`to_one_hot` builds: 1 GiB of float32."""

_LOG10_2 = 0.30103
_FLOAT_MAX = int(1.7976931348623157e308)


@dataclass(frozen=True)
class LabelEvidence:
    """What :func:`detect_labels` saw.

    ``n_classes`` is K: the head's units when given (and the labels fit it), else what the labels
    imply (max index + 1, the row width, or 2 for binary labels). ``class_counts`` has K entries;
    for one-hot and multi-hot labels it counts positives per column, for soft labels the argmax.
    """

    encoding: LabelEncoding
    shape: tuple[int, ...]
    n_samples: int
    n_classes: int
    class_counts: tuple[int, ...] = ()
    classes_absent: tuple[int, ...] = ()
    distinct_values: tuple[float, ...] = ()
    """Up to 12 distinct values, sorted; for the rules that name the values (e.g. {-1, 1})."""
    n_distinct_values: int = 0
    problem: LabelProblem | None = None
    reason: str | None = None
    dtype: str = ""
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    origin: str | None = None
    """Set for labels known from source code rather than data (``lossaudit check script.py``):
    what in the code proves the encoding, e.g. ``keras.utils.to_categorical (line 12)``. Such
    evidence has no sample count (``n_samples`` 0, ``shape`` ``(0,)`` or ``(0, K)``)."""

    @property
    def is_valid(self) -> bool:
        return self.encoding is not LabelEncoding.INVALID

    @property
    def is_sparse(self) -> bool:
        """One integer per sample (index or binary): the form sparse losses take."""
        return self.encoding in (LabelEncoding.INDEX, LabelEncoding.BINARY)

    @property
    def is_dense(self) -> bool:
        """One column per class (one-hot, multi-hot or soft): the form categorical losses take."""
        return self.encoding in (LabelEncoding.ONE_HOT, LabelEncoding.MULTI_HOT, LabelEncoding.SOFT)

    @property
    def width(self) -> int:
        """Columns per sample: 1 for (n,) and (n, 1), K for (n, K)."""
        return self.shape[1] if len(self.shape) == 2 else 1

    @property
    def majority_fraction(self) -> float | None:
        if not self.class_counts or self.n_samples == 0:
            return None
        if self.encoding is LabelEncoding.MULTI_HOT:
            return None
        return max(self.class_counts) / self.n_samples

    def describe(self) -> str:
        """One line for reports: ``one_hot, shape [540, 10], K = 10, counts [...]`` (lists of more
        than 20 classes are cut: ``[0, 1, ... 99980 more]``)."""
        line = f"{self.encoding.value}, shape {list(self.shape)}, K = {self.n_classes}"
        if self.class_counts:
            line += f", counts {_listed(self.class_counts)}"
        if self.classes_absent:
            line += f", absent {_listed(self.classes_absent)}"
        if self.reason:
            line += f" ({self.reason})"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding.value,
            "shape": list(self.shape),
            "n_samples": self.n_samples,
            "n_classes": self.n_classes,
            "class_counts": list(self.class_counts),
            "classes_absent": list(self.classes_absent),
            "distinct_values": [_jsonable_number(v) for v in self.distinct_values],
            "n_distinct_values": self.n_distinct_values,
            "problem": None if self.problem is None else self.problem.value,
            "reason": self.reason,
            "dtype": self.dtype,
            **({"origin": self.origin} if self.origin is not None else {}),
        }


_MAX_LISTED = 20


def _listed(values: tuple[int, ...]) -> str:
    if len(values) <= _MAX_LISTED:
        return str(list(values))
    shown = ", ".join(map(str, values[:_MAX_LISTED]))
    return f"[{shown}, ... {len(values) - _MAX_LISTED} more]"


def _jsonable_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def _invalid(
    problem: LabelProblem,
    reason: str,
    *,
    shape: tuple[int, ...] = (),
    n_classes: int = 0,
    dtype: str = "",
    distinct: tuple[float, ...] = (),
    n_distinct: int = 0,
) -> LabelEvidence:
    return LabelEvidence(
        encoding=LabelEncoding.INVALID,
        shape=shape,
        n_samples=shape[0] if shape else 0,
        n_classes=n_classes,
        distinct_values=distinct,
        n_distinct_values=n_distinct,
        problem=problem,
        reason=reason,
        dtype=dtype,
    )


def _as_array(labels: Any) -> tuple[np.ndarray | None, LabelEvidence | None]:
    """``labels`` as a numeric array, or the evidence of why it is not one (never raises)."""
    import numpy as np

    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.asarray(labels)
    except ValueError:  # numpy >= 1.24 refuses ragged nested sequences
        return None, _invalid(
            LabelProblem.RAGGED, "labels are ragged (rows of different lengths), not a rectangular array"
        )
    except Exception as exc:  # an object whose __array__/__len__ fails, nesting too deep, ...
        return None, _invalid(
            LabelProblem.NON_NUMERIC, f"labels cannot be read as an array ({type(exc).__name__})"
        )
    if arr.dtype == object:
        return _from_objects(arr)
    kind = arr.dtype.kind
    if kind in "UST":
        what = "byte strings" if kind == "S" else "strings"
        return None, _invalid(
            LabelProblem.NON_NUMERIC,
            f"labels are {what}; encode them as class indices 0..K-1 first",
            shape=_shape(arr),
            dtype=str(arr.dtype),
        )
    if kind == "c":
        return None, _invalid(
            LabelProblem.NON_NUMERIC, "labels are complex numbers", shape=_shape(arr), dtype=str(arr.dtype)
        )
    if kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        return None, _invalid(
            LabelProblem.NON_NUMERIC,
            f"labels have dtype {arr.dtype}, not a number type",
            shape=_shape(arr),
            dtype=str(arr.dtype),
        )
    return arr, None


def _shape(arr: np.ndarray) -> tuple[int, ...]:
    return tuple(int(s) for s in arr.shape)


def _from_objects(arr: np.ndarray) -> tuple[np.ndarray | None, LabelEvidence | None]:
    """An object array (mixed lists, pandas object columns) as float64, or why it cannot be one.

    Each element is looked at, since numpy would read ``"1"`` as 1.0 and fail on ``10**400``.
    """
    import numpy as np

    shape, dtype = _shape(arr), str(arr.dtype)
    largest = 0
    for value in arr.reshape(-1):
        if isinstance(value, str | bytes):
            return None, _invalid(
                LabelProblem.NON_NUMERIC,
                "labels are strings; encode them as class indices 0..K-1 first",
                shape=shape,
                dtype=dtype,
            )
        if isinstance(value, complex | np.complexfloating):
            return None, _invalid(LabelProblem.NON_NUMERIC, "labels are complex numbers", shape=shape)
        if isinstance(value, int) and (value > largest or -value > largest):  # bool included
            largest = abs(value)
    if largest.bit_length() > 1023:  # beyond float64: numpy raises OverflowError
        return None, _invalid(
            LabelProblem.INF,
            f"labels contain an integer too large for a 64-bit float ({_int_text(largest)})",
            shape=shape,
            dtype=dtype,
        )
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return arr.astype(np.float64), None
    except (TypeError, ValueError):
        reason = "labels are ragged or mixed objects, not a rectangular numeric array"
    except Exception as exc:  # OverflowError of a custom number type, ...
        reason = f"labels hold objects that are not numbers ({type(exc).__name__})"
    return None, _invalid(LabelProblem.RAGGED, reason, shape=shape, dtype=dtype)


def _check_units(units: Any) -> int | None:
    if units is None:
        return None
    if isinstance(units, bool) or not isinstance(units, numbers.Integral):
        raise BadInputError(f"units must be a positive integer, got {_short(units)}")
    count = int(units)
    if not 1 <= count <= MAX_UNITS:
        raise BadInputError(f"units must be between 1 and {MAX_UNITS}, got {_int_text(count)}")
    return count


def _int_text(value: int) -> str:
    """An integer for a message: written out up to 15 digits, else its magnitude (``9.22e+18``,
    ``about 10^400``: a 5000-digit integer cannot even be turned into a string)."""
    magnitude = abs(value)
    if magnitude < 10**15:
        return str(value)
    sign = "-" if value < 0 else ""
    bits = magnitude.bit_length()
    if bits <= 1024 and magnitude <= _FLOAT_MAX:
        return f"{sign}{float(magnitude):.3g}"
    digits = len(str(magnitude)) if bits < 14_000 else int(bits * _LOG10_2) + 1
    return f"{sign}about 10^{digits - 1}"


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a huge int's repr raises ValueError
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def detect_labels(labels: Any, units: int | None = None) -> LabelEvidence:
    """Name the encoding of ``labels`` and return the evidence for it.

    Parameters
    ----------
    labels : array-like of shape (n_samples,), (n_samples, 1) or (n_samples, n_classes)
        Any array-like: a list, a numpy array, a pandas Series or DataFrame.
    units : int, optional
        The head's output units. Index labels are then checked against ``range(units)`` (1-unit
        heads take labels in {0, 1}) and K comes from the head, so an evaluation sample that misses
        a class still has K classes.

    Returns
    -------
    LabelEvidence
        Problems with the labels, whatever they are (numbers or not), come back as
        ``encoding == "invalid"`` with a :class:`LabelProblem` and a one-line ``reason``.

    Raises
    ------
    BadInputError
        ``units`` is not an integer in ``1..MAX_UNITS``. Nothing else is raised.
    """
    import numpy as np

    units = _check_units(units)
    arr, failure = _as_array(labels)
    if failure is not None:
        return failure
    assert arr is not None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _detect_array(arr, units)


def _detect_array(arr: np.ndarray, units: int | None) -> LabelEvidence:
    import numpy as np

    shape = _shape(arr)
    dtype = str(arr.dtype)
    if arr.ndim == 0:
        return _invalid(LabelProblem.RANK, "labels are a single scalar, not an array", dtype=dtype)
    if arr.ndim > 2:
        return _invalid(
            LabelProblem.RANK,
            f"labels have rank {arr.ndim} (shape {shape}); expected (n,), (n, 1) or (n, K)",
            shape=shape,
            dtype=dtype,
        )
    if arr.size == 0:
        return _invalid(LabelProblem.EMPTY, f"labels are empty (shape {shape})", shape=shape)
    if arr.dtype.kind == "f":
        if np.isnan(arr).any():
            n_bad = int(np.isnan(arr).any(axis=-1).sum()) if arr.ndim == 2 else int(np.isnan(arr).sum())
            return _invalid(
                LabelProblem.NAN, f"labels contain NaN in {n_bad} row(s)", shape=shape, dtype=dtype
            )
        if np.isinf(arr).any():
            return _invalid(LabelProblem.INF, "labels contain infinite values", shape=shape, dtype=dtype)

    uniq = np.unique(arr)
    distinct = tuple(float(v) for v in uniq[:_MAX_VALUES_REPORTED])
    n_distinct = int(uniq.size)
    if arr.ndim == 1 or shape[1] == 1:
        return _detect_vector(arr.reshape(-1), shape, dtype, units, uniq, distinct, n_distinct)
    return _detect_matrix(arr, shape, dtype, uniq, distinct, n_distinct)


def _detect_vector(
    vec: np.ndarray,
    shape: tuple[int, ...],
    dtype: str,
    units: int | None,
    uniq: np.ndarray,
    distinct: tuple[float, ...],
    n_distinct: int,
) -> LabelEvidence:
    import numpy as np

    def invalid(problem: LabelProblem, reason: str, k: int = 0) -> LabelEvidence:
        return _invalid(
            problem,
            reason,
            shape=shape,
            n_classes=k,
            dtype=dtype,
            distinct=distinct,
            n_distinct=n_distinct,
        )

    values_text = _values_text(distinct, n_distinct)
    if uniq.min() < 0:
        if n_distinct == 2:
            return invalid(
                LabelProblem.NOT_BINARY,
                f"labels take the two values {values_text}; binary labels must be 0 and 1",
                2,
            )
        return invalid(LabelProblem.NEGATIVE, f"labels contain negative values ({values_text})")
    if not np.all(np.equal(np.mod(uniq, 1), 0)):
        return invalid(
            LabelProblem.NON_INTEGER,
            f"one label per sample, but not integers ({values_text}); class indices must be whole",
        )
    largest = int(uniq.max())
    largest_text = _int_text(largest)
    # K implied by the largest index, when it can be said (a float label may be 1e308).
    implied = largest + 1 if largest < 2**62 else 0
    # A 1-unit head outputs P(class 1): its labels must be 0/1, whatever the value range says.
    if units == 1:
        if largest > 1:
            if n_distinct == 2:
                return invalid(
                    LabelProblem.NOT_BINARY,
                    f"labels take the two values {values_text}; a 1-unit head needs 0 and 1",
                    2,
                )
            return invalid(
                LabelProblem.OUT_OF_RANGE,
                f"labels go up to {largest_text} ({n_distinct} classes) but the head has 1 unit",
                implied,
            )
        k = 2
        encoding = LabelEncoding.BINARY
    elif units is not None:
        if largest >= units:
            return invalid(
                LabelProblem.OUT_OF_RANGE,
                f"largest label index is {largest_text} but the head has {units} units "
                f"(indices 0..{units - 1})",
                implied,
            )
        k = units
        encoding = LabelEncoding.BINARY if units == 2 else LabelEncoding.INDEX
    else:
        if largest >= MAX_INFERRED_CLASSES:
            return invalid(
                LabelProblem.OUT_OF_RANGE,
                f"largest label is {largest_text}: more than {MAX_INFERRED_CLASSES} classes; "
                "these look like ids, not class indices 0..K-1",
            )
        k = max(largest + 1, 2)
        encoding = LabelEncoding.BINARY if largest <= 1 else LabelEncoding.INDEX
    counts = np.bincount(vec.astype(np.int64), minlength=k)
    return _valid(encoding, shape, k, counts, dtype, distinct, n_distinct)


def _detect_matrix(
    arr: np.ndarray,
    shape: tuple[int, ...],
    dtype: str,
    uniq: np.ndarray,
    distinct: tuple[float, ...],
    n_distinct: int,
) -> LabelEvidence:
    import numpy as np

    width = shape[1]
    values_text = _values_text(distinct, n_distinct)

    def invalid(problem: LabelProblem, reason: str) -> LabelEvidence:
        return _invalid(
            problem,
            reason,
            shape=shape,
            n_classes=width,
            dtype=dtype,
            distinct=distinct,
            n_distinct=n_distinct,
        )

    if uniq.min() < 0 or uniq.max() > 1:
        return invalid(
            LabelProblem.NEGATIVE if uniq.min() < 0 else LabelProblem.OUT_OF_RANGE,
            f"{width}-column labels must lie in [0, 1], found {values_text}",
        )
    # A width that differs from the head's units is judged by the rules (LA203), not here: the
    # encoding (one-hot, multi-hot) is what the rules need to say which fix applies.
    row_sums = arr.sum(axis=1, dtype=np.float64)
    hard = bool(np.all((uniq == 0) | (uniq == 1)))
    if hard:
        ones = np.isclose(row_sums, 1.0)
        encoding = LabelEncoding.ONE_HOT if bool(ones.all()) else LabelEncoding.MULTI_HOT
        counts = arr.astype(np.int64).sum(axis=0)
        evidence = _valid(encoding, shape, width, counts, dtype, distinct, n_distinct)
        if encoding is LabelEncoding.MULTI_HOT:
            sums = row_sums.astype(np.int64)
            evidence.details.update(
                rows_with_no_label=int((sums == 0).sum()),
                rows_with_several_labels=int((sums > 1).sum()),
                max_labels_per_row=int(sums.max()),
            )
        return evidence
    if np.all(np.abs(row_sums - 1.0) <= SOFT_ROW_TOLERANCE):
        counts = np.bincount(arr.argmax(axis=1), minlength=width)
        return _valid(LabelEncoding.SOFT, shape, width, counts, dtype, distinct, n_distinct)
    worst = float(np.abs(row_sums - 1.0).max())
    return invalid(
        LabelProblem.ROWS_NOT_NORMALISED,
        f"fractional labels whose rows do not sum to 1 (off by up to {worst:.3g}); "
        "soft labels must be distributions, multi-label targets must be 0/1",
    )


def _valid(
    encoding: LabelEncoding,
    shape: tuple[int, ...],
    k: int,
    counts: np.ndarray,
    dtype: str,
    distinct: tuple[float, ...],
    n_distinct: int,
) -> LabelEvidence:
    counts_t = tuple(int(c) for c in counts[:k])
    return LabelEvidence(
        encoding=encoding,
        shape=shape,
        n_samples=shape[0],
        n_classes=k,
        class_counts=counts_t,
        classes_absent=tuple(i for i, c in enumerate(counts_t) if c == 0),
        distinct_values=distinct,
        n_distinct_values=n_distinct,
        dtype=dtype,
    )


def _values_text(distinct: tuple[float, ...], n_distinct: int) -> str:
    shown = ", ".join(str(_jsonable_number(v)) for v in distinct)
    more = f", ... {n_distinct - len(distinct)} more" if n_distinct > len(distinct) else ""
    return "{" + shown + more + "}"


def to_class_indices(labels: npt.ArrayLike, evidence: LabelEvidence) -> np.ndarray:
    """Index form (n,) of single-label labels: argmax of one-hot/soft rows, the value otherwise."""
    import numpy as np

    arr = np.asarray(labels)
    indices: np.ndarray = arr.argmax(axis=1) if evidence.is_dense else arr.reshape(-1)
    return indices.astype(np.int64)


def to_one_hot(indices: npt.ArrayLike, n_classes: int) -> np.ndarray:
    """One-hot (n, K) float32 matrix of an index vector."""
    import numpy as np

    idx = np.asarray(indices).reshape(-1).astype(np.int64)
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral):
        raise BadInputError(f"one-hot labels need an integer class count, got {_short(n_classes)}")
    if not 1 <= n_classes <= MAX_UNITS:
        raise BadInputError(f"one-hot labels need 1 to {MAX_UNITS} classes, got {_int_text(int(n_classes))}")
    if idx.size * int(n_classes) > MAX_ONE_HOT_CELLS:
        raise BadInputError(
            f"one-hot labels of {idx.size} samples x {n_classes} classes exceed {MAX_ONE_HOT_CELLS} cells"
        )
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n_classes):
        raise BadInputError(f"class indices must lie in 0..{n_classes - 1} for one-hot labels")
    out = np.zeros((idx.size, n_classes), dtype=np.float32)
    out[np.arange(idx.size), idx] = 1.0
    return out


def evidence_from_aggregates(
    *,
    shape: tuple[int, ...],
    dtype: str,
    units: int | None = None,
    smallest: tuple[float, ...] = (),
    n_distinct: int = 0,
    maximum: float = 0.0,
    all_integers: bool = True,
    nan_rows: int = 0,
    inf_rows: int = 0,
    class_counts: tuple[int, ...] = (),
    soft_counts: tuple[int, ...] = (),
    rows_not_one: int = 0,
    worst_row_offset: float = 0.0,
    multi_hot: dict[str, int] | None = None,
) -> LabelEvidence:
    """What :func:`detect_labels` says of labels known only by aggregates: too many distinct values
    (or rows) to hand it, as a distributed engine measures them.

    ``smallest`` are the (up to 12) smallest distinct values, ``n_distinct`` how many there are,
    ``maximum`` the largest and ``all_integers`` whether every value is whole (for (n, K) labels:
    over all entries). ``class_counts`` are the rows per class (one label per sample) or the column
    sums ((n, K) labels of 0 and 1); ``soft_counts`` the rows per argmax; ``rows_not_one`` the rows
    whose sum is not 1 (``np.isclose``) and ``worst_row_offset`` the largest ``|row sum - 1|``;
    ``multi_hot`` the details of multi-hot rows (rows with no label, with several, most per row).
    """
    units = _check_units(units)
    if not shape or shape[0] == 0 or (len(shape) == 2 and shape[1] == 0):
        return _invalid(LabelProblem.EMPTY, f"labels are empty (shape {shape})", shape=shape)
    if nan_rows:
        return _invalid(
            LabelProblem.NAN, f"labels contain NaN in {nan_rows} row(s)", shape=shape, dtype=dtype
        )
    if inf_rows:
        return _invalid(LabelProblem.INF, "labels contain infinite values", shape=shape, dtype=dtype)
    distinct = tuple(float(v) for v in smallest[:_MAX_VALUES_REPORTED])
    values_text = _values_text(distinct, n_distinct)
    minimum = distinct[0] if distinct else 0.0
    width = shape[1] if len(shape) == 2 else 1
    if len(shape) == 2 and width > 1:
        return _matrix_from_aggregates(
            shape, dtype, distinct, n_distinct, minimum, maximum, class_counts, soft_counts,
            rows_not_one, worst_row_offset, multi_hot,
        )  # fmt: skip

    def invalid(problem: LabelProblem, reason: str, k: int = 0) -> LabelEvidence:
        return _invalid(
            problem, reason, shape=shape, n_classes=k, dtype=dtype, distinct=distinct, n_distinct=n_distinct
        )

    if minimum < 0:
        if n_distinct == 2:
            return invalid(
                LabelProblem.NOT_BINARY,
                f"labels take the two values {values_text}; binary labels must be 0 and 1",
                2,
            )
        return invalid(LabelProblem.NEGATIVE, f"labels contain negative values ({values_text})")
    if not all_integers:
        return invalid(
            LabelProblem.NON_INTEGER,
            f"one label per sample, but not integers ({values_text}); class indices must be whole",
        )
    largest = int(maximum)
    largest_text = _int_text(largest)
    implied = largest + 1 if largest < 2**62 else 0
    if units == 1:
        if largest > 1:
            if n_distinct == 2:
                return invalid(
                    LabelProblem.NOT_BINARY,
                    f"labels take the two values {values_text}; a 1-unit head needs 0 and 1",
                    2,
                )
            return invalid(
                LabelProblem.OUT_OF_RANGE,
                f"labels go up to {largest_text} ({n_distinct} classes) but the head has 1 unit",
                implied,
            )
        k, encoding = 2, LabelEncoding.BINARY
    elif units is not None:
        if largest >= units:
            return invalid(
                LabelProblem.OUT_OF_RANGE,
                f"largest label index is {largest_text} but the head has {units} units "
                f"(indices 0..{units - 1})",
                implied,
            )
        k = units
        encoding = LabelEncoding.BINARY if units == 2 else LabelEncoding.INDEX
    else:
        if largest >= MAX_INFERRED_CLASSES:
            return invalid(
                LabelProblem.OUT_OF_RANGE,
                f"largest label is {largest_text}: more than {MAX_INFERRED_CLASSES} classes; "
                "these look like ids, not class indices 0..K-1",
            )
        k = max(largest + 1, 2)
        encoding = LabelEncoding.BINARY if largest <= 1 else LabelEncoding.INDEX
    return _valid_counts(encoding, shape, k, class_counts, dtype, distinct, n_distinct)


def _matrix_from_aggregates(
    shape: tuple[int, ...],
    dtype: str,
    distinct: tuple[float, ...],
    n_distinct: int,
    minimum: float,
    maximum: float,
    class_counts: tuple[int, ...],
    soft_counts: tuple[int, ...],
    rows_not_one: int,
    worst_row_offset: float,
    multi_hot: dict[str, int] | None,
) -> LabelEvidence:
    width = shape[1]
    values_text = _values_text(distinct, n_distinct)

    def invalid(problem: LabelProblem, reason: str) -> LabelEvidence:
        return _invalid(
            problem,
            reason,
            shape=shape,
            n_classes=width,
            dtype=dtype,
            distinct=distinct,
            n_distinct=n_distinct,
        )

    if minimum < 0 or maximum > 1:
        return invalid(
            LabelProblem.NEGATIVE if minimum < 0 else LabelProblem.OUT_OF_RANGE,
            f"{width}-column labels must lie in [0, 1], found {values_text}",
        )
    hard = n_distinct <= 2 and all(v in (0.0, 1.0) for v in distinct)
    if hard:
        encoding = LabelEncoding.ONE_HOT if rows_not_one == 0 else LabelEncoding.MULTI_HOT
        evidence = _valid_counts(encoding, shape, width, class_counts, dtype, distinct, n_distinct)
        if encoding is LabelEncoding.MULTI_HOT:
            evidence.details.update(multi_hot or {})
        return evidence
    if worst_row_offset <= SOFT_ROW_TOLERANCE:
        return _valid_counts(LabelEncoding.SOFT, shape, width, soft_counts, dtype, distinct, n_distinct)
    return invalid(
        LabelProblem.ROWS_NOT_NORMALISED,
        f"fractional labels whose rows do not sum to 1 (off by up to {worst_row_offset:.3g}); "
        "soft labels must be distributions, multi-label targets must be 0/1",
    )


def _valid_counts(
    encoding: LabelEncoding,
    shape: tuple[int, ...],
    k: int,
    counts: tuple[int, ...],
    dtype: str,
    distinct: tuple[float, ...],
    n_distinct: int,
) -> LabelEvidence:
    if not counts:
        raise BadInputError(f"{encoding.value} labels need their class counts")
    import numpy as np

    padded = np.zeros(k, dtype=np.int64)  # classes past the largest label seen have no rows
    padded[: min(k, len(counts))] = counts[:k]
    return _valid(encoding, shape, k, padded, dtype, distinct, n_distinct)
