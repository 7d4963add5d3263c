"""A small, dependency-free (numpy only) GGUF v3 writer.

Layout written (all little-endian), following the GGUF specification in the ggml docs:

    magic "GGUF" | version u32 = 3 | tensor_count u64 | kv_count u64
    kv_count x (key: string, value_type u32, value)
    tensor_count x (name: string, n_dims u32, ne[n_dims] u64, ggml_type u32, offset u64)
    zero padding up to `alignment`
    tensor data, each tensor starting at an aligned offset (relative to the data section)

A string is a u64 byte length followed by UTF-8 bytes (no terminator). An array is the element type (u32),
the element count (u64), then the elements. Tensor dimensions are written in ggml order (ne[0] is the
innermost, contiguous dimension), i.e. the reverse of numpy's shape.

The writer is two-phase so that large models can be streamed: first describe every metadata value and
tensor (name, numpy shape, ggml type), then call `write()` with one iterable of byte chunks per tensor.
The output contains nothing time- or host-dependent, so the same input always gives the same bytes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
GGUF_DEFAULT_ALIGNMENT = 32


class ValueType(IntEnum):
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


class GGMLType(IntEnum):
    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q8_0 = 8
    BF16 = 30


# ggml type -> (elements per block, bytes per block)
GGML_BLOCK: dict[GGMLType, tuple[int, int]] = {
    GGMLType.F32: (1, 4),
    GGMLType.F16: (1, 2),
    GGMLType.BF16: (1, 2),
    GGMLType.Q8_0: (32, 2 + 32),
    GGMLType.Q4_0: (32, 2 + 16),
}

_SCALAR_FORMAT: dict[ValueType, str] = {
    ValueType.UINT8: "<B",
    ValueType.INT8: "<b",
    ValueType.UINT16: "<H",
    ValueType.INT16: "<h",
    ValueType.UINT32: "<I",
    ValueType.INT32: "<i",
    ValueType.FLOAT32: "<f",
    ValueType.BOOL: "<?",
    ValueType.UINT64: "<Q",
    ValueType.INT64: "<q",
    ValueType.FLOAT64: "<d",
}

_NUMPY_DTYPE: dict[ValueType, str] = {
    ValueType.UINT8: "<u1",
    ValueType.INT8: "<i1",
    ValueType.UINT16: "<u2",
    ValueType.INT16: "<i2",
    ValueType.UINT32: "<u4",
    ValueType.INT32: "<i4",
    ValueType.FLOAT32: "<f4",
    ValueType.BOOL: "<u1",
    ValueType.UINT64: "<u8",
    ValueType.INT64: "<i8",
    ValueType.FLOAT64: "<f8",
}


def tensor_nbytes(shape: Sequence[int], ggml_type: GGMLType) -> int:
    """Bytes taken by a tensor of numpy `shape` stored as `ggml_type`."""
    block, size = GGML_BLOCK[ggml_type]
    n = 1
    for d in shape:
        n *= int(d)
    if shape and int(shape[-1]) % block != 0:
        raise ValueError(f"row length {shape[-1]} is not a multiple of the {ggml_type.name} block size {block}")
    return n // block * size


def _pad_len(n: int, alignment: int) -> int:
    return (alignment - n % alignment) % alignment


def _encode_string(s: str) -> bytes:
    data = s.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # numpy order (outermost first)
    ggml_type: GGMLType
    nbytes: int
    offset: int  # relative to the start of the data section


class GGUFWriter:
    """Collects metadata and tensor descriptions, then writes a GGUF v3 file in one pass."""

    def __init__(self, alignment: int = GGUF_DEFAULT_ALIGNMENT) -> None:
        if alignment <= 0 or alignment % 8 != 0:
            raise ValueError("alignment must be a positive multiple of 8")
        self.alignment = alignment
        self._kv: list[tuple[str, bytes]] = []
        self._keys: set[str] = set()
        self._tensors: list[TensorInfo] = []
        self._data_size = 0
        if alignment != GGUF_DEFAULT_ALIGNMENT:
            self.add_uint32("general.alignment", alignment)

    # ---- metadata -------------------------------------------------------------------------------------

    def _add(self, key: str, vtype: ValueType, payload: bytes) -> None:
        if key in self._keys:
            raise KeyError(f"duplicate metadata key {key!r}")
        self._keys.add(key)
        self._kv.append((key, struct.pack("<I", int(vtype)) + payload))

    def add_scalar(self, key: str, value: float | bool, vtype: ValueType) -> None:
        if vtype in (ValueType.STRING, ValueType.ARRAY):
            raise ValueError("use add_string / add_array")
        self._add(key, vtype, struct.pack(_SCALAR_FORMAT[vtype], value))

    def add_uint32(self, key: str, value: int) -> None:
        self.add_scalar(key, int(value), ValueType.UINT32)

    def add_int32(self, key: str, value: int) -> None:
        self.add_scalar(key, int(value), ValueType.INT32)

    def add_uint64(self, key: str, value: int) -> None:
        self.add_scalar(key, int(value), ValueType.UINT64)

    def add_float32(self, key: str, value: float) -> None:
        self.add_scalar(key, float(value), ValueType.FLOAT32)

    def add_float64(self, key: str, value: float) -> None:
        self.add_scalar(key, float(value), ValueType.FLOAT64)

    def add_bool(self, key: str, value: bool) -> None:
        self.add_scalar(key, bool(value), ValueType.BOOL)

    def add_string(self, key: str, value: str) -> None:
        self._add(key, ValueType.STRING, _encode_string(value))

    def add_array(self, key: str, values: Sequence[int | float | bool | str], elem_type: ValueType) -> None:
        head = struct.pack("<IQ", int(elem_type), len(values))
        if elem_type == ValueType.STRING:
            body = b"".join(_encode_string(str(v)) for v in values)
        elif elem_type == ValueType.ARRAY:
            raise ValueError("nested arrays are not supported")
        else:
            body = np.asarray(values).astype(_NUMPY_DTYPE[elem_type]).tobytes()
        self._add(key, ValueType.ARRAY, head + body)

    def has_key(self, key: str) -> bool:
        return key in self._keys

    # ---- tensors --------------------------------------------------------------------------------------

    def add_tensor_info(self, name: str, shape: Sequence[int], ggml_type: GGMLType) -> TensorInfo:
        if any(t.name == name for t in self._tensors):
            raise KeyError(f"duplicate tensor {name!r}")
        shape_t = tuple(int(d) for d in shape)
        nbytes = tensor_nbytes(shape_t, ggml_type)
        info = TensorInfo(name, shape_t, ggml_type, nbytes, self._data_size)
        self._tensors.append(info)
        self._data_size += nbytes + _pad_len(nbytes, self.alignment)
        return info

    @property
    def tensors(self) -> list[TensorInfo]:
        return list(self._tensors)

    # ---- output ---------------------------------------------------------------------------------------

    def _header(self) -> bytes:
        parts = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(self._tensors), len(self._kv))]
        for key, payload in self._kv:
            parts.append(_encode_string(key))
            parts.append(payload)
        for t in self._tensors:
            parts.append(_encode_string(t.name))
            ne = tuple(reversed(t.shape)) or (1,)
            parts.append(struct.pack("<I", len(ne)))
            parts.append(struct.pack(f"<{len(ne)}Q", *ne))
            parts.append(struct.pack("<IQ", int(t.ggml_type), t.offset))
        head = b"".join(parts)
        return head + b"\x00" * _pad_len(len(head), self.alignment)

    def write(
        self,
        path: str | os.PathLike[str],
        data: Callable[[TensorInfo], Iterable[bytes | np.ndarray]],
        on_tensor: Callable[[int, TensorInfo], None] | None = None,
    ) -> None:
        """Write the file. `data(info)` yields the tensor's bytes in chunks (bytes or contiguous arrays).

        The file is written under a temporary name and renamed into place when complete.
        """
        path = os.fspath(path)
        tmp = path + ".part"
        try:
            with open(tmp, "wb") as f:
                f.write(self._header())
                for i, info in enumerate(self._tensors):
                    written = 0
                    for chunk in _as_bytes(data(info)):
                        f.write(chunk)
                        written += len(chunk)
                    if written != info.nbytes:
                        raise ValueError(f"tensor {info.name}: wrote {written} bytes, expected {info.nbytes}")
                    f.write(b"\x00" * _pad_len(written, self.alignment))
                    if on_tensor is not None:
                        on_tensor(i, info)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _as_bytes(chunks: Iterable[bytes | np.ndarray]) -> Iterator[bytes | memoryview]:
    for c in chunks:
        if isinstance(c, np.ndarray):
            c = np.ascontiguousarray(c)
            yield memoryview(c).cast("B")
        else:
            yield c
