"""The HDF5 reader (:mod:`lossaudit.keras.hdf5`): it agrees with h5py, leaves the layouts it does
not handle to h5py, and turns damage into one line of bad input, never a crash or a hang.

No Keras here: the files are the committed fixtures (tests/data/models/) and files h5py writes.
Mutants per fuzz test come from the Hypothesis profile (tests/conftest.py): 200 in CI, 10,000
with HYPOTHESIS_PROFILE=deep.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lossaudit.core.head import LossSpec
from lossaudit.errors import BadInputError
from lossaudit.keras import hdf5
from lossaudit.keras.static import MAX_CONFIG_BYTES, read_model_file

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
H5_FIXTURES = sorted(p.name for p in MODELS.glob("*.h5"))
KERAS_ATTRIBUTES = ("keras_version", "model_config", "training_config")
CCE = LossSpec("categorical_crossentropy")


def direct(path: Path) -> dict[str, str]:
    return hdf5.root_attributes_direct(path, KERAS_ATTRIBUTES, limit=MAX_CONFIG_BYTES)


def bad_input(path: Path) -> str:
    with pytest.raises(BadInputError) as caught:
        read_model_file(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def _h5py_texts(path: Path) -> dict[str, str]:
    import h5py

    with h5py.File(path, "r") as h5:
        return {
            k: v.decode() if isinstance(v, bytes) else v for k, v in h5.attrs.items() if k in KERAS_ATTRIBUTES
        }


# --- the direct reader agrees with h5py --------------------------------------------------------------


@pytest.mark.parametrize("name", H5_FIXTURES)
def test_direct_h5_reader_matches_h5py_on_fixtures(name: str) -> None:
    assert direct(MODELS / name) == _h5py_texts(MODELS / name)


@pytest.mark.parametrize("libver", ["earliest", "v110", "latest"])
@pytest.mark.parametrize("track_order", [False, True])
def test_direct_h5_reader_matches_h5py_on_other_layouts(
    libver: str, track_order: bool, tmp_path: Path
) -> None:
    import h5py
    import numpy as np

    source = _h5py_texts(MODELS / "tf_keras_functional.h5")
    path = tmp_path / "m.h5"
    with h5py.File(path, "w", libver=libver, track_order=track_order) as h5:
        h5.create_group("model_weights")
        h5.attrs["backend"] = "tensorflow"
        h5.attrs["keras_version"] = np.bytes_(source["keras_version"])  # fixed-length, as h5py 2 wrote
        h5.attrs["model_config"] = source["model_config"]  # variable-length, in the global heap
        h5.attrs["training_config"] = source["training_config"]
        h5.attrs["padding"] = "x" * 30_000  # pushes later messages into a continuation block
    assert direct(path) == source
    assert read_model_file(path).head == read_model_file(
        MODELS / "tf_keras_functional.h5"
    ).require_head().with_changes(source=f"static:{path}")


@pytest.mark.parametrize("layout", ["dense_attributes", "user_block"])
def test_layouts_the_direct_reader_leaves_to_h5py(layout: str, tmp_path: Path) -> None:
    import h5py

    source = _h5py_texts(MODELS / "keras3_functional.h5")
    path = tmp_path / "m.h5"
    options: dict[str, Any] = (
        {"libver": "latest"} if layout == "dense_attributes" else {"userblock_size": 512}
    )
    with h5py.File(path, "w", **options) as h5:
        if layout == "dense_attributes":
            for i in range(20):  # more than the 8 compact attributes h5py keeps in the header
                h5.attrs[f"extra_{i}"] = i
        for key, value in source.items():
            h5.attrs[key] = value
    with pytest.raises(hdf5.UnsupportedLayout):
        direct(path)
    assert hdf5.root_attributes_h5py(path, KERAS_ATTRIBUTES, limit=MAX_CONFIG_BYTES) == source
    assert hdf5.root_attributes(path, KERAS_ATTRIBUTES, limit=MAX_CONFIG_BYTES) == source
    head = read_model_file(path).require_head()
    assert (head.units, head.activation_chain, head.loss) == (10, ("linear", "softmax"), CCE)
    if layout == "user_block":
        with path.open("rb") as fh:
            assert hdf5.signature_offsets(fh, path.stat().st_size) == [512]


def test_a_value_over_the_limit_is_refused(tmp_path: Path) -> None:
    import h5py
    import numpy as np

    path = MODELS / "keras3_functional.h5"
    size = len(_h5py_texts(path)["model_config"])
    with pytest.raises(BadInputError, match="over the limit"):
        hdf5.root_attributes_direct(path, KERAS_ATTRIBUTES, limit=size - 1)
    fixed = tmp_path / "fixed.h5"  # h5py knows the storage size of a fixed-length string only
    with h5py.File(fixed, "w") as h5:
        h5.attrs["model_config"] = np.bytes_(_h5py_texts(path)["model_config"])
    with pytest.raises(BadInputError, match="over the limit; refusing it"):
        hdf5.root_attributes_h5py(fixed, KERAS_ATTRIBUTES, limit=size - 1)


# --- damage: one line of bad input ------------------------------------------------------------------


def test_truncated_h5_file(tmp_path: Path) -> None:
    data = (MODELS / "keras3_functional.h5").read_bytes()
    path = tmp_path / "half.h5"
    path.write_bytes(data[: len(data) // 2])
    message = bad_input(path)
    assert message == (
        f"{path}: corrupt or truncated HDF5 file: the file has {len(data) // 2} bytes but its "
        f"superblock says {len(data)}"
    )


def test_a_root_attribute_stored_twice_is_refused(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "m.h5"
    with h5py.File(MODELS / "keras3_functional.h5", "r") as source:
        config = source.attrs["model_config"]
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = config
        h5.attrs["model_confiX"] = config.replace("softmax", "sigmoid")
    data = path.read_bytes()
    assert data.count(b"model_confiX") == 1
    path.write_bytes(data.replace(b"model_confiX", b"model_config"))
    with pytest.raises(BadInputError, match="the root attribute model_config appears twice"):
        read_model_file(path)


def test_damaged_h5_files_are_bad_input_never_a_crash(tmp_path: Path) -> None:
    """Random damage to the header region: every outcome is a head or one BadInputError line."""
    data = (MODELS / "tf_keras_functional.h5").read_bytes()
    rng = random.Random(0)
    outcomes = {"read": 0, "bad": 0}
    path = tmp_path / "damaged.h5"
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            damaged[rng.randrange(4096)] = rng.randrange(256)
        path.write_bytes(bytes(damaged))
        try:
            read_model_file(path)
            outcomes["read"] += 1
        except BadInputError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            outcomes["bad"] += 1
    assert outcomes["read"] > 0 and outcomes["bad"] > 0, outcomes


@given(
    fixture=st.sampled_from(H5_FIXTURES),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    damage=st.sampled_from(["bytes", "truncate", "block"]),
)
def test_the_direct_reader_returns_text_declines_or_refuses(fixture: str, seed: int, damage: str) -> None:
    """Any damage to a fixture's structure (superblock, object headers, global heap): the direct
    reader alone returns strings, declines the layout, or raises one line of bad input; no other
    exception, no loop (its reads are bounded, its message count capped)."""
    rng = random.Random(seed)
    data = bytearray((MODELS / fixture).read_bytes())
    if damage == "bytes":
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(min(len(data), 8192))] = rng.randrange(256)
    elif damage == "truncate":
        del data[rng.randrange(len(data)) :]
    else:  # an offset-sized block copied elsewhere: offsets and lengths pointing anywhere
        i, j = rng.randrange(len(data)), rng.randrange(min(len(data), 8192))
        block = data[i : i + rng.choice([2, 4, 8, 16])]
        data[j : j + len(block)] = block
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / fixture
        path.write_bytes(bytes(data))
        try:
            texts = direct(path)
        except hdf5.UnsupportedLayout:
            return
        except BadInputError as exc:
            assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
            return
    assert set(texts) <= set(KERAS_ATTRIBUTES)
    assert all(isinstance(text, str) for text in texts.values())
