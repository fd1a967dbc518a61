"""Eval data from a Parquet or CSV table, read a batch of rows at a time.

The label columns (names or globs) are resolved from the table's column names before any row is
read, by the rules and with the messages of :func:`select_names`. Then:

* the labels (a few columns) are read into memory as pandas reads them, so their dtype is the one
  a whole ``pd.read_parquet``/``pd.read_csv`` gives (ints, floats with NaN, strings for the label
  detector to name; a CSV label column whose batches disagree on its type, ints and then text, is
  read again alone, as a whole column);
* the features are converted to float32 one batch of rows at a time and appended to an unnamed
  temporary file (the spill, :class:`FeatureSpill`), which is then memory-mapped read-only. Every
  later pass over x (finiteness, the data hash, the one predict-and-score pass) is the path of a
  memory-mapped ``.npz``: one block of rows at a time, its pages released after it. No float64
  copy of the features, and no pandas frame of them, is ever whole in memory.

Parquet goes through ``pyarrow.parquet.ParquetFile.iter_batches``, its column chunks read through
a small buffer rather than pre-buffered whole, each batch converted column by column as pandas
converts a column. CSV goes through pandas' own C parser in chunks of rows
(``pd.read_csv(chunksize=)``): the column names (a repeated name becomes ``name.1``), the type
inference of the label columns and the parse errors are those of a whole ``pd.read_csv``, which
Arrow's CSV reader infers differently (from its first block only, failing on a later block that
does not fit).

The spill is created by :func:`tempfile.TemporaryFile` in ``TMPDIR`` (it needs as much free space
as x takes as float32): on Linux it never has a name, on other POSIX systems its name is removed
as soon as it is created, so no file is left behind whatever happens to the process; its disk
space is returned when the last view of x is dropped.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError, LossauditError, first_line

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

BATCH_BYTES = 32 * 1024 * 1024
"""About this many bytes of parsed values per batch of rows (at least one row)."""
PARQUET_BUFFER_BYTES = 64 * 1024
"""Read buffer of each Parquet column: without one, Arrow reads a row group's column chunks whole."""
PARQUET_SUFFIXES = (".parquet", ".pq")


def select_names(names: Sequence[str], patterns: Sequence[str], what: str) -> list[str]:
    """The names matching each pattern (a name or a glob like ``'label_*'``), in the patterns'
    order and then the table's, each once; a pattern that matches nothing is bad input."""
    columns: list[str] = []
    for pattern in patterns:
        hits = [c for c in names if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise BadInputError(f"{what}: no column matches {pattern!r}; columns are {list(names)[:20]}")
        columns.extend(h for h in hits if h not in columns)
    return columns


def read_table_dataset(
    p: Path, label_columns: Sequence[str], *, batch_bytes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from the table ``p``: x a read-only float32 ``np.memmap`` of the spill (in memory
    when the table has no rows), y the label column(s) as pandas reads them.

    Raises
    ------
    BadInputError
        For an unreadable table, label columns that match nothing, no feature columns, or a
        feature column that is not numeric (as a whole read would: integer, float and boolean
        columns are numeric; a boolean column with a null is not).
    """
    if not label_columns:
        raise BadInputError(f"data file {p}: name the label column(s) with --label-column")
    step = BATCH_BYTES if batch_bytes is None else batch_bytes
    with _table_errors(p):
        if p.suffix.lower() in PARQUET_SUFFIXES:
            return _parquet(p, label_columns, step)
        return _csv(p, label_columns, step)


@contextmanager
def _table_errors(p: Path) -> Iterator[None]:
    """A reader's failure as the one line a whole read gave (``not a readable table``)."""
    with read_errors(p, "data"):
        yield


def _rows_per_batch(columns: int, batch_bytes: int) -> int:
    """Rows whose parsed values (8 bytes each at most) take about ``batch_bytes``."""
    return max(1, batch_bytes // (8 * max(1, columns)))


def _split(p: Path, names: Sequence[str], label_columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(label columns, feature columns) among ``names``, in the table's order of features."""
    labels = select_names(names, label_columns, "data")
    features = [name for name in names if name not in labels]
    if not features:
        raise BadInputError(f"data file {p}: no feature columns besides the label column(s) {labels}")
    return labels, features


def _not_numeric(p: Path, columns: Sequence[Any]) -> BadInputError:
    return BadInputError(f"data file {p}: feature column(s) {list(columns)[:5]} are not numeric")


def _labels(frame: pd.DataFrame) -> np.ndarray:
    """The label columns' values: (n,) for one column, (n, K) for several."""
    values = frame.to_numpy()
    return values[:, 0] if frame.shape[1] == 1 else values


# --- Parquet ----------------------------------------------------------------------------------


def _parquet(p: Path, label_columns: Sequence[str], batch_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd
    import pyarrow.parquet as pq

    table = pq.ParquetFile(p, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
    with table:
        schema = table.schema_arrow
        names = _frame_columns(schema)
        labels, features = _split(p, names, label_columns)
        with_nulls = _columns_with_nulls(table, features)
        non_numeric = [name for name in features if not _numeric(schema.field(name).type, name in with_nulls)]
        if non_numeric:
            raise _not_numeric(p, non_numeric)
        y = _labels(pd.read_parquet(p, columns=labels))
        rows = _rows_per_batch(len(features), batch_bytes)
        with FeatureSpill(len(features)) as spill:
            for batch in table.iter_batches(batch_size=rows, columns=features):
                spill.append(_float32_rows(p, batch))
            x = spill.array()
    return x, y


def _frame_columns(schema: pa.Schema) -> list[str]:
    """The columns pandas makes of a Parquet file: its stored index is the frame's index, not a
    column."""
    index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
    return [name for name in schema.names if name not in index]


def parquet_columns(p: Path, what: str) -> list[str]:
    """The column names pandas gives the Parquet file ``p``, read from its footer alone."""
    import pyarrow.parquet as pq

    with read_errors(p, what):
        return _frame_columns(pq.read_schema(p))


def read_parquet_columns(p: Path, columns: Sequence[str], what: str) -> pd.DataFrame:
    """Only ``columns`` of the Parquet file ``p``, as ``pd.read_parquet`` reads them: labels or
    predictions without reading any feature column."""
    import pandas as pd

    with read_errors(p, what):
        return pd.read_parquet(p, columns=list(columns))


def csv_columns(p: Path, what: str) -> list[str]:
    """The column names pandas gives the CSV file ``p`` (``a``, ``a.1`` for a repeated ``a``), read
    from its header alone."""
    import pandas as pd

    with read_errors(p, what):
        return [str(name) for name in pd.read_csv(p, nrows=0).columns]


def read_csv_columns(p: Path, names: Sequence[str], columns: Sequence[str], what: str) -> pd.DataFrame:
    """Only ``columns`` of the CSV file ``p`` (``names``: :func:`csv_columns`), in that order, as a
    whole ``pd.read_csv`` reads them, holding one batch of the other columns at a time.

    The file is parsed whole, a batch of rows at a time, so that a ragged row or bytes that are not
    text fail as they fail a whole read (pandas' ``usecols`` would skip the surplus fields of a
    ragged row). When the batches type a column differently (integers in one, text in another),
    the columns are read again alone, so that they are typed once, as a whole read types them."""
    import pandas as pd

    wanted = list(columns)
    with read_errors(p, what):
        parts: list[pd.DataFrame] = []
        with pd.read_csv(p, chunksize=_rows_per_batch(len(names), BATCH_BYTES)) as chunks:
            for chunk in chunks:
                chunk.columns = [str(name) for name in chunk.columns]
                parts.append(chunk[wanted])
        if len({tuple(part.dtypes) for part in parts}) <= 1 and parts:
            return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        frame = pd.read_csv(p, usecols=[names.index(name) for name in wanted])
    frame.columns = [str(name) for name in frame.columns]
    return frame[wanted]


@contextmanager
def read_errors(p: Path, what: str) -> Iterator[None]:
    """A table reader's failure (ParserError, UnicodeDecodeError, pyarrow's own errors, ...) as one
    line naming ``what`` and the file; lossaudit's own errors pass through."""
    try:
        yield
    except LossauditError:
        raise
    except MemoryError:
        raise BadInputError(f"{what} file {p} is too large to load") from None
    except Exception as exc:  # pyarrow's own error types, a corrupt footer, ...
        raise BadInputError(f"{what} file {p} is not a readable table: {first_line(exc)}") from None


def _numeric(dtype: pa.DataType, nulls: bool) -> bool:
    """Whether pandas reads an Arrow column of this type (holding a null or not) as a numeric
    (``biuf``) column: integers (float64 with NaN for nulls), floats, booleans without a null."""
    import pyarrow as pa

    if pa.types.is_boolean(dtype):
        return not nulls  # with a null: objects (True, False, None)
    return bool(pa.types.is_integer(dtype) or pa.types.is_floating(dtype))


def _columns_with_nulls(table: Any, columns: Sequence[str]) -> set[str]:
    """Columns whose row groups' statistics count a null (where the writer kept statistics)."""
    wanted = set(columns)
    found: set[str] = set()
    meta = table.metadata
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for i in range(row_group.num_columns):
            chunk = row_group.column(i)
            name = chunk.path_in_schema
            stats = chunk.statistics
            if name in wanted and stats is not None and stats.has_null_count and stats.null_count > 0:
                found.add(name)
    return found


def _float32_rows(p: Path, batch: pa.RecordBatch) -> np.ndarray:
    """A record batch of numeric columns as a C-order float32 (rows, columns) array.

    Each column is converted as pandas converts it (``to_numpy``: an integer column with a null
    becomes float64 with NaN), then to float32 as ``DataFrame.to_numpy(dtype=np.float32)`` would.
    """
    import numpy as np
    import pyarrow as pa

    rows = np.empty((batch.num_rows, batch.num_columns), dtype=np.float32)
    for j, (name, column) in enumerate(zip(batch.schema.names, batch.columns, strict=True)):
        if pa.types.is_boolean(column.type) and column.null_count:
            raise _not_numeric(p, [name])  # pandas reads it as objects (True, False, None)
        rows[:, j] = column.to_numpy(zero_copy_only=False)
    return rows


# --- CSV --------------------------------------------------------------------------------------


def _csv(p: Path, label_columns: Sequence[str], batch_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np
    import pandas as pd

    header = pd.read_csv(p, nrows=0)  # the names pandas gives the columns (``a``, ``a.1``, ...)
    names = [str(name) for name in header.columns]
    labels, features = _split(p, names, label_columns)
    parts: list[pd.DataFrame] = []
    booleans: set[str] = set()
    numbers: set[str] = set()
    with FeatureSpill(len(features)) as spill:
        # A header-only file is one empty chunk of object columns: "not numeric", as read whole.
        with pd.read_csv(p, chunksize=_rows_per_batch(len(names), batch_bytes)) as chunks:
            for chunk in chunks:
                parts.append(chunk[labels])
                block = chunk[features]
                kinds = [dtype.kind for dtype in block.dtypes]
                non_numeric = [c for c, kind in zip(features, kinds, strict=True) if kind not in "biuf"]
                booleans.update(c for c, kind in zip(features, kinds, strict=True) if kind == "b")
                numbers.update(c for c, kind in zip(features, kinds, strict=True) if kind in "iuf")
                # True/False in one chunk and only blanks (NaN) in another: objects, read whole.
                non_numeric += [
                    c for c in features if c in booleans and c in numbers and c not in non_numeric
                ]
                if non_numeric:
                    raise _not_numeric(p, [c for c in features if c in non_numeric])
                spill.append(block.to_numpy(dtype=np.float32))
        x = spill.array()
    if len({tuple(part.dtypes) for part in parts}) > 1:
        # The chunks disagree on a label column's type (ints, then text): pandas unites them
        # value by value (0 stays an int beside 'cat'), where a whole read types the column
        # once (all text). Read the label columns alone, whole, as the whole read did.
        frame = pd.read_csv(p, usecols=[names.index(name) for name in labels])
        frame.columns = [str(name) for name in frame.columns]
        return x, _labels(frame[labels])
    return x, _labels(pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])


# --- the spill --------------------------------------------------------------------------------


class FeatureSpill:
    """float32 rows of ``width`` features appended to an unnamed temporary file, then mapped.

    :meth:`array` maps what was appended read-only (``np.memmap``, as ``np.load(...,
    mmap_mode="r")`` would); the mapping outlives :meth:`close` and the file (which has no name)
    lives as long as the mapping. Appending writes through the file, not through a writable
    mapping, so the written pages are never counted in this process's resident memory.
    """

    def __init__(self, width: int) -> None:
        import tempfile

        self.width = width
        self.rows = 0
        self._folder = tempfile.gettempdir()
        try:
            # Closed by close() (the spill is a context manager); the mapping outlives it.
            self._file = tempfile.TemporaryFile(prefix="lossaudit-spill-")  # noqa: SIM115
        except OSError as exc:
            raise self._error(exc) from None

    def append(self, block: np.ndarray) -> None:
        import numpy as np

        rows = np.ascontiguousarray(block, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"expected rows of {self.width} features, got shape {rows.shape}")
        if rows.size:
            try:
                self._file.write(rows.data.cast("B"))
            except OSError as exc:
                raise self._error(exc) from None
        self.rows += rows.shape[0]

    def array(self) -> np.ndarray:
        """The rows appended so far: a read-only ``np.memmap`` (an empty array for no rows)."""
        import numpy as np

        if self.rows == 0:
            return np.empty((0, self.width), dtype=np.float32)
        try:
            self._file.flush()
            return np.memmap(self._file, dtype=np.float32, mode="r", shape=(self.rows, self.width))
        except OSError as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FeatureSpill:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _error(self, exc: OSError) -> LossauditError:
        size = math.prod((self.rows, self.width, 4))
        return LossauditError(
            f"cannot write the features to a temporary file in {self._folder} "
            f"({size:,} bytes written so far): {exc.strerror or type(exc).__name__}; "
            "set TMPDIR to a folder with room for them"
        )
