"""Walking a large array a block of rows at a time, so no pass over the eval data copies all of it.

The features of a large eval set (a million 784-pixel rows is 3 GB of float32, memory-mapped from
an ``.npz``) are checked for finiteness, hashed and summarised for Great Expectations one block
of rows at a time: each pass holds one block (and what it derives from it), never a converted copy
of the whole array.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

BLOCK_BYTES = 32 * 1024 * 1024
"""About this many bytes of the array per block (at least one row)."""


def block_rows(arr: np.ndarray, block_bytes: int = BLOCK_BYTES) -> int:
    """Rows per block of ``arr``: ``block_bytes`` worth of them, at least one."""
    import math

    row_bytes = arr.dtype.itemsize * math.prod(arr.shape[1:])
    return max(1, block_bytes // max(1, row_bytes))


def row_blocks(arr: np.ndarray, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) over ``arr`` in order; each block a view of up to ``block_rows`` rows.

    A block of a memory-mapped array is released (:func:`release`) once the caller asks for the
    next one, so a pass over a mapped file holds one block of it at a time.
    """
    n = int(arr.shape[0])
    step = block_rows(arr, block_bytes)
    for start in range(0, n, step):
        block = arr[start : start + step]
        yield start, block
        release(block)


def release(block: np.ndarray) -> None:
    """Drop the pages of a C-contiguous view of a read-only ``np.memmap`` from this process.

    ``madvise(MADV_DONTNEED)`` on a shared read-only file mapping only unmaps the pages: the data
    stays in the file (and the page cache), and reading the rows again maps them back. Without
    it, every page read stays counted in the process's resident memory, and one pass over a
    3 GB memory-mapped ``x`` makes the process 3 GB larger. Anything else (an in-memory array, a
    writable or non-contiguous map, a platform without ``madvise``) is left alone.
    """
    import mmap

    import numpy as np

    mapping = getattr(block, "_mmap", None)
    if not isinstance(mapping, mmap.mmap) or block.flags.writeable or not block.flags.c_contiguous:
        return
    if block.nbytes == 0 or not hasattr(mapping, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    try:
        base = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
        start = block.ctypes.data - base
        aligned = start - start % mmap.PAGESIZE
        mapping.madvise(mmap.MADV_DONTNEED, aligned, start + block.nbytes - aligned)
    except (OSError, ValueError, TypeError):  # a closed map, or one numpy laid out otherwise
        return


def all_finite(arr: np.ndarray, block_bytes: int = BLOCK_BYTES) -> bool:
    """Whether every value of a numeric array is finite, read in its own dtype block by block.

    Integers and booleans are always finite; floats and complex numbers are tested without a
    float64 copy (``np.isfinite`` on each block makes one boolean block).
    """
    import numpy as np

    if arr.dtype.kind not in "fc":
        return True
    return all(bool(np.isfinite(block).all()) for _, block in row_blocks(arr, block_bytes))


def finite_rows(arr: np.ndarray, block_bytes: int = BLOCK_BYTES) -> np.ndarray | None:
    """One flag per row: whether all of its values are finite; None for integer or boolean arrays
    (always finite). Read block by block in the array's own dtype, as :func:`all_finite`."""
    import math

    import numpy as np

    if arr.dtype.kind not in "fc":
        return None
    n = int(arr.shape[0])
    width = math.prod(arr.shape[1:]) if arr.ndim > 1 else 1
    flags = np.empty(n, dtype=bool)
    for start, block in row_blocks(arr, block_bytes):
        flags[start : start + len(block)] = np.isfinite(block.reshape(len(block), width)).all(axis=1)
    return flags


def update_hash(digest: Any, arr: np.ndarray, block_bytes: int = BLOCK_BYTES) -> None:
    """Feed ``arr``'s bytes in C order into ``digest``, block by block.

    The bytes are those of ``np.ascontiguousarray(arr).tobytes()`` (C order is row-major, so the
    blocks of rows follow each other), without that whole copy. Object arrays hold pointers: their
    values' text joined by ``\\x1f`` is hashed instead.
    """
    import numpy as np

    if arr.dtype.kind == "O":
        digest.update("\x1f".join(map(str, arr.ravel())).encode("utf-8"))
        return
    if arr.ndim == 0:
        digest.update(np.ascontiguousarray(arr).tobytes())
        return
    for _, block in row_blocks(arr, block_bytes):
        contiguous = np.ascontiguousarray(block)
        try:
            digest.update(contiguous.data.cast("B"))
        except (TypeError, ValueError):  # a dtype without a buffer format (datetime, ...)
            digest.update(contiguous.tobytes())


class BackgroundDigest:
    """:func:`sha256_of` the arrays, computed in a thread started at construction.

    ``hashlib`` releases the GIL while it hashes a block, so the digest of a large eval set (about
    8 s for 3 GB on this project's machine) is taken while the audit goes on importing Great
    Expectations and TensorFlow and loading the model, on the other core; :meth:`result` waits
    for it where it is first needed.
    """

    def __init__(self, *arrays: np.ndarray) -> None:
        import threading

        self._value: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=arrays, name="lossaudit-data-sha256", daemon=True
        )
        self._thread.start()

    def _run(self, *arrays: np.ndarray) -> None:
        try:
            self._value = sha256_of(*arrays)
        except BaseException as exc:  # handed to whoever asks for the digest
            self._error = exc

    def result(self) -> str:
        """The hex digest (waits for the thread; re-raises what it raised)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def sha256_of(*arrays: np.ndarray, block_bytes: int = BLOCK_BYTES) -> str:
    """sha256 over the C-order bytes of each array in turn (see :func:`update_hash`)."""
    digest = hashlib.sha256()
    for arr in arrays:
        update_hash(digest, arr, block_bytes)
    return digest.hexdigest()
