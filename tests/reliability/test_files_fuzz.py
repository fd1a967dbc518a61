"""Reading files never fails with anything but BadInputError: random and mutated bytes in every
format lossaudit reads (labels, predictions, datasets, head specs, pipeline files), and the
labels read are then detected without raising either.

Examples per test come from the Hypothesis profile (tests/conftest.py): 200 by default, 10,000
with HYPOTHESIS_PROFILE=deep.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lossaudit.core.config import RuleConfig
from lossaudit.core.labels import LabelEvidence, detect_labels
from lossaudit.errors import BadInputError
from lossaudit.pipeline.config import load_pipeline
from lossaudit.sources.files import load_dataset, load_labels, load_predictions, load_spec

pytestmark = pytest.mark.reliability


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _npz_bytes(*, compressed: bool = True, **arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


SEEDS = {
    ".npy": _npy_bytes(np.array([0, 1, 2, 1, 0], dtype=np.int64)),
    ".npz": _npz_bytes(x=np.zeros((5, 2), dtype=np.float32), y=np.array([0, 1, 2, 1, 0])),
    # Stored uncompressed, its features are memory-mapped from the member's bytes.
    "stored.npz": _npz_bytes(
        compressed=False, x=np.zeros((5, 2), dtype=np.float32), y=np.array([0, 1, 2, 1, 0])
    ),
    ".csv": b"f1,f2,y\n0.5,1.0,0\n0.1,0.2,1\n0.3,0.3,2\n",
    ".yaml": b"kind: audit\naudits:\n  - {model: m.keras, data: d.npz, retrain: {train: t.npz, epochs: 3}}\n",
    ".json": b'{"units": 3, "activation": "softmax", "loss": "sparse_categorical_crossentropy"}',
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few bytes replaced, cut short, or spliced with random bytes."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(max_size=16))
    return bytes(data)


def _content(suffix: str) -> st.SearchStrategy[bytes]:
    if suffix == ".npz":
        return st.binary(max_size=200) | mutated(SEEDS[".npz"]) | mutated(SEEDS["stored.npz"])
    return st.binary(max_size=200) | mutated(SEEDS[suffix])


def _only_bad_input(fn: Callable[[], Any], *, one_line: bool = True) -> Any:
    try:
        return fn()
    except BadInputError as exc:
        # (A head spec's messages quote its keys as written: the CLI keeps them on one line.)
        assert not one_line or "\n" not in str(exc), str(exc)
        return None


def _in_file(suffix: str, data: bytes, use: Callable[[Path], Any]) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"file{suffix}"
        path.write_bytes(data)
        return use(path)


@given(suffix=st.sampled_from([".npy", ".npz", ".csv"]), data=st.data())
def test_labels_files_read_or_refuse(suffix: str, data: st.DataObject) -> None:
    content = data.draw(_content(suffix))

    def use(path: Path) -> None:
        labels = _only_bad_input(lambda: load_labels(path, ["y"] if suffix == ".csv" else ()))
        if labels is not None:
            assert isinstance(_only_bad_input(lambda: detect_labels(labels)), LabelEvidence)
        _only_bad_input(lambda: load_predictions(path))

    _in_file(suffix, content, use)


@given(suffix=st.sampled_from([".npz", ".csv"]), data=st.data())
def test_dataset_files_read_or_refuse(suffix: str, data: st.DataObject) -> None:
    content = data.draw(_content(suffix))

    def use(path: Path) -> None:
        loaded = _only_bad_input(lambda: load_dataset(path, ["y"] if suffix == ".csv" else ()))
        if loaded is not None:
            x, y = loaded
            assert x.shape[0] == len(y)
            _only_bad_input(lambda: detect_labels(y))

    _in_file(suffix, content, use)


@given(data=st.data())
def test_spec_and_pipeline_files_read_or_refuse(data: st.DataObject) -> None:
    _in_file(
        ".json",
        data.draw(_content(".json")),
        lambda p: _only_bad_input(lambda: load_spec(p), one_line=False),
    )
    _in_file(
        ".yaml",
        data.draw(_content(".yaml")),
        lambda p: _only_bad_input(lambda: load_pipeline(p, base=RuleConfig())),
    )


def test_seeds_are_readable() -> None:
    """The unmutated seeds load, so the mutations start from valid files."""
    _in_file(".npy", SEEDS[".npy"], load_labels)
    _in_file(".npz", SEEDS[".npz"], load_dataset)
    _in_file(".npz", SEEDS["stored.npz"], load_dataset)
    _in_file(".csv", SEEDS[".csv"], lambda p: load_dataset(p, ["y"]))
    _in_file(".json", SEEDS[".json"], load_spec)
    _in_file(".yaml", SEEDS[".yaml"], lambda p: load_pipeline(p, base=RuleConfig()))


def test_zip_member_with_a_forged_header() -> None:
    """An .npz member whose header promises 8 TB: refused, not allocated."""
    from numpy.lib import format as npy_format

    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("y.npy", header.getvalue() + b"\0" * 64)

    def use(path: Path) -> None:
        with pytest.raises(BadInputError, match=r"labels file .* (too large|not a readable)"):
            load_labels(path)

    _in_file(".npz", buf.getvalue(), use)
