"""A SavedModel folder read as data: TensorFlow's protobuf files, without TensorFlow or protobuf.

tf.keras / tf-keras write ``keras_metadata.pb`` next to ``saved_model.pb``; its root node carries
the same ``model_config``/``training_config`` JSON a ``.keras`` zip or an ``.h5`` file holds.
Keras 3 ``model.export()`` (and ``tf.saved_model.save``) write no Keras config at all: only the
serving signatures' output shapes can be read. :func:`read_folder` gets both out with a tiny
protobuf wire-format reader (:func:`pb_fields`); :mod:`lossaudit.keras.static` turns them into a
head, or into a model that ``needs_live``. tests/keras/test_savedmodel.py writes such folders by
hand and fuzzes the wire reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lossaudit.errors import BadInputError


@dataclass(frozen=True)
class SavedModelContents:
    """What a SavedModel folder's protobuf files say, undecoded beyond the wire format."""

    tensorflow_version: str | None
    """The TensorFlow version saved_model.pb names, if any."""
    signature_notes: tuple[str, ...]
    """One note per serving signature output with its shape, sorted."""
    keras_metadata: bytes | None
    """The root node's metadata (JSON text) from keras_metadata.pb; None without the file or
    without a root node."""


def read_folder(src: Path, *, limit: int, name: Path | None = None) -> SavedModelContents:
    """Read ``saved_model.pb`` and, when present, ``keras_metadata.pb`` (at most ``limit`` bytes)
    of a SavedModel folder. ``name`` is the path to name in messages (default ``src``).

    Raises
    ------
    BadInputError
        One line naming the folder: no saved_model.pb, a file that cannot be read or is over the
        limit, or a protobuf that is truncated or corrupt.
    """
    p = src if name is None else name
    saved_model_pb = src / "saved_model.pb"
    if not saved_model_pb.is_file():
        raise BadInputError(
            f"{p}: a directory without saved_model.pb is not a SavedModel "
            "(a .keras or .h5 model is a single file)"
        )
    tf_version, notes = signatures(_read_limited(saved_model_pb, p, limit=None), p)
    keras_metadata = src / "keras_metadata.pb"
    root: bytes | None = None
    if keras_metadata.is_file():
        root = keras_metadata_root(_read_limited(keras_metadata, p, limit=limit), p)
    return SavedModelContents(tf_version, tuple(notes), root)


def _read_limited(file: Path, p: Path, limit: int | None) -> bytes:
    try:
        if limit is not None and file.stat().st_size > limit:
            raise BadInputError(f"{p}: {file.name} is over {limit // 2**20} MB; refusing it")
        return file.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{p}: cannot read {file.name}: {_first_line(exc)}") from None


def keras_metadata_root(data: bytes, p: Path) -> bytes | None:
    """The root object's metadata (JSON text) from keras_metadata.pb; None without a root node.

    The file is a ``SavedMetadata`` proto (tf_keras/protobuf/saved_metadata.proto): repeated
    ``SavedObject nodes = 1``, each with ``node_path = 3`` ("root" for the model) and
    ``metadata = 5`` (a JSON string).
    """
    try:
        for number, _, node in pb_fields(memoryview(data)):
            if number != 1 or not isinstance(node, memoryview):
                continue
            node_path = metadata = None
            for sub_number, _, sub_value in pb_fields(node):
                if sub_number == 3 and isinstance(sub_value, memoryview):
                    node_path = bytes(sub_value)
                elif sub_number == 5 and isinstance(sub_value, memoryview):
                    metadata = bytes(sub_value)
            if node_path == b"root" and metadata is not None:
                return metadata
    except WireError as exc:
        raise BadInputError(f"{p}: keras_metadata.pb is corrupt: {exc}") from None
    return None


def signatures(data: bytes, p: Path) -> tuple[str | None, list[str]]:
    """TensorFlow version and the serving signatures' output shapes, from saved_model.pb.

    Field numbers from tensorflow/core/protobuf: SavedModel.meta_graphs = 2; MetaGraphDef
    .meta_info_def = 1 (MetaInfoDef.tensorflow_version = 5), .signature_def = 5 (a map: key = 1,
    value = 2); SignatureDef.outputs = 2 (a map to TensorInfo); TensorInfo.tensor_shape = 3;
    TensorShapeProto.dim = 2 (Dim.size = 1, int64, -1 when unknown).
    """
    tf_version: str | None = None
    notes: list[str] = []
    try:
        for number, _, meta_graph in pb_fields(memoryview(data)):
            if number != 2 or not isinstance(meta_graph, memoryview):
                continue
            for mg_number, _, mg_value in pb_fields(meta_graph):
                if not isinstance(mg_value, memoryview):
                    continue
                if mg_number == 1:
                    for info_number, _, info_value in pb_fields(mg_value):
                        if info_number == 5 and isinstance(info_value, memoryview):
                            tf_version = bytes(info_value).decode("utf-8", errors="replace")
                elif mg_number == 5:
                    key, signature = _pb_map_entry(mg_value)
                    if key.startswith("__") or signature is None:
                        continue  # __saved_model_init_op and similar
                    for sig_number, _, sig_value in pb_fields(signature):
                        if sig_number == 2 and isinstance(sig_value, memoryview):
                            out_name, tensor_info = _pb_map_entry(sig_value)
                            shape = _tensor_info_shape(tensor_info)
                            notes.append(f"signature {key!r} output {out_name!r} has shape {shape}")
    except WireError as exc:
        raise BadInputError(f"{p}: saved_model.pb is corrupt: {exc}") from None
    return tf_version, sorted(notes)


def _pb_map_entry(entry: memoryview) -> tuple[str, memoryview | None]:
    key = ""
    value: memoryview | None = None
    for number, _, item in pb_fields(entry):
        if number == 1 and isinstance(item, memoryview):
            key = bytes(item).decode("utf-8", errors="replace")
        elif number == 2 and isinstance(item, memoryview):
            value = item
    return key, value


def _tensor_info_shape(tensor_info: memoryview | None) -> str:
    if tensor_info is None:
        return "unknown"
    for number, _, value in pb_fields(tensor_info):
        if number == 3 and isinstance(value, memoryview):
            dims: list[str] = []
            for dim_number, _, dim in pb_fields(value):
                if dim_number == 3 and dim == 1:
                    return "unknown rank"
                if dim_number == 2 and isinstance(dim, memoryview):
                    size = 0
                    for size_number, _, size_value in pb_fields(dim):
                        if size_number == 1 and isinstance(size_value, int):
                            size = size_value
                    # int64 -1 arrives as its two's-complement varint.
                    dims.append("None" if size >= 2**63 or size < 0 else str(size))
            return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    return "unknown"


class WireError(Exception):
    """The bytes are not a well-formed protobuf message (truncated, an unknown wire type)."""


def pb_fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of one protobuf message: varints as int, length-delimited
    fields as a memoryview (no copy), fixed32/64 as their bytes. Groups are not used by TF protos."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(buf, pos)
            yield number, wire_type, value
        elif wire_type == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise WireError("a field runs past the end of the data (truncated?)")
            yield number, wire_type, buf[pos : pos + length]
            pos += length
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            if pos + width > end:
                raise WireError("a field runs past the end of the data (truncated?)")
            yield number, wire_type, buf[pos : pos + width]
            pos += width
        else:
            raise WireError(f"unexpected protobuf wire type {wire_type}")


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireError("a varint runs past the end of the data (truncated?)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
