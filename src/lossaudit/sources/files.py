"""Reading labels, predictions, datasets and head specs from files, with one-line errors.

Formats: ``.npy``; ``.npz`` (labels under ``y``, features under ``x``, predictions under
``predictions``/``y_pred``/``p``, or the only array); ``.csv`` and ``.parquet`` with named label
columns (several columns, or a glob like ``'label_*'``, for one-hot and multi-hot labels).

Eval data is never read whole into memory where the format allows: the features of an
uncompressed ``.npz`` are memory-mapped from the file; those of a ``.parquet`` or ``.csv`` table
are read a batch of rows at a time into a float32 temporary file that is then memory-mapped
(:mod:`lossaudit.sources.tables`). Either way the later passes (finiteness, the data hash, the
predictions) read x a block of rows at a time. A compressed ``.npz`` is read whole; label,
prediction and ``.npy`` files are read whole.

Whatever a file holds (garbage bytes, a truncated or forged ``.npy`` header, a corrupt zip, a
folder, a huge integer), reading it raises only :class:`~lossaudit.errors.BadInputError`, with one
line naming the file.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.core.chunks import all_finite, finite_rows
from lossaudit.core.head import HeadSpec
from lossaudit.errors import BadInputError, first_line
from lossaudit.sources.tables import (
    PARQUET_SUFFIXES,
    csv_columns,
    parquet_columns,
    read_csv_columns,
    read_errors,
    read_parquet_columns,
    select_names,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

LABEL_KEYS = ("y", "labels", "y_true")
PREDICTION_KEYS = ("predictions", "y_pred", "p", "probs", "logits")
FEATURE_KEYS = ("x", "X", "features")
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def _existing(path: str | Path, what: str) -> Path:
    p = Path(path)
    try:
        if not p.exists():
            raise BadInputError(f"{what} file not found: {p}")
        if p.is_dir():
            raise BadInputError(f"{what} path is a directory, not a file: {p}")
        if not p.is_file():
            raise BadInputError(f"{what} path is not a regular file: {p}")
        if p.stat().st_size == 0:
            raise BadInputError(f"{what} file is empty: {p}")
    except OSError as exc:  # permission denied, name too long, ...
        raise BadInputError(f"{what} file {p} cannot be read: {exc.strerror or type(exc).__name__}") from None
    return p


@contextmanager
def _numpy_errors(p: Path, what: str, kind: str) -> Iterator[None]:
    """numpy's many failures on a damaged or hostile ``.npy``/``.npz`` (``kind``) as one
    :class:`BadInputError` line each."""
    try:
        yield
    except BadInputError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise BadInputError(
                f"{what} file {p} holds Python objects (strings?); save a numeric array"
            ) from None
        raise BadInputError(f"{what} file {p} is not a readable {kind}: {first_line(exc)}") from None
    except MemoryError:
        raise BadInputError(f"{what} file {p} declares an array too large to load") from None
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, OSError, a forged header, ...
        raise BadInputError(f"{what} file {p} is not a readable {kind}: {first_line(exc)}") from None


def _load_npz(
    p: Path, keys: Sequence[str], what: str, *, only_array: bool = True, mmap: bool = False
) -> np.ndarray:
    """The array under the first of ``keys`` (or, with ``only_array``, the file's only array).

    With ``mmap``, a numeric array stored uncompressed (``np.savez``) is memory-mapped read-only
    from the file rather than read into memory (:func:`_stored_member`); a compressed one is read.
    """
    import numpy as np

    with _numpy_errors(p, what, ".npz"), np.load(p, allow_pickle=False) as data:
        names = list(data.files)
        chosen = next((key for key in keys if key in names), None)
        if chosen is None and only_array and len(names) == 1:
            chosen = names[0]
        if chosen is not None:
            mapped = _stored_member(p, data.zip, chosen) if mmap else None
            return mapped if mapped is not None else np.asarray(data[chosen])
    raise BadInputError(f"{what} file {p} has arrays {names}; expected one named {' or '.join(keys)}")


_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")
"""A zip local file header up to its name: signature, (22 bytes), name length, extra length."""


def _stored_member(p: Path, archive: zipfile.ZipFile, key: str) -> np.ndarray | None:
    """The ``.npz`` member ``key`` memory-mapped read-only, or None to read it the usual way.

    Only a member stored uncompressed and unencrypted whose ``.npy`` header (version 1 or 2)
    declares a numeric dtype and no more data than the member holds is mapped; anything else
    (compressed, empty, an odd header, a name the local header does not repeat) is left to
    ``np.load``, which reads it or raises its own error. The mapping reads the file as it is when
    each block is read: the data hash is taken from those same pages.
    """
    import numpy as np
    from numpy.lib import format as npy_format

    member = f"{key}.npy" if f"{key}.npy" in archive.namelist() else key
    info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    with p.open("rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(_ZIP_LOCAL_HEADER.size)
        if len(header) != _ZIP_LOCAL_HEADER.size:
            return None
        signature, name_length, extra_length = _ZIP_LOCAL_HEADER.unpack(header)
        if signature != b"PK\x03\x04" or fh.read(name_length) != info.filename.encode("utf-8"):
            return None
        start = info.header_offset + _ZIP_LOCAL_HEADER.size + name_length + extra_length
        fh.seek(start)
        version = npy_format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(fh)
        else:
            return None
        offset = fh.tell()
    size = math.prod(shape) * dtype.itemsize
    if dtype.kind not in "biuf" or size == 0 or offset - start + size > info.file_size:
        return None
    return np.memmap(
        p, dtype=dtype, mode="r", offset=offset, shape=tuple(shape), order="F" if fortran else "C"
    )


NPY_MAGIC = b"\x93NUMPY"


def _check_npy_header(p: Path, what: str) -> None:
    """Refuse a file that is not a .npy, or whose header promises more data than it holds (a
    forged shape would make numpy allocate terabytes before finding out)."""
    from numpy.lib import format as npy_format

    with p.open("rb") as fh:
        # Without the header np.load falls back to unpickling and blames allow_pickle.
        if fh.read(len(NPY_MAGIC)) != NPY_MAGIC:
            raise BadInputError(f"{what} file {p} is not a .npy file (no NumPy header)")
        fh.seek(0)
        version = npy_format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(fh)
        else:
            return  # version 3.0 (utf-8 field names): np.load checks it
        if dtype.hasobject:
            raise BadInputError(f"{what} file {p} holds Python objects (strings?); save a numeric array")
        available = p.stat().st_size - fh.tell()
        needed = math.prod(shape) * dtype.itemsize
        if needed > available:
            raise BadInputError(
                f"{what} file {p} is truncated: its header declares shape {tuple(shape)} "
                f"({needed} bytes) but it holds {available} bytes of data"
            )


def _load_npy(p: Path, what: str) -> np.ndarray:
    import numpy as np

    with _numpy_errors(p, what, ".npy"):
        _check_npy_header(p, what)
        arr = np.load(p, allow_pickle=False)
    return np.asarray(arr)


def read_table(path: str | Path, what: str = "data") -> pd.DataFrame:
    import pandas as pd

    p = _existing(path, what)
    with read_errors(p, what):
        if p.suffix.lower() == ".csv":
            return pd.read_csv(p)
        return pd.read_parquet(p)


def select_columns(frame: pd.DataFrame, patterns: Sequence[str], what: str) -> list[str]:
    return select_names(list(map(str, frame.columns)), patterns, what)


def load_labels(path: str | Path, label_columns: Sequence[str] = ()) -> np.ndarray:
    """Labels as an array of shape (n,), (n, 1) or (n, K). Non-numeric content is kept as is so
    that label detection can name it (strings, NaN)."""
    p = _existing(path, "labels")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return _load_npy(p, "labels")
    if suffix == ".npz":
        return _load_npz(p, LABEL_KEYS, "labels")
    if suffix in TABLE_SUFFIXES:
        # Only the label columns are read: a wide eval file's features never load.
        parquet = suffix in PARQUET_SUFFIXES
        names = parquet_columns(p, "labels") if parquet else csv_columns(p, "labels")
        if not label_columns and len(names) != 1:
            raise BadInputError(
                f"labels file {p} has {len(names)} columns; name the label column(s) with --label-column"
            )
        cols = select_names(names, label_columns, "labels") if label_columns else names
        frame = (
            read_parquet_columns(p, cols, "labels") if parquet else read_csv_columns(p, names, cols, "labels")
        )
        values = frame.to_numpy()
        return values[:, 0] if len(cols) == 1 else values
    raise BadInputError(f"labels file {p}: unsupported format {suffix!r} (use .npy, .npz, .csv, .parquet)")


def load_predictions(path: str | Path, columns: Sequence[str] = ()) -> np.ndarray:
    p = _existing(path, "predictions")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return _load_npy(p, "predictions")
    if suffix == ".npz":
        return _load_npz(p, PREDICTION_KEYS, "predictions")
    if suffix in PARQUET_SUFFIXES and columns:
        cols = select_names(parquet_columns(p, "predictions"), columns, "predictions")
        return read_parquet_columns(p, cols, "predictions").to_numpy()
    if suffix not in PARQUET_SUFFIXES and suffix in TABLE_SUFFIXES and columns:
        names = csv_columns(p, "predictions")
        cols = select_names(names, columns, "predictions")
        return read_csv_columns(p, names, cols, "predictions").to_numpy()
    if suffix in TABLE_SUFFIXES:
        return read_table(p, "predictions").to_numpy()  # every column a prediction
    raise BadInputError(f"predictions file {p}: unsupported format {suffix!r}")


def load_dataset(
    path: str | Path, label_columns: Sequence[str] = (), *, check_finite: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from a ``.npz`` with ``x`` and ``y``, or a table whose label columns are named and
    whose other columns are the features.

    ``x`` from an uncompressed ``.npz`` (``np.savez``) is a read-only ``np.memmap`` of the file;
    from a compressed one it is in memory; from a table it is float32, read a batch of rows at a
    time into an unnamed temporary file and memory-mapped read-only from it
    (:func:`lossaudit.sources.tables.read_table_dataset`). Features must be numeric and finite
    (``check_finite=False`` leaves the finiteness to the caller: :func:`finite_feature_rows`).
    """
    p = _existing(path, "data")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        # Both arrays by name: the only-array fallback of a labels file would read x as y. The
        # features of an uncompressed file are memory-mapped, not read: every later pass over
        # them (finiteness, hash, predictions) reads them a block of rows at a time.
        x = _load_npz(p, FEATURE_KEYS, "data (features)", only_array=False, mmap=True)
        y = _load_npz(p, LABEL_KEYS, "data (labels)", only_array=False)
        if x.dtype.kind not in "biuf":
            # Found now, not when the model meets them after its load (a minute in).
            raise BadInputError(f"data file {p}: features are not numeric (dtype {x.dtype})")
    elif suffix in TABLE_SUFFIXES:
        from lossaudit.sources.tables import read_table_dataset

        # Read a batch of rows at a time into a memory-mapped float32 spill: x is then mapped as
        # an uncompressed .npz's is.
        x, y = read_table_dataset(p, label_columns)
    else:
        raise BadInputError(f"data file {p}: unsupported format {suffix!r} (use .npz, .csv, .parquet)")
    _check_rows(x, y, f"data file {p}", check_finite=check_finite)
    return x, y


def _check_rows(x: np.ndarray, y: np.ndarray, where: str, *, check_finite: bool = True) -> None:
    """One row per sample in both, as many of each, and (``check_finite``) finite features."""
    if x.ndim == 0 or y.ndim == 0:
        raise BadInputError(f"{where}: x and y must be arrays with one row per sample")
    if x.shape[0] != len(y):
        raise BadInputError(f"{where}: x has {x.shape[0]} rows but y has {len(y)}")
    if check_finite and not all_finite(x):  # block by block, in x's own dtype: never a float64 copy
        raise BadInputError(f"{where}: features contain NaN or infinite values")


def dataset_from_arrays(
    x: Any, y: Any, label_columns: Sequence[str] = (), *, check_finite: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) as numpy arrays from in-memory data, checked like :func:`load_dataset` checks a file.

    ``x`` is an array-like (numpy, a list, a pandas DataFrame of numeric columns); ``y`` an
    array-like or a pandas Series/DataFrame. With ``y=None``, ``x`` is a DataFrame holding the
    ``label_columns`` (names or globs), as a CSV file would.
    """
    import numpy as np

    if y is None:
        if not label_columns or not hasattr(x, "columns"):
            raise BadInputError("data: give y, or a DataFrame x with label_columns naming its label columns")
        cols = select_columns(x, label_columns, "data")
        y = x[cols].to_numpy()
        y = y[:, 0] if len(cols) == 1 else y
        x = x.drop(columns=cols)
    if hasattr(x, "columns"):  # a DataFrame: numeric feature columns, in their order
        non_numeric = [c for c in x.columns if x[c].dtype.kind not in "biuf"]
        if non_numeric:
            raise BadInputError(f"data: feature column(s) {non_numeric[:5]} are not numeric")
        x = x.to_numpy(dtype=np.float32)
    if hasattr(y, "to_numpy"):  # a pandas Series or DataFrame
        y = y.to_numpy()
    try:
        features = np.asarray(x)
        labels = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"data: x and y must be arrays: {first_line(exc)}") from None
    if features.dtype.kind not in "biuf":
        raise BadInputError(f"data: features are not numeric (dtype {features.dtype})")
    _check_rows(features, labels, "data", check_finite=check_finite)
    return features, labels


def finite_feature_rows(path: str | Path | None, x: np.ndarray) -> np.ndarray | None:
    """The check :func:`load_dataset` makes, keeping its per-row result: one finiteness flag per
    sample (None for integer features), for a caller that needs both (Great Expectations' derived
    feature column) from one pass over x. ``path`` names the data file (None: in-memory data).

    Raises
    ------
    BadInputError
        When any feature is NaN or infinite, with :func:`load_dataset`'s message.
    """
    rows = finite_rows(x)
    if rows is not None and not rows.all():
        where = "data" if path is None else f"data file {Path(path)}"
        raise BadInputError(f"{where}: features contain NaN or infinite values")
    return rows


def load_spec(path: str | Path) -> HeadSpec:
    """A head spec from YAML or JSON (see :meth:`HeadSpec.from_mapping` for the keys)."""
    p = _existing(path, "spec")
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        if p.suffix.lower() == ".json":
            data: Any = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise BadInputError(f"spec file {p} is not valid {p.suffix or 'YAML'}: {first_line(exc)}") from None
    if isinstance(data, dict) and "head" in data and isinstance(data["head"], dict):
        data = data["head"]
    return HeadSpec.from_mapping(data, source=str(p))
