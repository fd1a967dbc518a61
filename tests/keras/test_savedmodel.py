"""The SavedModel reader (:mod:`lossaudit.keras.savedmodel`) on folders written by hand, without
TensorFlow: a tf.keras SavedModel reads like the same model's ``.keras`` file, one without Keras
metadata needs a live load, and damage is one line of bad input. The wire-format reader is fuzzed.

The folders hold only the protobuf fields the reader looks at, encoded here from the field numbers
its docstrings cite; the Keras-marked tests in test_static.py read folders TensorFlow wrote.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lossaudit.core.head import KerasFamily
from lossaudit.errors import BadInputError
from lossaudit.keras import savedmodel
from lossaudit.keras.static import MAX_CONFIG_BYTES, read_model_file

from .test_static import NO_FRAMEWORK_PROBE

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
FIXTURE = "tf_keras_tfnn_softmax10.keras"


# --- protobuf, encoded by hand --------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def message(number: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def integer(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value % 2**64)  # int64 -1 as its two's complement


def saved_model_pb(tf_version: str = "2.16.1", dims: tuple[int, ...] | None = (-1, 3)) -> bytes:
    """SavedModel.meta_graphs(2) -> MetaGraphDef: meta_info_def(1).tensorflow_version(5), and a
    signature_def(5) map entry 'serving_default' whose SignatureDef.outputs(2) map 'output_0' to a
    TensorInfo.tensor_shape(3) with dim(2).size(1) per dimension (unknown_rank(3) when None)."""
    shape = integer(3, 1) if dims is None else b"".join(message(2, integer(1, size)) for size in dims)
    outputs = message(2, message(1, "output_0") + message(2, message(3, shape)))
    signature = message(5, message(1, "serving_default") + message(2, outputs))
    init_op = message(5, message(1, "__saved_model_init_op") + message(2, b""))
    meta_graph = message(1, message(5, tf_version)) + signature + init_op
    return message(2, meta_graph)


def keras_metadata_pb(root: dict[str, Any]) -> bytes:
    """SavedMetadata.nodes(1) -> SavedObject: node_path(3), metadata(5) JSON; a layer node first."""
    layer = message(1, message(3, "root.layer-0") + message(5, json.dumps({"class_name": "Dense"})))
    return layer + message(1, message(3, "root") + message(5, json.dumps(root)))


def fixture_config(name: str = FIXTURE) -> dict[str, Any]:
    with zipfile.ZipFile(MODELS / name) as archive:
        config: dict[str, Any] = json.loads(archive.read("config.json"))
    return config


def tf_keras_root(name: str = FIXTURE) -> dict[str, Any]:
    config = fixture_config(name)
    compile_config = config.pop("compile_config")
    return {"class_name": config["class_name"], "keras_version": "2.15.0", "model_config": config,
            "training_config": compile_config}  # fmt: skip


def write_folder(folder: Path, graph: bytes, metadata: bytes | None) -> Path:
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(graph)
    (folder / "variables").mkdir()
    if metadata is not None:
        (folder / "keras_metadata.pb").write_bytes(metadata)
    return folder


def bad_input(path: Path) -> str:
    with pytest.raises(BadInputError) as caught:
        read_model_file(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- what a folder says ---------------------------------------------------------------------------


def test_a_tf_keras_savedmodel_reads_like_its_keras_file(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "saved", saved_model_pb(), keras_metadata_pb(tf_keras_root()))
    found = read_model_file(folder)
    assert (found.format, found.read_mode, found.keras_version) == ("savedmodel", "static", "2.15.0")
    assert found.keras_family is KerasFamily.TF_KERAS
    assert found.head == read_model_file(MODELS / FIXTURE).require_head().with_changes(
        source=f"static:{folder}"
    )
    assert found.notes[:2] == (
        "saved by TensorFlow 2.16.1",
        "read from keras_metadata.pb (a tf.keras SavedModel)",
    )


def test_without_keras_metadata_only_a_live_load_can_read_the_head(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "exported", saved_model_pb(), None)
    found = read_model_file(folder)
    assert (found.read_mode, found.head, found.keras_version) == ("needs_live", None, None)
    assert "signature 'serving_default' output 'output_0' has shape (None, 3)" in found.notes
    assert any(
        note.startswith("no keras_metadata.pb: saved by Keras 3 model.export()") for note in found.notes
    )
    with pytest.raises(BadInputError, match="the SavedModel holds no Keras model config"):
        found.require_head()


@pytest.mark.parametrize(
    ("dims", "shape"), [((), "()"), ((5,), "(5,)"), ((-1, 2, 3), "(None, 2, 3)"), (None, "unknown rank")]
)
def test_signature_output_shapes(dims: tuple[int, ...] | None, shape: str) -> None:
    tf_version, notes = savedmodel.signatures(saved_model_pb("2.20.0", dims), Path("m"))
    assert (tf_version, notes) == (
        "2.20.0",
        [f"signature 'serving_default' output 'output_0' has shape {shape}"],
    )


def test_keras_metadata_without_a_model_config(tmp_path: Path) -> None:
    root = {"class_name": "MyModel", "keras_version": "2.15.0"}
    found = read_model_file(write_folder(tmp_path / "sub", saved_model_pb(), keras_metadata_pb(root)))
    assert (found.read_mode, found.keras_version) == ("needs_live", "2.15.0")
    assert "keras_metadata.pb has no model_config (a subclassed model?)" in found.notes


def test_read_folder_returns_the_root_node_undecoded(tmp_path: Path) -> None:
    root = tf_keras_root()
    folder = write_folder(tmp_path / "saved", saved_model_pb(), keras_metadata_pb(root))
    contents = savedmodel.read_folder(folder, limit=MAX_CONFIG_BYTES)
    assert contents.tensorflow_version == "2.16.1"
    assert contents.keras_metadata is not None and json.loads(contents.keras_metadata) == root


# --- bad input: one line naming the folder --------------------------------------------------------


def test_directory_without_saved_model_pb(tmp_path: Path) -> None:
    assert bad_input(tmp_path) == (
        f"{tmp_path}: a directory without saved_model.pb is not a SavedModel (a .keras or .h5 model "
        "is a single file)"
    )


@pytest.mark.parametrize("damaged", ["saved_model.pb", "keras_metadata.pb"])
def test_a_truncated_protobuf_is_corrupt(damaged: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "saved", saved_model_pb(), keras_metadata_pb(tf_keras_root()))
    data = (folder / damaged).read_bytes()
    (folder / damaged).write_bytes(data[: len(data) // 2])
    assert bad_input(folder).startswith(f"{folder}: {damaged} is corrupt: a field runs past the end")


def test_keras_metadata_that_is_not_json(tmp_path: Path) -> None:
    metadata = message(1, message(3, "root") + message(5, b"{not json"))
    folder = write_folder(tmp_path / "saved", saved_model_pb(), metadata)
    assert bad_input(folder).startswith(f"{folder}: keras_metadata.pb is not valid JSON")


def test_oversized_keras_metadata_is_refused_before_reading(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "saved", saved_model_pb(), keras_metadata_pb(tf_keras_root()))
    with pytest.raises(BadInputError, match=r"keras_metadata\.pb is over 0 MB; refusing it"):
        savedmodel.read_folder(folder, limit=100)


# --- fuzz -----------------------------------------------------------------------------------------


@given(st.binary(max_size=512))
def test_the_wire_reader_reads_fields_or_says_the_data_is_corrupt(data: bytes) -> None:
    try:
        fields = list(savedmodel.pb_fields(memoryview(data)))
    except savedmodel.WireError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for number, wire_type, value in fields:
        assert number >= 0 and wire_type in (0, 1, 2, 5)
        assert isinstance(value, int) if wire_type == 0 else len(value) <= len(data)


@given(
    target=st.sampled_from(["saved_model.pb", "keras_metadata.pb"]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_damaged_folders_are_read_or_refused(target: str, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as root:
        folder = write_folder(Path(root) / "saved", saved_model_pb(), keras_metadata_pb(tf_keras_root()))
        data = bytearray((folder / target).read_bytes())
        for _ in range(rng.randint(1, 8)):
            if not data:
                break
            if rng.random() < 0.2:
                del data[rng.randrange(len(data)) :]
            else:
                data[rng.randrange(len(data))] = rng.randrange(256)
        (folder / target).write_bytes(bytes(data))
        try:
            found = read_model_file(folder)
        except BadInputError as exc:
            assert str(exc).startswith(f"{folder}: ") and "\n" not in str(exc)
        else:
            assert found.format == "savedmodel"


# --- no TensorFlow --------------------------------------------------------------------------------


def test_reading_a_savedmodel_imports_no_framework(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "saved", saved_model_pb(), keras_metadata_pb(tf_keras_root()))
    proc = subprocess.run(
        [sys.executable, "-c", NO_FRAMEWORK_PROBE, str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "10 softmax"
