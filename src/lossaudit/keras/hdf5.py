"""The HDF5 file format, as far as a legacy Keras ``.h5`` model's head needs it, read as data.

Keras 1/2, tf.keras, tf-keras and Keras 3 ``model.save("m.h5")`` keep the model's configs and
version in string attributes of the HDF5 root group (``model_config``, ``training_config``,
``keras_version``). This module finds HDF5 signatures (:func:`signature_offsets`, for telling the
format from the content) and reads those root attributes (:func:`root_attributes`); no dataset is
ever read. :mod:`lossaudit.keras.static` turns the text into a head.

Two readers, the small one first. :func:`root_attributes_direct` follows the HDF5 file format
specification for the layouts h5py writes by default and imports nothing beyond the standard
library; h5py (:func:`root_attributes_h5py`, whose import with numpy costs 0.15-0.5 s, most of the
static read's 0.5 s budget) reads the rarer valid layouts the direct reader declines
(:class:`UnsupportedLayout`). A file whose structure contradicts itself is bad input and never
handed to h5py: libhdf5 can loop forever on such files. tests/keras/test_hdf5.py checks the two
readers agree and fuzzes the direct one.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from lossaudit.errors import BadInputError

SIGNATURE = b"\x89HDF\r\n\x1a\n"
"""The 8 bytes an HDF5 superblock starts with."""
FIRST_USER_BLOCK = 512
"""HDF5 may sit behind a user block: libhdf5 looks for the signature at 0, then at every power of
two from 512 up to the end of the file (H5FD_locate_signature), and so does
:func:`signature_offsets`."""


def signature_offsets(fh: Any, size: int) -> list[int]:
    """Offsets where libhdf5 would find its signature in an open binary file of ``size`` bytes:
    0, then 512, 1024, 2048..."""
    found: list[int] = []
    offset = 0
    while offset + 8 <= size:
        fh.seek(offset)
        if fh.read(8) == SIGNATURE:
            found.append(offset)
        offset = FIRST_USER_BLOCK if offset == 0 else offset * 2
    return found


def root_attributes(
    src: Path, names: Collection[str], *, limit: int, name: Path | None = None
) -> dict[str, str]:
    """The root group's string attributes in ``names`` (those present), as text.

    ``limit`` bounds one value's size in bytes; ``name`` is the path to name in messages (default
    ``src``). The direct reader reads the file; a valid layout it does not handle goes to h5py.

    Raises
    ------
    BadInputError
        One line naming the file: unreadable, truncated or corrupt, an attribute over ``limit``
        or not a single string, or an attribute stored twice.
    """
    try:
        return root_attributes_direct(src, names, limit=limit, name=name)
    except UnsupportedLayout:
        return root_attributes_h5py(src, names, limit=limit, name=name)


# --- the direct reader -------------------------------------------------------------------------


class UnsupportedLayout(Exception):
    """The direct HDF5 reader met a layout it does not handle: h5py reads the file instead."""


class _Corrupt(Exception):
    """The file's structure contradicts itself (truncated, offsets past the end, a missing heap
    object). Reported as bad input, not handed to h5py: libhdf5 can loop forever on such files."""


_H5_MAX_MESSAGES = 100_000


class _H5File:
    """Bounded reads at absolute offsets; a read past the end means a damaged file. ``limit``
    bounds the size of one string value (and of the heap collection holding it)."""

    def __init__(self, fh: Any, size: int, limit: int) -> None:
        self.fh = fh
        self.size = size
        self.limit = limit

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise _Corrupt(f"an offset points past the end of the file ({offset} + {length} > {self.size})")
        self.fh.seek(offset)
        data = bytes(self.fh.read(length))
        if len(data) != length:
            raise _Corrupt("short read")
        return data


def root_attributes_direct(
    src: Path, names: Collection[str], *, limit: int, name: Path | None = None
) -> dict[str, str]:
    """The root group's string attributes in ``names``, read per the HDF5 file format
    specification (3.0).

    Handles what h5py writes for Keras: superblock v0-v3 with 8-byte offsets and lengths, root
    object header v1 or v2 with continuation blocks, compact attribute messages (v1-v3) holding a
    scalar fixed-length or variable-length string (the latter in a global heap collection).
    Other layouts (dense attribute storage, a user block, shared datatypes) raise
    :class:`UnsupportedLayout`, and the caller asks h5py instead; a structure that contradicts itself
    (truncated, offsets past the end) is bad input.
    """
    p = src if name is None else name
    try:
        with src.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            h5 = _H5File(fh, size, limit)
            root = _h5_root_header_address(h5)
            texts: dict[str, str] = {}
            for attribute, datatype, dataspace, data in _h5_attribute_messages(h5, root):
                if attribute in names:
                    if attribute in texts:
                        # libhdf5 and this reader could take different ones: two readings.
                        raise _Corrupt(f"the root attribute {attribute} appears twice")
                    texts[attribute] = _h5_string_value(h5, datatype, dataspace, data)
            return texts
    except _Corrupt as exc:
        raise BadInputError(f"{p}: corrupt or truncated HDF5 file: {exc}") from None
    except (IndexError, ValueError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{p}: corrupt HDF5 file: {_first_line(exc)}") from None
    except OSError as exc:
        raise BadInputError(f"{p}: cannot read the HDF5 file: {_first_line(exc)}") from None


def _le(data: bytes, start: int, width: int) -> int:
    if start + width > len(data):
        raise _Corrupt("a field runs past the end of its block")
    return int.from_bytes(data[start : start + width], "little")


def _h5_root_header_address(h5: _H5File) -> int:
    block = h5.read(0, min(h5.size, 96))
    if block[:8] != SIGNATURE:
        raise UnsupportedLayout("no signature at offset 0 (user block?)")
    version = block[8]
    if version in (0, 1):
        offset_size, length_size = block[13], block[14]
        addresses = 24 if version == 0 else 28
    elif version in (2, 3):
        offset_size, length_size = block[9], block[10]
        addresses = 12
    else:
        raise _Corrupt(f"unknown superblock version {version}")
    if offset_size != 8 or length_size != 8:
        raise UnsupportedLayout("offsets or lengths not 8 bytes")
    if version in (0, 1):
        base, eof = _le(block, addresses, 8), _le(block, addresses + 16, 8)
        root = _le(block, addresses + 32 + 8, 8)  # symbol table entry: link name offset, header address
    else:
        base, eof = _le(block, addresses, 8), _le(block, addresses + 16, 8)
        root = _le(block, addresses + 24, 8)
    if base != 0:
        raise UnsupportedLayout("base address is not 0")
    if eof > h5.size:
        raise _Corrupt(f"the file has {h5.size} bytes but its superblock says {eof}")
    return root


def _h5_attribute_messages(h5: _H5File, address: int) -> Iterator[tuple[str, bytes, bytes, bytes]]:
    """(name, datatype, dataspace, data) of every compact attribute of one object header."""
    for msg_type, msg_flags, body in _h5_header_messages(h5, address):
        if msg_type == 0x15 and len(body) >= 2:
            # Attribute Info: attributes may live in a fractal heap (dense storage).
            flags = body[1]
            heap = _le(body, 2 + (2 if flags & 1 else 0), 8)
            if heap != 0xFFFFFFFFFFFFFFFF:
                raise UnsupportedLayout("dense attribute storage")
        if msg_type != 0x0C:
            continue
        if msg_flags & 0x02:
            raise UnsupportedLayout("shared attribute message")
        yield _h5_attribute(body)


def _h5_header_messages(h5: _H5File, address: int) -> Iterator[tuple[int, int, bytes]]:
    """(type, flags, body) of the messages of an object header, following continuations."""
    prefix = h5.read(address, 16)
    if prefix[:4] == b"OHDR":
        version_flags = h5.read(address + 4, 2)
        if version_flags[0] != 2:
            raise _Corrupt(f"unknown object header version {version_flags[0]}")
        flags = version_flags[1]
        pos = address + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 0x03)
        chunk_size = _le(h5.read(pos, width), 0, width)
        chunks = [(pos + width, chunk_size, True)]
        creation_order = bool(flags & 0x04)
    else:
        if prefix[0] != 1:
            raise _Corrupt(f"unknown object header version {prefix[0]}")
        chunks = [(address + 16, _le(prefix, 8, 4), False)]
        creation_order = False
    seen = 0
    while chunks:
        start, length, v2 = chunks.pop(0)
        block = h5.read(start, length)
        pos = 0
        # A v2 chunk ends with a 4-byte checksum; a continuation chunk starts with "OCHK".
        end = length - 4 if v2 else length
        if v2 and block[:4] == b"OCHK":
            pos = 4
        message_header = (6 if creation_order else 4) if v2 else 8
        while pos + message_header <= end:
            seen += 1
            if seen > _H5_MAX_MESSAGES:
                raise _Corrupt("too many object header messages (a continuation loop?)")
            if v2:
                msg_type, size, msg_flags = block[pos], _le(block, pos + 1, 2), block[pos + 3]
                pos += 4 + (2 if creation_order else 0)
            else:
                msg_type, size, msg_flags = _le(block, pos, 2), _le(block, pos + 2, 2), block[pos + 4]
                pos += 8
            body = block[pos : pos + size]
            if len(body) != size:
                raise _Corrupt("a header message runs past the end of its chunk")
            pos += size
            if msg_type == 0x10:  # continuation: offset, length
                target, target_length = _le(body, 0, 8), _le(body, 8, 8)
                chunks.append((target, target_length, v2))
                continue
            yield msg_type, msg_flags, body


def _h5_attribute(body: bytes) -> tuple[str, bytes, bytes, bytes]:
    version = body[0]
    if version == 1:
        name_size, type_size, space_size = _le(body, 2, 2), _le(body, 4, 2), _le(body, 6, 2)
        pos, pad = 8, 8
    elif version in (2, 3):
        if body[1] & 0x03:
            raise UnsupportedLayout("shared datatype or dataspace")
        name_size, type_size, space_size = _le(body, 2, 2), _le(body, 4, 2), _le(body, 6, 2)
        pos, pad = (8 if version == 2 else 9), 1
    else:
        raise _Corrupt(f"unknown attribute message version {version}")

    def take(size: int) -> bytes:
        nonlocal pos
        chunk = body[pos : pos + size]
        if len(chunk) != size:
            raise _Corrupt("an attribute field runs past the end of its message")
        pos += -(-size // pad) * pad
        return chunk

    name = take(name_size).split(b"\0", 1)[0].decode("utf-8")
    datatype = take(type_size)
    dataspace = take(space_size)
    return name, datatype, dataspace, body[pos:]


def _h5_string_value(h5: _H5File, datatype: bytes, dataspace: bytes, data: bytes) -> str:
    if len(dataspace) < 4 or dataspace[1] != 0 or (dataspace[0] == 2 and dataspace[3] != 0):
        raise _Corrupt("a Keras attribute is not a single string")
    type_class = datatype[0] & 0x0F
    if type_class == 3:  # fixed-length string
        size = _le(datatype, 4, 4)
        raw = data[:size]
        if len(raw) != size:
            raise _Corrupt("a string runs past the end of its message")
        padding = datatype[1] & 0x0F
        text = raw.rstrip(b" ") if padding == 2 else raw.split(b"\0", 1)[0]
        return text.decode("utf-8", errors="replace")
    if type_class == 9 and datatype[1] & 0x0F == 1:  # variable-length string
        length = _le(data, 0, 4)
        collection, index = _le(data, 4, 8), _le(data, 12, 4)
        if length > h5.limit:
            raise _Corrupt(f"a string attribute declares {length} bytes, over the limit")
        return _h5_global_heap_object(h5, collection, index, length).decode("utf-8", errors="replace")
    raise _Corrupt(f"a Keras attribute is not a string (HDF5 datatype class {type_class})")


def _h5_global_heap_object(h5: _H5File, address: int, index: int, length: int) -> bytes:
    header = h5.read(address, 16)
    if header[:4] != b"GCOL" or header[4] != 1:
        raise _Corrupt("a string points to something that is not a global heap collection")
    collection_size = _le(header, 8, 8)
    if collection_size > h5.limit + 4096:
        raise _Corrupt(f"a global heap collection declares {collection_size} bytes, over the limit")
    block = h5.read(address, collection_size)
    pos = 16
    while pos + 16 <= collection_size:
        object_index, object_size = _le(block, pos, 2), _le(block, pos + 8, 8)
        if object_index == 0:  # free space: the rest of the collection
            break
        if object_index == index:
            value = block[pos + 16 : pos + 16 + object_size]
            if len(value) != object_size or object_size < length:
                raise _Corrupt("a heap object runs past the end of its collection")
            return value[:length]
        pos += 16 + -(-object_size // 8) * 8
    raise _Corrupt(f"heap object {index} of the collection at {address} is missing")


# --- the h5py fallback -------------------------------------------------------------------------


def root_attributes_h5py(
    src: Path, names: Collection[str], *, limit: int, name: Path | None = None
) -> dict[str, str]:
    """:func:`root_attributes` read by h5py: for the layouts :func:`root_attributes_direct` leaves
    to it. Its import (numpy + libhdf5) costs 0.15-0.5 s, which is why it comes second."""
    import h5py

    p = src if name is None else name
    texts: dict[str, str] = {}
    try:
        with h5py.File(src, "r") as h5:
            for attribute in names:
                text = _h5py_text(h5.attrs, attribute, p, limit)
                if text is not None:
                    texts[attribute] = text
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        line = _first_line(exc).replace(str(src), str(p))
        raise BadInputError(f"{p}: corrupt or truncated HDF5 file: {line}") from None
    return texts


def _h5py_text(attrs: Any, name: str, p: Path, limit: int) -> str | None:
    """A root attribute as text; Keras 2.2-era files store bytes, later ones str."""
    if name not in attrs:
        return None
    size = int(attrs.get_id(name).get_storage_size())
    if size > limit:
        raise BadInputError(f"{p}: the {name} attribute holds {size} bytes, over the limit; refusing it")
    value = attrs[name]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    raise BadInputError(f"{p}: the {name} attribute is not text ({type(value).__name__})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
