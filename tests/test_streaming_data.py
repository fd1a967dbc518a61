"""Eval data read without whole copies: memory-mapped ``.npz`` features, block-wise finiteness,
and a streamed data hash equal to the one over the whole arrays' bytes."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from lossaudit.core.chunks import all_finite, block_rows, finite_rows, row_blocks, sha256_of
from lossaudit.errors import BadInputError
from lossaudit.pipeline.stages import data_sha256
from lossaudit.sources.files import finite_feature_rows, load_dataset


def _whole_array_sha256(*arrays: np.ndarray) -> str:
    """The data hash as it was computed before it streamed: each array's C-order bytes in turn."""
    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        if arr.dtype.kind == "O":
            digest.update("\x1f".join(map(str, arr.ravel())).encode("utf-8"))
        else:
            digest.update(arr.tobytes())
    return digest.hexdigest()


def _arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(37, 5, 3)).astype(np.float32)
    return [
        base,
        np.asfortranarray(base),
        base[::2, :, 1:],  # not contiguous
        base.astype(">f8"),  # big-endian
        base.astype(np.float16),
        rng.integers(0, 7, size=37),
        rng.integers(0, 2, size=(37, 4)).astype(bool),
        np.array(["a", "bc", "d"] * 5, dtype=object),
        np.array(["a", "bc", "d"]),
        np.arange(3.0)[1],  # 0-d
    ]


@pytest.mark.parametrize("block_bytes", [1, 64, 10_000, 1 << 25])
def test_the_streamed_hash_is_the_whole_array_hash(block_bytes: int) -> None:
    arrays = _arrays()
    for arr in arrays:
        assert sha256_of(arr, block_bytes=block_bytes) == _whole_array_sha256(arr), arr.dtype
    x, y = arrays[0], arrays[5]
    assert sha256_of(x, y, block_bytes=block_bytes) == _whole_array_sha256(x, y) == data_sha256(x, y)


def test_blocks_cover_every_row_once_and_finiteness_is_read_block_by_block() -> None:
    x = np.zeros((1000, 8), dtype=np.float32)
    assert block_rows(x, 320) == 10
    starts = [start for start, block in row_blocks(x, 320)]
    assert starts == list(range(0, 1000, 10))
    assert sum(len(block) for _, block in row_blocks(x, 320)) == 1000
    assert all_finite(x, 320)
    x[999, 7] = np.inf  # in the last block
    assert not all_finite(x, 320)
    x[999, 7] = np.nan
    assert not all_finite(x.astype(np.float16), 320)
    assert all_finite(np.full((4, 2), np.iinfo(np.int64).max))


def test_row_flags_are_the_rows_all_finite(tmp_path: Path) -> None:
    x = np.zeros((30, 2, 3), dtype=np.float16)
    x[4, 1, 2] = np.inf
    x[29, 0, 0] = np.nan
    expected = np.ones(30, dtype=bool)
    expected[[4, 29]] = False
    flags = finite_rows(x, block_bytes=40)
    assert flags is not None and np.array_equal(flags, expected)
    assert finite_rows(np.zeros((3, 2), dtype=np.int32)) is None
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.zeros(30))
    unchecked, _ = load_dataset(path, check_finite=False)
    with pytest.raises(BadInputError, match=r"d\.npz: features contain NaN or infinite values"):
        finite_feature_rows(path, unchecked)
    assert finite_feature_rows(path, np.ones((3, 2), dtype=np.float32)) is not None


def test_uncompressed_npz_features_are_memory_mapped(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=300)
    stored, packed, fortran = tmp_path / "stored.npz", tmp_path / "packed.npz", tmp_path / "fortran.npz"
    np.savez(stored, x=x, y=y)
    np.savez_compressed(packed, x=x, y=y)
    np.savez(fortran, x=np.asfortranarray(x), y=y)
    mapped, y_read = load_dataset(stored)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, x)
    np.testing.assert_array_equal(y_read, y)
    read, _ = load_dataset(packed)
    assert not isinstance(read, np.memmap)
    f_mapped, _ = load_dataset(fortran)
    assert isinstance(f_mapped, np.memmap) and f_mapped.flags.f_contiguous
    np.testing.assert_array_equal(f_mapped, x)
    # The hash depends on the values, not on how they were read.
    assert (
        data_sha256(mapped, y_read)
        == data_sha256(read, y)
        == data_sha256(f_mapped, y)
        == _whole_array_sha256(x, y)
    )


def test_memory_mapped_features_are_still_checked(tmp_path: Path) -> None:
    x = np.zeros((50, 4), dtype=np.float32)
    x[49, 3] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.zeros(50, dtype=np.int64))
    with pytest.raises(BadInputError, match="features contain NaN or infinite values"):
        load_dataset(tmp_path / "nan.npz")
    np.savez(tmp_path / "text.npz", x=np.array([["a", "b"]] * 3), y=np.zeros(3))
    with pytest.raises(BadInputError, match=r"features are not numeric \(dtype <U1\)"):
        load_dataset(tmp_path / "text.npz")
    np.savez(tmp_path / "rows.npz", x=np.zeros((4, 2), dtype=np.float32), y=np.zeros(3))
    with pytest.raises(BadInputError, match="x has 4 rows but y has 3"):
        load_dataset(tmp_path / "rows.npz")


def test_loading_and_hashing_copy_no_features(tmp_path: Path) -> None:
    """Never a float64 (or any whole) copy of x: the peak Python-side allocation while loading,
    checking and hashing stays under half the size of x."""
    x = np.random.default_rng(2).normal(size=(4000, 256)).astype(np.float32)  # 4 MB
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=np.zeros(4000, dtype=np.int64))
    tracemalloc.start()
    try:
        mapped, y = load_dataset(path)
        digest = data_sha256(mapped, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest == _whole_array_sha256(x, y)
    assert peak < x.nbytes / 2, f"peak {peak} bytes for x of {x.nbytes}"


def _rss_file_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc/self/status (Linux)")
def test_a_pass_over_mapped_features_holds_one_block_of_pages(tmp_path: Path) -> None:
    x = np.ones((12_000, 1000), dtype=np.float32)  # 48 MB on disk
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=np.zeros(12_000, dtype=np.int64))
    del x
    before = _rss_file_mib()
    mapped, y = load_dataset(path)  # its finiteness pass reads every page
    data_sha256(mapped, y)  # and so does the hash
    assert _rss_file_mib() - before < 16, "a pass kept the mapped pages"
    # The positive control: reading the map without releasing keeps its pages resident.
    assert float(np.asarray(mapped).sum()) == 12_000 * 1000
    assert _rss_file_mib() - before > 40
