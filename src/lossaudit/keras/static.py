"""Read a saved Keras model's head without TensorFlow, without Keras, without running the file.

The reader on top of the format parsers: it tells the format from the content, reads a
``.keras`` zip itself, gets the configs out of the other formats through their parsers, and turns
the configs into a :class:`~lossaudit.core.head.HeadSpec`. Three formats, read as data only:

* ``.keras`` (Keras 3, and tf-keras >= 2.13 ``save_format="keras"``): a zip holding
  ``config.json`` (the model config and its ``compile_config``), ``metadata.json`` (the Keras
  version) and ``model.weights.h5``. Only member names are listed and the two JSON files read,
  with :mod:`zipfile` and :mod:`json`.
* legacy ``.h5`` (Keras 1/2, tf.keras, tf-keras, and Keras 3 ``model.save("m.h5")``): the root
  HDF5 attributes ``model_config``, ``training_config`` and ``keras_version``, read by
  :mod:`lossaudit.keras.hdf5` (its own reader of the HDF5 layout, h5py for rare layouts). No
  dataset is read.
* a SavedModel folder: tf.keras / tf-keras write ``keras_metadata.pb``, whose root node carries the
  same ``model_config``/``training_config`` JSON, read by :mod:`lossaudit.keras.savedmodel`
  without the protobuf package. Keras 3 ``model.export()`` (and ``tf.saved_model.save``) leave
  no Keras config at all: then ``read_mode`` is ``"needs_live"`` and only the serving signature's
  output shapes are reported.

Nothing here deserialises Python code: a ``Lambda`` layer's marshalled function (and any
serialised ``lambda`` elsewhere in the config: an activation, a loss) stays an opaque string, and
only where it is gets listed (the live loader refuses such files unless told otherwise).

One model, one reading. The format is told from the content, never from the name, and a file
that two readers could read as two models is refused (:func:`sniff_model_file`): a file that is
both HDF5 and a zip archive (a ``.keras`` zip appended to an ``.h5`` model), or whose suffix says
another format than its content (Keras picks its reader by the suffix). An audit reads a private
copy (:func:`snapshot_model_file`) and the live load loads that same copy after checking its
sha256, so what the rules judged is what runs.

Why one module of about 1100 lines: it is the single answer to "what head does this file have",
and its parts share one vocabulary (formats, ``StaticModel``, the config limit, one-line
``BadInputError`` messages). The byte-level parsers, which share nothing with Keras configs,
live in :mod:`~lossaudit.keras.hdf5` and :mod:`~lossaudit.keras.savedmodel`; what is left is
format detection and the private copy (~300 lines), the three format readers (~150) and the walk
from a config to a head, with how every Keras version serialises activations, losses and metrics
(~500), which all readers share.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import weakref
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from lossaudit.core.head import HeadSpec, KerasFamily, LossSpec, normalise_metric_name, snake_case
from lossaudit.core.names import ACTIVATIONS, REGISTERED_SEPARATOR, normalise_activation, qualified_name
from lossaudit.errors import BadInputError
from lossaudit.keras import hdf5, savedmodel

MAX_CONFIG_BYTES = 50 * 1024 * 1024
"""A config larger than this is refused: real model configs are kilobytes to a few megabytes."""

FORMAT_KERAS_ZIP = "keras_zip"
FORMAT_H5 = "h5"
FORMAT_SAVEDMODEL = "savedmodel"

READ_STATIC = "static"
READ_NEEDS_LIVE = "needs_live"

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_ZIP_LOCAL_HEADER = 30
_COPY_CHUNK = 1 << 20
KERAS_SUFFIXES = {".keras": "keras_zip", ".h5": "h5", ".hdf5": "h5"}
"""The suffixes Keras picks its reader by, and the format each one means."""

_MAX_WALK = 10_000
"""Upper bound on layers visited walking back from the output (guards against cyclic configs)."""

_MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
_PRODUCER_CLASSES = frozenset(
    {
        "Dense",
        "EinsumDense",
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "SeparableConv1D",
        "SeparableConv2D",
        "Convolution1D",
        "Convolution2D",
        "Convolution3D",
    }
)
# Layers (and Keras 3 functional ops, serialised under the same class names) that apply one
# activation and nothing else.
_ACTIVATION_CLASSES: dict[str, str] = {
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "Sigmoid": "sigmoid",
    "ReLU": "relu",
    "Relu": "relu",
    "LeakyReLU": "leaky_relu",
    "PReLU": "prelu",
    "ELU": "elu",
    "Elu": "elu",
    "ThresholdedReLU": "thresholded_relu",
    "Tanh": "tanh",
}
# Layers that neither change the number of outputs nor turn scores into probabilities.
_PASS_THROUGH_CLASSES = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianDropout",
        "GaussianNoise",
        "AlphaDropout",
        "ActivityRegularization",
        "Flatten",
        "Reshape",
        "Permute",
        "Identity",
        "Masking",
        "BatchNormalization",
        "LayerNormalization",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
    }
)
_WRAPPER_CLASSES = frozenset({"TimeDistributed"})


@dataclass(frozen=True)
class StaticModel:
    """What a saved model's files say about its head, read without running anything.

    ``head`` is None only when ``read_mode`` is ``"needs_live"``: a SavedModel that carries no
    Keras config, whose head only a live load can tell (:meth:`require_head` says so in one line).
    """

    path: str
    format: str
    """``"keras_zip"``, ``"h5"`` or ``"savedmodel"``."""
    head: HeadSpec | None
    keras_version: str | None
    keras_family: KerasFamily
    read_mode: str = READ_STATIC
    """``"static"``, or ``"needs_live"`` for a SavedModel without a readable Keras config."""
    lambda_layers: tuple[str, ...] = ()
    """Names of every Lambda layer in the model, and of every layer whose config holds a
    serialised ``lambda`` (``compile_config`` for one in the loss or metrics): Python code that a
    load with Keras's safe mode off would run. Their code is never deserialised here."""
    output_layers: tuple[str, ...] = ()
    """Class names of the layers from the last Dense (or Conv) to the output, in order."""
    notes: tuple[str, ...] = field(default=())
    sha256: str | None = None
    """sha256 of the bytes this was read from, when read from a :class:`ModelSnapshot` (the
    live load checks it before loading the same copy); None for a plain :func:`read_model_file`."""

    def require_head(self) -> HeadSpec:
        """The head, or a one-line :class:`BadInputError` when only a live load can read it."""
        if self.head is None:
            raise BadInputError(
                f"{self.path}: the SavedModel holds no Keras model config, so its head cannot be "
                "read statically; load it live with Keras"
            )
        return self.head

    def context(self) -> dict[str, Any]:
        """Plain-JSON facts for ``AuditReport.context``: where the head was read from, and how."""
        return {
            "model": self.path,
            "model_format": self.format,
            "keras_version": self.keras_version,
            "keras_family": self.keras_family.value,
            "read_mode": self.read_mode,
            "head_layers": " -> ".join(self.output_layers),
            "lambda_layers": list(self.lambda_layers),
            "model_notes": list(self.notes),
        }


def read_model_file(path: str | Path, *, name: str | Path | None = None) -> StaticModel:
    """Read a saved Keras model's head, loss, metrics and Keras family as data.

    Parameters
    ----------
    path
        A ``.keras`` zip, a legacy ``.h5`` file, or a SavedModel folder. The format is told from
        the file's content (:func:`sniff_model_file`): a polyglot, or a ``.keras``/``.h5`` suffix
        that says another format than the content, is refused.
    name
        The path to name in messages, in ``path`` and in the head's source, when ``path`` is a
        private copy of it (:class:`ModelSnapshot`); default ``path``.

    Returns
    -------
    StaticModel
        The head (``source="static:<path>"``), the Keras version and family, and notes.

    Raises
    ------
    BadInputError
        One line naming the file and the problem: missing, empty, not a model file, a polyglot or
        a suffix that disagrees with the content, truncated or corrupt, invalid JSON, or an output
        structure lossaudit cannot interpret (multi-output models, layers it does not know between
        the last Dense and the output).
    """
    src = Path(path)
    p = src if name is None else Path(name)
    if not src.exists():
        raise BadInputError(f"model file not found: {p}")
    if src.is_dir():
        return _read_savedmodel(src, p)
    if sniff_model_file(src, name=p) == FORMAT_KERAS_ZIP:
        return _read_keras_zip(src, p)
    return _read_h5(src, p)


# --- what the content is ----------------------------------------------------------------------


def sniff_model_file(path: str | Path, *, name: str | Path | None = None) -> str:
    """``"keras_zip"`` or ``"h5"``, told from the content; the suffix must agree.

    * a zip archive from byte 0 (``PK``) is a ``.keras`` zip; HDF5 signatures inside it are fine
      where they begin a member's data (Keras stores ``model.weights.h5`` uncompressed), anywhere
      else the file is a polyglot;
    * an HDF5 signature where libhdf5 looks for one (byte 0, or 512, 1024, 2048... behind a user
      block) makes an HDF5 file, unless a zip archive can be read from the same file (its
      end-of-central-directory record is found from the end, as :func:`zipfile.is_zipfile` and
      Keras do): that is a polyglot;
    * ``.keras`` must hold a zip, ``.h5``/``.hdf5`` an HDF5 file (Keras chooses its reader by the
      suffix); other suffixes are read by their content.

    Raises
    ------
    BadInputError
        One line: missing, not a regular file, empty, unreadable, not a model file, a polyglot,
        or a suffix that disagrees with the content (it says what the content is).
    """
    src = Path(path)
    p = src if name is None else Path(name)
    try:
        if not stat.S_ISREG(src.stat().st_mode):  # a FIFO or a device would block or never end
            raise BadInputError(f"{p}: not a regular file")
        with src.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head_bytes = fh.read(8)
            hdf5_at = hdf5.signature_offsets(fh, size)
            spans = _zip_spans(fh)
    except FileNotFoundError:
        raise BadInputError(f"model file not found: {p}") from None
    except OSError as exc:
        raise BadInputError(f"{p}: cannot read the model file: {_first_line(exc)}") from None
    if size == 0:
        raise BadInputError(f"{p}: the model file is empty")
    if head_bytes.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        file_format = FORMAT_KERAS_ZIP
        if spans is not None:
            members = spans[1]
            outside = [o for o in hdf5_at if not any(a <= o and o + 8 <= b for a, b in members)]
            if outside:
                raise BadInputError(
                    f"{p}: refusing a polyglot: a zip archive that also holds an HDF5 file at byte "
                    f"{outside[0]} outside its members, so Keras could read it as either"
                )
        # A zip that cannot be read is reported as a corrupt .keras zip by its reader.
    elif hdf5_at:
        file_format = FORMAT_H5
        if spans is not None:
            raise BadInputError(
                f"{p}: refusing a polyglot: an HDF5 file (at byte {hdf5_at[0]}) that is also a zip "
                f"archive (from byte {spans[0]}), so Keras could read it as either"
            )
    elif spans is not None:
        raise BadInputError(
            f"{p}: not a Keras model file: a zip archive that starts at byte {spans[0]}, after "
            "something else (a .keras zip starts at byte 0)"
        )
    else:
        raise BadInputError(
            f"{p}: not a Keras model file (neither a .keras zip nor an HDF5 .h5; it starts with "
            f"{head_bytes!r})"
        )
    expected = KERAS_SUFFIXES.get(p.suffix.lower())
    if expected is not None and expected != file_format:
        if file_format == FORMAT_H5:
            raise BadInputError(f"{p} is an HDF5 file, not a .keras zip: rename it to .h5")
        raise BadInputError(f"{p} is a .keras zip, not an HDF5 file: rename it to .keras")
    return file_format


def _zip_spans(fh: Any) -> tuple[int, list[tuple[int, int]]] | None:
    """(where the archive starts, [start, end) of each member's data) when :mod:`zipfile` can
    read a zip archive from the file (found from its end, wherever it starts); else None."""
    try:
        with zipfile.ZipFile(fh) as archive:
            infos = archive.infolist()
            spans: list[tuple[int, int]] = []
            for info in infos:
                fh.seek(info.header_offset)
                local = fh.read(_ZIP_LOCAL_HEADER)
                if len(local) < _ZIP_LOCAL_HEADER or local[:4] != _ZIP_MAGIC:
                    continue  # a damaged member: the zip reader reports it
                start = info.header_offset + _ZIP_LOCAL_HEADER + _u16(local, 26) + _u16(local, 28)
                spans.append((start, start + info.compress_size))
    except Exception:  # BadZipFile, struct.error, OverflowError, ...: not a readable zip
        return None
    first = min((info.header_offset for info in infos), default=0)
    return first, spans


# --- a private copy: one model, one reading -------------------------------------------------


class ModelSnapshot:
    """A private copy of a model file (or SavedModel folder) and the sha256 of its bytes.

    The copy lives in a folder only this user can read (``tempfile.mkdtemp``, under ``TMPDIR``),
    named ``model.keras`` or ``model.h5`` after its content, so Keras picks the reader the
    content needs whatever the original is called. :meth:`read_static` reads it; the live load
    (:func:`lossaudit.keras.live.load_model_file`) checks the hash again (:meth:`verify`) and
    loads the same copy: a file swapped or rewritten after the check is never loaded. The copy is
    removed by :meth:`close` (or the ``with`` block), else when the object is collected or the
    interpreter exits.
    """

    def __init__(self, source: Path, path: Path, file_format: str, sha256: str, folder: Path) -> None:
        self.source = source
        """The path the user named (messages and the report name it)."""
        self.path = path
        """The private copy."""
        self.format = file_format
        self.sha256 = sha256
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(folder), True)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def verify(self) -> None:
        """Raise a one-line :class:`BadInputError` unless the copy still hashes to :attr:`sha256`."""
        if self.closed:
            raise BadInputError(f"{self.source}: the private copy of the model was already removed")
        try:
            digest = _tree_sha256(self.path) if self.path.is_dir() else _file_sha256(self.path)
        except OSError as exc:
            raise BadInputError(f"{self.source}: cannot read the private copy: {_first_line(exc)}") from None
        if digest != self.sha256:
            raise BadInputError(
                f"{self.source}: the model's bytes changed after its static check "
                f"(sha256 {self.sha256[:12]}... now {digest[:12]}...): not loading it"
            )

    def read_static(self) -> StaticModel:
        """:func:`read_model_file` of the copy, naming the original; ``sha256`` set."""
        try:
            static = read_model_file(self.path, name=self.source)
        except BadInputError as exc:
            raise BadInputError(str(exc).replace(str(self.path), str(self.source))) from None
        return replace(static, sha256=self.sha256)

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> ModelSnapshot:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def snapshot_model_file(path: str | Path) -> ModelSnapshot:
    """Copy a model file (or SavedModel folder) to a private folder, hashing what is copied, and
    sniff the copy (:func:`sniff_model_file`: polyglots and suffixes that disagree with the
    content are refused before anything else reads it).

    Raises
    ------
    BadInputError
        One line: missing, not a file or folder, changed while it was copied, or refused by
        :func:`sniff_model_file`.
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise BadInputError(f"model file not found: {p}") from None
    except OSError as exc:
        raise BadInputError(f"{p}: cannot read the model file: {_first_line(exc)}") from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise BadInputError(f"{p}: not a regular file or a folder")
    folder = Path(tempfile.mkdtemp(prefix="lossaudit-model-"))
    try:
        if stat.S_ISDIR(mode):
            copy = folder / "model"
            try:
                # Links are followed: the copy holds the bytes they point at, as a load would.
                shutil.copytree(p, copy, symlinks=False)
            except (OSError, shutil.Error) as exc:
                raise BadInputError(f"{p}: cannot copy the model folder: {_first_line(exc)}") from None
            return ModelSnapshot(p, copy, FORMAT_SAVEDMODEL, _tree_sha256(copy), folder)
        staging = folder / "model"
        digest = _copy_hashed(p, staging)
        file_format = sniff_model_file(staging, name=p)
        copy = staging.rename(folder / ("model.keras" if file_format == FORMAT_KERAS_ZIP else "model.h5"))
        return ModelSnapshot(p, copy, file_format, digest, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _copy_hashed(src: Path, dst: Path) -> str:
    """Copy ``src`` to a new private file ``dst``; the sha256 of the bytes copied."""
    digest = hashlib.sha256()
    try:
        with src.open("rb") as fin:
            info = os.fstat(fin.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise BadInputError(f"{src}: not a regular file")
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fout:
                left = info.st_size + 1  # one byte more than announced shows a file still growing
                while left > 0:
                    chunk = fin.read(min(_COPY_CHUNK, left))
                    if not chunk:
                        break
                    left -= len(chunk)
                    digest.update(chunk)
                    fout.write(chunk)
    except OSError as exc:
        raise BadInputError(f"{src}: cannot copy the model file: {_first_line(exc)}") from None
    if left != 1:
        raise BadInputError(f"{src}: the model file changed size while it was read; try again")
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _tree_sha256(folder: Path) -> str:
    """sha256 over every file of a folder: relative path, size and bytes, in sorted order."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for file_name in sorted(files):
            file_path = Path(root) / file_name
            relative = file_path.relative_to(folder).as_posix().encode("utf-8", errors="surrogateescape")
            digest.update(relative + b"\0" + str(file_path.stat().st_size).encode() + b"\0")
            digest.update(bytes.fromhex(_file_sha256(file_path)))
    return digest.hexdigest()


# --- .keras zip -----------------------------------------------------------------------------


def _read_keras_zip(src: Path, p: Path) -> StaticModel:
    try:
        with zipfile.ZipFile(src) as archive:
            listed_names = archive.namelist()
            names = set(listed_names)
            if len(names) != len(listed_names):
                twice = sorted(n for n in names if listed_names.count(n) > 1)
                # Readers disagree on which copy of a member they take: two readings of one file.
                raise BadInputError(f"{p}: the .keras archive holds {twice[0]!r} more than once; refusing it")
            if "config.json" not in names:
                listed = ", ".join(sorted(names)[:5]) or "nothing"
                raise BadInputError(f"{p}: the .keras archive has no config.json (it holds {listed})")
            config_bytes = _zip_member(archive, "config.json", p)
            metadata_bytes = _zip_member(archive, "metadata.json", p) if "metadata.json" in names else None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise BadInputError(f"{p}: corrupt or truncated .keras zip: {_first_line(exc)}") from None
    config = _parse_json(config_bytes, p, "config.json")
    if not isinstance(config, Mapping):
        raise BadInputError(f"{p}: config.json is not a JSON object")
    notes: list[str] = []
    version: str | None = None
    if metadata_bytes is None:
        notes.append("the archive has no metadata.json: the Keras version is unknown")
    else:
        metadata = _parse_json(metadata_bytes, p, "metadata.json")
        raw_version = metadata.get("keras_version") if isinstance(metadata, Mapping) else None
        version = raw_version if isinstance(raw_version, str) else None
    if "model.weights.h5" not in names:
        notes.append("the archive has no model.weights.h5: a live load would have no weights")
    compile_config = config.get("compile_config")
    return _build(
        p,
        FORMAT_KERAS_ZIP,
        model_config=config,
        compile_config=compile_config if isinstance(compile_config, Mapping) else None,
        keras_version=version,
        notes=notes,
    )


def _zip_member(archive: zipfile.ZipFile, name: str, p: Path) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_CONFIG_BYTES:
        raise BadInputError(
            f"{p}: {name} declares {info.file_size} bytes, over the {MAX_CONFIG_BYTES // 2**20} MB "
            "limit for a model config; refusing to unpack it"
        )
    with archive.open(info) as member:
        # The declared size can lie: never read more than the limit whatever the header says.
        data = member.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise BadInputError(f"{p}: {name} unpacks to more than {MAX_CONFIG_BYTES // 2**20} MB; refusing it")
    return data


# --- legacy .h5 -----------------------------------------------------------------------------


_H5_ATTRIBUTES = ("keras_version", "model_config", "training_config")


def _read_h5(src: Path, p: Path) -> StaticModel:
    texts = hdf5.root_attributes(src, _H5_ATTRIBUTES, limit=MAX_CONFIG_BYTES, name=p)
    model_config_text = texts.get("model_config")
    if model_config_text is None:
        raise BadInputError(
            f"{p}: an HDF5 file without a model_config attribute: not a saved Keras model "
            "(a weights-only file from save_weights?)"
        )
    model_config = _parse_json(model_config_text.encode("utf-8"), p, "the model_config attribute")
    if not isinstance(model_config, Mapping):
        raise BadInputError(f"{p}: the model_config attribute is not a JSON object")
    training_config: Mapping[str, Any] | None = None
    training_config_text = texts.get("training_config")
    if training_config_text is not None:
        parsed = _parse_json(training_config_text.encode("utf-8"), p, "the training_config attribute")
        if not isinstance(parsed, Mapping):
            raise BadInputError(f"{p}: the training_config attribute is not a JSON object")
        training_config = parsed
    return _build(
        p,
        FORMAT_H5,
        model_config=model_config,
        compile_config=training_config,
        keras_version=texts.get("keras_version"),
        notes=[],
    )


# --- SavedModel -----------------------------------------------------------------------------


def _read_savedmodel(src: Path, p: Path) -> StaticModel:
    contents = savedmodel.read_folder(src, limit=MAX_CONFIG_BYTES, name=p)
    tf_version = contents.tensorflow_version
    notes: list[str] = []
    if tf_version:
        notes.append(f"saved by TensorFlow {tf_version}")
    root: Mapping[str, Any] | None = None
    if contents.keras_metadata is not None:
        parsed = _parse_json(contents.keras_metadata, p, "keras_metadata.pb")
        root = parsed if isinstance(parsed, Mapping) else None
    if root is not None and isinstance(root.get("model_config"), Mapping):
        raw_version = root.get("keras_version")
        training_config = root.get("training_config")
        notes.append("read from keras_metadata.pb (a tf.keras SavedModel)")
        return _build(
            p,
            FORMAT_SAVEDMODEL,
            model_config=root["model_config"],
            compile_config=training_config if isinstance(training_config, Mapping) else None,
            keras_version=raw_version if isinstance(raw_version, str) else None,
            notes=notes,
        )
    if root is not None:
        notes.append("keras_metadata.pb has no model_config (a subclassed model?)")
        raw_version = root.get("keras_version")
        version = raw_version if isinstance(raw_version, str) else None
    else:
        notes.append(
            "no keras_metadata.pb: saved by Keras 3 model.export() or tf.saved_model.save, "
            "so no Keras config is stored; the head needs a live load"
        )
        version = None
    notes.extend(contents.signature_notes)
    family, family_notes = keras_family_for_version(version)
    return StaticModel(
        path=str(p),
        format=FORMAT_SAVEDMODEL,
        head=None,
        keras_version=version,
        keras_family=family,
        read_mode=READ_NEEDS_LIVE,
        notes=tuple(notes + family_notes),
    )


# --- from configs to a head -----------------------------------------------------------------


def _build(
    p: Path,
    file_format: str,
    *,
    model_config: Mapping[str, Any],
    compile_config: Mapping[str, Any] | None,
    keras_version: str | None,
    notes: list[str],
) -> StaticModel:
    walker = _HeadWalker(p)
    loss: LossSpec | None = None
    metrics: tuple[str, ...] = ()
    try:
        found = walker.model_head(model_config, depth=0)
        if not compile_config:
            notes.append("the model was saved uncompiled: no loss or metrics to check")
        else:
            loss = _loss_spec(compile_config.get("loss"), p)
            names: list[str] = []
            for key in ("metrics", "weighted_metrics"):
                names.extend(_metric_names(compile_config.get(key), p, notes))
            # One entry per metric: 'acc' in metrics and 'accuracy' in weighted_metrics are one.
            metrics = tuple(dict.fromkeys(normalise_metric_name(n) for n in names))
            if loss is None:
                notes.append("the compile config has no loss")
    except RecursionError:
        raise BadInputError(f"{p}: the model config is nested too deeply to read") from None
    family, family_notes = keras_family_for_version(keras_version)
    head = HeadSpec(
        units=found.units,
        activation_chain=found.chain,
        loss=loss,
        metrics=metrics,
        keras_family=family,
        source=f"static:{p}",
    )
    return StaticModel(
        path=str(p),
        format=file_format,
        head=head,
        keras_version=keras_version,
        keras_family=family,
        read_mode=READ_STATIC,
        lambda_layers=tuple(
            dict.fromkeys(
                [*_lambda_layer_names(model_config), *_lambda_layer_names(compile_config, "compile_config")]
            )
        ),
        output_layers=found.layers,
        notes=tuple(notes + walker.notes + family_notes),
    )


@dataclass(frozen=True)
class _FoundHead:
    units: int
    chain: tuple[str, ...]
    layers: tuple[str, ...]


class _HeadWalker:
    """Walks back from a model's output to the layer that produced it, collecting activations."""

    def __init__(self, p: Path) -> None:
        self.p = p
        self.notes: list[str] = []
        self.visited = 0

    def fail(self, problem: str) -> BadInputError:
        return BadInputError(f"{self.p}: {problem}")

    def model_head(self, model: Mapping[str, Any], depth: int) -> _FoundHead:
        if depth > 50:
            raise self.fail("models nested more than 50 deep; refusing the config")
        class_name, config = _class_and_config(model)
        if isinstance(config, list):  # Keras <= 2.1 Sequential: the config is the layer list
            return self.walk(_sequential_back(config), depth)
        if not isinstance(config, Mapping) or not isinstance(config.get("layers"), list):
            raise self.fail(
                f"the model ({class_name or 'no class name'}) has no layer list in its config "
                "(a subclassed model?): its head cannot be read statically"
            )
        if class_name == "Sequential" or "output_layers" not in config:
            return self.walk(_sequential_back(config["layers"]), depth)
        return self.walk(self._functional_back(config), depth)

    def walk(self, layers_back: Iterable[Mapping[str, Any]], depth: int) -> _FoundHead:
        """From the output backwards: activations after the producer, then the producer itself."""
        after_chain: list[str] = []
        after_layers: list[str] = []
        for layer in layers_back:
            self.visited += 1
            if self.visited > _MAX_WALK:
                raise self.fail(f"more than {_MAX_WALK} layers on the way to the output; refusing")
            class_name, config = _class_and_config(layer)
            name = _layer_name(layer)
            if class_name in _WRAPPER_CLASSES and isinstance(config, Mapping):
                wrapped = config.get("layer")
                if isinstance(wrapped, Mapping):  # TimeDistributed(Dense(...)): read the inner layer
                    layer = wrapped
                    class_name, config = _class_and_config(wrapped)
            if _is_model(class_name, config):
                inner_head = self.model_head(layer, depth + 1)
                self.notes.append(f"the head is inside the nested model {name!r}")
                return _FoundHead(
                    inner_head.units,
                    inner_head.chain + tuple(reversed(after_chain)),
                    inner_head.layers + tuple(reversed(after_layers)),
                )
            if not isinstance(config, Mapping):
                raise self.fail(f"layer {name!r} ({class_name}) has no config object")
            if class_name in _PRODUCER_CLASSES:
                units = _producer_units(class_name, config)
                if units is None:
                    raise self.fail(f"cannot tell the output units of layer {name!r} ({class_name})")
                return _FoundHead(
                    units,
                    (_activation_name(config.get("activation")), *reversed(after_chain)),
                    (class_name, *reversed(after_layers)),
                )
            if class_name == "Activation":
                after_chain.append(_activation_name(config.get("activation")))
            elif class_name in _ACTIVATION_CLASSES:
                after_chain.append(_ACTIVATION_CLASSES[class_name])
            elif class_name == "TFOpLambda" and (op := _tf_op_activation(config.get("function"))):
                after_chain.append(op)  # tf.nn.softmax(logits) in a tf-keras functional model
            elif class_name == "Lambda":
                self.notes.append(
                    f"Lambda layer {name!r} follows the last Dense; its code is not read or run, "
                    "so an activation it may apply is missing from the activation chain"
                )
            elif class_name == "InputLayer":
                break
            elif class_name not in _PASS_THROUGH_CLASSES:
                raise self.fail(
                    f"cannot interpret the output layer {name!r} ({class_name}) after the last Dense: "
                    "lossaudit follows Activation, Softmax, Dropout, Flatten, Reshape, normalisation "
                    "and pooling layers and nested models"
                )
            after_layers.append(class_name)
        raise self.fail("no Dense, EinsumDense or Conv layer produces the model's output")

    def _functional_back(self, config: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        layers = [layer for layer in config["layers"] if isinstance(layer, Mapping)]
        by_name = {_layer_name(layer): layer for layer in layers}
        outputs = _tensor_refs(config.get("output_layers"))
        if len(outputs) != 1:
            if not outputs:
                raise self.fail("the functional model lists no output layers")
            names = ", ".join(dict.fromkeys(name for name, _ in outputs))
            raise self.fail(f"multi-output models are not supported yet: outputs {names}")
        name, node_index = outputs[0]
        seen: set[tuple[str, int]] = set()
        while True:
            if (name, node_index) in seen:
                raise self.fail(f"the layer graph has a cycle through {name!r}")
            seen.add((name, node_index))
            layer = by_name.get(name)
            if layer is None:
                raise self.fail(f"the config refers to layer {name!r}, which it does not define")
            yield layer
            inbound = _inbound_refs(layer.get("inbound_nodes"), node_index)
            if not inbound:
                class_name, _ = _class_and_config(layer)
                if class_name != "InputLayer" and layer.get("inbound_nodes"):
                    raise self.fail(f"cannot follow the inputs of layer {name!r} ({class_name})")
                return
            if len(inbound) > 1:
                class_name, _ = _class_and_config(layer)
                raise self.fail(
                    f"layer {name!r} ({class_name}) between the last Dense and the output merges "
                    f"{len(inbound)} inputs; lossaudit reads a single Dense head"
                )
            name, node_index = inbound[0]


def _sequential_back(layers: list[Any]) -> Iterator[Mapping[str, Any]]:
    for layer in reversed(layers):
        if isinstance(layer, Mapping):
            yield layer


def _class_and_config(obj: Mapping[str, Any]) -> tuple[str, Any]:
    class_name = obj.get("class_name")
    name = class_name if isinstance(class_name, str) else ""
    # Keras 2 custom objects are registered as "Package>Class"; the class is the last part.
    return name.rsplit(">", 1)[-1], obj.get("config")


def _layer_name(layer: Mapping[str, Any]) -> str:
    name = layer.get("name")
    if isinstance(name, str):
        return name
    config = layer.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("name"), str):
        return str(config["name"])
    return "?"


def _is_model(class_name: str, config: Any) -> bool:
    if class_name in _MODEL_CLASSES:
        return True
    return isinstance(config, Mapping) and isinstance(config.get("layers"), list)


def _producer_units(class_name: str, config: Mapping[str, Any]) -> int | None:
    if class_name == "Dense":
        value = config.get("units", config.get("output_dim"))  # Keras 1 called it output_dim
    elif class_name == "EinsumDense":
        shape = config.get("output_shape")
        value = shape[-1] if isinstance(shape, list) and shape else shape
    else:
        value = config.get("filters")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def _activation_name(value: Any) -> str:
    """An activation as saved: a name, None, or a serialised function or object.

    The name may be TensorFlow's (``softmax_v2`` for ``tf.nn.softmax``, which Keras 3 saves as
    ``{"module": "builtins", "class_name": "function", "config": "softmax_v2"}``) or qualified
    (``tf.math.sigmoid``): :class:`HeadSpec` normalises it (:mod:`lossaudit.core.names`).
    """
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        class_name, _ = _class_and_config(value)
        if class_name in _ACTIVATION_CLASSES:
            return _ACTIVATION_CLASSES[class_name]
        name = _serialised_name(value)
        if name:
            return name
    return str(value)


def _tf_op_activation(function: Any) -> str | None:
    """The activation a tf-keras ``TFOpLambda`` layer applies, from the TF symbol its config names
    (``nn.softmax`` for ``tf.nn.softmax``, ``math.sigmoid``), or None for other TF ops."""
    if not isinstance(function, str) or not function.strip():
        return None
    name = normalise_activation(function.strip().rsplit(".", 1)[-1])
    return name if name in ACTIVATIONS else None


def _serialised_name(value: Mapping[str, Any]) -> str:
    """The name of a serialised function or object, as the name normalisers read it.

    * Keras 3 / tf-keras ``.keras`` function: ``{"module": "builtins", "class_name": "function",
      "config": "softmax_v2"}`` -> ``softmax_v2``; a registered function's config is already
      ``package>name``; a function from another module is qualified by it.
    * tf-keras ``.h5`` object: ``{"class_name": "Custom>MyLoss"}`` keeps its registered name.
    * Keras 3 / tf-keras ``.keras`` object: built-ins have a ``keras.*`` module (the name is the
      class); a custom class keeps its registered ``package>name`` or is qualified by its module
      (``None`` is what Keras writes for ``__main__``), so :func:`lossaudit.core.names.is_custom`
      recognises it.
    """
    raw = value.get("class_name")
    class_name = raw if isinstance(raw, str) else ""
    config = value.get("config")
    module = value.get("module")
    module_name = module if isinstance(module, str) else None
    if class_name == "function" and isinstance(config, str):
        return qualified_name(config, module_name)
    if REGISTERED_SEPARATOR in class_name:
        return class_name
    if "module" in value and class_name:
        module_name = module_name or "__main__"
        if qualified_name(class_name, module_name) != class_name:  # not a Keras / TF module
            registered = value.get("registered_name")
            if isinstance(registered, str) and REGISTERED_SEPARATOR in registered:
                return registered
            return f"{module_name}.{class_name}"
    return class_name


def _tensor_refs(value: Any) -> list[tuple[str, int]]:
    """``output_layers``: Keras 3 writes ``[name, node, tensor]`` for one output, a list of those
    for several, or a dict of them for dict outputs; Keras 2 always a list of lists."""
    if isinstance(value, Mapping):
        refs: list[tuple[str, int]] = []
        for item in value.values():
            refs.extend(_tensor_refs(item))
        return refs
    if isinstance(value, list) and value:
        if isinstance(value[0], str):
            node = value[1] if len(value) > 1 and isinstance(value[1], int) else 0
            return [(value[0], node)]
        refs = []
        for item in value:
            refs.extend(_tensor_refs(item))
        return refs
    return []


def _inbound_refs(nodes: Any, node_index: int) -> list[tuple[str, int]]:
    """The (layer, node) pairs feeding one call of a layer.

    Keras 2: ``inbound_nodes = [[[name, node, tensor, kwargs], ...], ...]`` (one list per call).
    Keras 3: ``inbound_nodes = [{"args": [...], "kwargs": {...}}, ...]`` where every input tensor
    is ``{"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, tensor]}}``.
    """
    if not isinstance(nodes, list) or not nodes:
        return []
    node = nodes[node_index] if 0 <= node_index < len(nodes) else nodes[-1]
    if isinstance(node, Mapping):
        return _keras_histories(node.get("args"))
    refs: list[tuple[str, int]] = []
    if isinstance(node, list) and node and isinstance(node[0], str):
        # tf.keras >= 2.4 writes a call with one tensor argument (TFOpLambda) as a bare entry.
        return [(node[0], node[1] if len(node) > 1 and isinstance(node[1], int) else 0)]
    if isinstance(node, list):
        for entry in node:
            if isinstance(entry, list) and entry and isinstance(entry[0], str):
                refs.append((entry[0], entry[1] if len(entry) > 1 and isinstance(entry[1], int) else 0))
    return refs


def _keras_histories(value: Any) -> list[tuple[str, int]]:
    refs: list[tuple[str, int]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            config = item.get("config")
            if item.get("class_name") == "__keras_tensor__" and isinstance(config, Mapping):
                history = config.get("keras_history")
                if isinstance(history, list) and history and isinstance(history[0], str):
                    node = history[1] if len(history) > 1 and isinstance(history[1], int) else 0
                    refs.append((history[0], node))
            else:
                stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return refs


def _lambda_layer_names(config: Mapping[str, Any] | None, owner: str = "?") -> list[str]:
    """Every Lambda layer anywhere in the config (nested models and wrappers included), and every
    layer whose config holds a serialised ``lambda`` (Keras 3 writes ``{"class_name":
    "__lambda__"}`` for ``activation=lambda x: ...``; ``owner`` names one outside any layer)."""
    names: list[str] = []
    stack: list[tuple[Any, str]] = [(config, owner)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, Mapping):
            class_name = _class_and_config(item)[0]
            if class_name == "Lambda":
                names.append(_layer_name(item))
            elif class_name == "__lambda__":
                names.append(where)
            if isinstance(item.get("config"), Mapping) and _layer_name(item) != "?":
                where = _layer_name(item)
            stack.extend(
                (value, "compile_config" if key == "compile_config" else where)
                for key, value in reversed(list(item.items()))
            )
        elif isinstance(item, list):
            stack.extend((value, where) for value in reversed(item))
    return list(dict.fromkeys(names))


# --- loss and metrics -----------------------------------------------------------------------


def _loss_spec(value: Any, p: Path) -> LossSpec | None:
    """A compiled loss: a name, a serialised loss object or function, or one entry per output."""
    if value is None:
        return None
    if isinstance(value, str):
        return LossSpec(value)
    if isinstance(value, list):
        entries = [v for v in value if v is not None]
        if len(entries) > 1:
            raise BadInputError(f"{p}: the model compiles {len(entries)} losses (one per output?)")
        return _loss_spec(entries[0], p) if entries else None
    if not isinstance(value, Mapping):
        raise BadInputError(f"{p}: cannot read the compiled loss {str(value)[:80]!r}")
    if "class_name" not in value:  # {output name: loss}
        return _loss_spec(list(value.values()), p)
    class_name, config = _class_and_config(value)
    if class_name == "function" and isinstance(config, str):
        # Keras 3: a loss function, e.g. keras.losses.categorical_crossentropy
        return LossSpec(_serialised_name(value))
    if not isinstance(config, Mapping):
        config = {}
    name = _serialised_name(value)
    if class_name == "LossFunctionWrapper":
        fn = config.get("fn")
        if isinstance(fn, Mapping):
            name = _serialised_name(fn)
        else:
            name = fn if isinstance(fn, str) else str(config.get("name", class_name))
    from_logits = config.get("from_logits", False)
    smoothing = config.get("label_smoothing", 0.0)
    if not isinstance(from_logits, bool):
        raise BadInputError(f"{p}: the loss's from_logits is {from_logits!r}, not true or false")
    if isinstance(smoothing, bool) or not isinstance(smoothing, int | float) or not 0 <= smoothing < 1:
        raise BadInputError(f"{p}: the loss's label_smoothing is {smoothing!r}, not a number in [0, 1)")
    return LossSpec(name, from_logits, float(smoothing))


def _metric_names(value: Any, p: Path, notes: list[str]) -> list[str]:
    """Declared metric names, flattened over per-output lists and dicts (tf-keras nests them)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        names: list[str] = []
        for item in value:
            names.extend(_metric_names(item, p, notes))
        return names
    if not isinstance(value, Mapping):
        raise BadInputError(f"{p}: cannot read the compiled metric {str(value)[:80]!r}")
    if "class_name" not in value:  # {output name: metrics}
        return _metric_names(list(value.values()), p, notes)
    class_name, config = _class_and_config(value)
    if class_name == "function" and isinstance(config, str):
        return [_serialised_name(value)]
    if not isinstance(config, Mapping):
        config = {}
    if class_name == "MeanMetricWrapper":
        # tf-keras saves the built metric: the user's name plus the function it resolved to.
        declared = str(config.get("name", "metric"))
        fn = config.get("fn")
        if isinstance(fn, str) and snake_case(fn) != snake_case(declared):
            notes.append(
                f"metric {declared!r} was saved as {fn}: resolved when the model was saved (from the "
                "training labels if it had been trained, else from its output shape)"
            )
        return [declared]
    # A metric object: its class decides what it computes, whatever name the user gave it.
    return [_serialised_name(value)]


# --- Keras family -----------------------------------------------------------------------------

_VERSION = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?(.*)$")


def keras_family_for_version(version: str | None) -> tuple[KerasFamily, list[str]]:
    """The Keras family that a saved ``keras_version`` implies, and notes on what it cannot show.

    * 3.x -> Keras 3.
    * tf.keras ``"2.3.0-tf"`` (TF 2.2) and later, tf-keras 2.x, and standalone Keras >= 2.4 (a
      wrapper around tf.keras) -> tf_keras.
    * standalone Keras <= 2.3.x, tf.keras ``"2.2.4-tf"`` (TF <= 2.1) and Keras 1 -> legacy.
    """
    graph_mode = (
        "TF1 graph mode (tf.compat.v1.disable_eager_execution) cannot be seen from the file: "
        "if the model was trained in it, 'accuracy' followed the legacy loss-based rule"
    )
    if version is None:
        return KerasFamily.KERAS3, ["unknown Keras version: assuming Keras 3"]
    match = _VERSION.match(version)
    if match is None:
        return KerasFamily.KERAS3, [f"unrecognised Keras version {version!r}: assuming Keras 3"]
    major, minor = int(match[1]), int(match[2])
    patch = int(match[3] or 0)
    tf_build = "tf" in match[4]
    if major >= 3:
        return KerasFamily.KERAS3, []
    if major <= 1:
        return KerasFamily.LEGACY, [f"saved by Keras {version}: 'accuracy' follows the legacy rule"]
    if tf_build:
        if (minor, patch) >= (3, 0):
            return KerasFamily.TF_KERAS, [graph_mode]
        return KerasFamily.LEGACY, [
            f"saved by tf.keras {version} (TensorFlow <= 2.1): 'accuracy' follows the legacy rule"
        ]
    if minor >= 4:
        return KerasFamily.TF_KERAS, [graph_mode]
    return KerasFamily.LEGACY, [f"saved by Keras {version}: 'accuracy' follows the legacy rule"]


# --- helpers --------------------------------------------------------------------------------


def _u16(data: bytes, start: int) -> int:
    return int.from_bytes(data[start : start + 2], "little")


def _parse_json(data: bytes, p: Path, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInputError(f"{p}: {what} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{p}: {what} is not valid JSON: {_first_line(exc)}") from None
    except RecursionError:
        raise BadInputError(f"{p}: {what} is nested too deeply to read") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
