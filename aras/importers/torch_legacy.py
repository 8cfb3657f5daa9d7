"""Read a PyTorch state dict saved by ``torch.save`` without importing torch.

Both serializations are read:

* the legacy (non-zip) stream: pickles of the magic number, the protocol version and system info,
  then the state-dict pickle, then a pickle with the list of storage keys, then for each key the
  storage's raw little-endian data prefixed by its int64 element count;
* the zip archive (torch >= 1.6 default): ``<dir>/data.pkl`` plus one raw member
  ``<dir>/data/<key>`` per storage.

In both, tensors refer to storages by a persistent id ``('storage', storage_type, key, location,
numel[, view_metadata])`` and are rebuilt by ``torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)``. The unpickler admits only those rebuild functions, the storage type names and
``collections.OrderedDict``; any other global is refused, so a malicious file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..errors import ArasError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAX_ELEMENTS = 1 << 31  # per tensor; far above any model this project runs

# torch storage type name -> little-endian numpy dtype (None: known but not supported here).
STORAGE_DTYPES: dict[str, str | None] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "LongStorage": "<i8",
    "HalfStorage": None,
    "BFloat16Storage": None,
    "IntStorage": None,
    "ShortStorage": None,
    "CharStorage": None,
    "ByteStorage": None,
    "BoolStorage": None,
    "ComplexFloatStorage": None,
    "ComplexDoubleStorage": None,
}


# Frozen and slotted: a pickle BUILD opcode can neither set nor sneak in attributes afterwards.
@dataclass(frozen=True, slots=True)
class _StorageType:
    name: str
    dtype: str | None


@dataclass(frozen=True, slots=True)
class _Storage:
    key: str
    dtype: str
    numel: int
    view: tuple[int, int] | None = None  # (element offset, element count) into the root storage


@dataclass(frozen=True, slots=True)
class _TensorRef:
    """A tensor as the pickle describes it; materialized once the storage bytes are read."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _ints(v, what: str, source: str) -> tuple[int, ...]:
    if not isinstance(v, tuple | list) or not all(isinstance(a, int) and not isinstance(a, bool) for a in v):
        raise ArasError(f"{source}: tensor {what} must be a tuple of ints, got {v!r}")
    return tuple(v)


def _make_rebuild(source: str):
    def rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
        # requires_grad, backward_hooks and metadata (v2) carry nothing a float graph needs.
        if not isinstance(storage, _Storage):
            raise ArasError(f"{source}: tensor rebuilt from {type(storage).__name__}, not a storage")
        if not isinstance(storage_offset, int) or storage_offset < 0:
            raise ArasError(f"{source}: bad tensor storage offset {storage_offset!r}")
        size, stride = _ints(size, "size", source), _ints(stride, "stride", source)
        if len(size) != len(stride) or min(size + stride, default=0) < 0:
            raise ArasError(f"{source}: tensor size {size} and stride {stride} do not match")
        return _TensorRef(storage, storage_offset, size, stride)

    def rebuild_parameter(data, _requires_grad=False, _backward_hooks=None, *_ignored):
        if not isinstance(data, _TensorRef):
            raise ArasError(f"{source}: parameter rebuilt from {type(data).__name__}, not a tensor")
        return data

    return {"_rebuild_tensor": rebuild_tensor, "_rebuild_tensor_v2": rebuild_tensor,
            "_rebuild_parameter": rebuild_parameter}


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, source: str):
        super().__init__(f)
        self.source = source
        self.rebuild = _make_rebuild(source)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if module == "torch._utils" and name in self.rebuild:
            return self.rebuild[name]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise ArasError(f"{self.source}: refusing to load global {module}.{name} (only torch tensors and "
                        "storages are allowed in a state dict)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise ArasError(f"{self.source}: unknown persistent id {pid!r}")
        stype, key, _location, numel = pid[1:5]
        if not isinstance(stype, _StorageType):
            raise ArasError(f"{self.source}: storage {key!r} has no storage type")
        if stype.dtype is None:
            raise ArasError(f"{self.source}: storage {key!r} is torch.{stype.name}; only FloatStorage, "
                            "DoubleStorage and LongStorage (float32/float64/int64) are supported")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise ArasError(f"{self.source}: bad storage id {pid!r}")
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = _Storage(key, stype.dtype, numel)
        elif root.dtype != stype.dtype or root.numel != numel:
            raise ArasError(f"{self.source}: storage {key!r} is declared twice with different type or size")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return root
        # Old torch could pickle a slice of a storage: (view_key, element offset, element count).
        ok = (isinstance(view, tuple) and len(view) == 3 and all(isinstance(v, int) for v in view[1:])
              and view[1] >= 0 and view[2] >= 0 and view[1] + view[2] <= numel)
        if not ok:
            raise ArasError(f"{self.source}: bad storage view {view!r} of storage {key!r}")
        return _Storage(key, stype.dtype, view[2], (view[1], view[2]))


def _unpickle(f, source: str, what: str, up: _Unpickler | None = None):
    """Load one pickle from ``f``, after a structural scan of it that needs no allocation."""
    try:
        start = f.tell()
        # pickletools reads every opcode argument with bounded reads; pickle's own loader would
        # allocate a protocol-5 bytearray of any declared length before noticing the truncation.
        for op, _arg, _pos in pickletools.genops(f):
            if op.proto > 4:
                raise ArasError(f"{source}: {what} uses pickle opcode {op.name}, which a state dict never contains")
        f.seek(start)
        return (up or _Unpickler(f, source)).load()
    except ArasError:
        raise
    except RecursionError:
        raise ArasError(f"{source}: {what} is nested too deeply") from None
    except Exception as e:  # any malformed pickle: EOF, bad opcode, bad memo, wrong call arguments
        msg = f"{what}: {type(e).__name__}: {e}"
        raise ArasError(f"{source}: corrupt or truncated torch file ({msg})") from None


def _materialize(obj, data: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise ArasError(f"{source}: expected a state dict (names to tensors), got a {type(obj).__name__}")
    out: dict[str, np.ndarray] = {}
    for name, t in obj.items():
        if not isinstance(name, str) or not isinstance(t, _TensorRef):
            raise ArasError(f"{source}: state-dict entry {name!r} is a {type(t).__name__}, not a tensor")
        st = t.storage
        base = data[st.key]
        if st.view is not None:
            base = base[st.view[0]:st.view[0] + st.view[1]]
        if 0 in t.size:
            out[name] = np.zeros(t.size, dtype=base.dtype.newbyteorder("="))
            continue
        count = int(np.prod(t.size, dtype=object))
        if count > MAX_ELEMENTS:  # broadcast (stride-0) views could otherwise claim any size
            raise ArasError(f"{source}: tensor {name!r} has {count} elements (size {t.size}); at most "
                            f"{MAX_ELEMENTS} are supported")
        last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True))
        if last >= len(base):
            raise ArasError(f"{source}: tensor {name!r} (offset {t.offset}, size {t.size}, stride "
                            f"{t.stride}) reaches element {last} of a {len(base)}-element storage")
        # as_strided reads exactly the elements the torch view addresses; the copy detaches it.
        strides = tuple(s * base.itemsize for s in t.stride)
        view = np.lib.stride_tricks.as_strided(base[t.offset:], t.size, strides, writeable=False)
        out[name] = np.array(view, dtype=base.dtype.newbyteorder("="), order="C", copy=True)
    return out


def _load_legacy(data: bytes, source: str) -> dict[str, np.ndarray]:
    f = io.BytesIO(data)
    magic = _unpickle(f, source, "magic number")
    if magic != MAGIC_NUMBER:
        raise ArasError(f"{source}: not a torch file (bad magic number)")
    version = _unpickle(f, source, "protocol version")
    if version != PROTOCOL_VERSION:
        raise ArasError(f"{source}: unsupported torch serialization protocol {version!r} (expected 1001)")
    sys_info = _unpickle(f, source, "system info")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ArasError(f"{source}: only little-endian torch files are supported")
    up = _Unpickler(f, source)
    obj = _unpickle(f, source, "state dict", up)
    keys = _unpickle(f, source, "storage key list")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ArasError(f"{source}: storage key list is malformed")
    if set(keys) != set(up.storages):
        missing = sorted(set(up.storages) - set(keys))
        raise ArasError(f"{source}: storage key list does not match the tensors' storages "
                        f"(missing {missing[:3]})")
    arrays: dict[str, np.ndarray] = {}
    pos = f.tell()
    for k in keys:
        st = up.storages[k]
        itemsize = np.dtype(st.dtype).itemsize
        if pos + 8 > len(data):
            raise ArasError(f"{source}: truncated torch file (storage {k!r} size missing)")
        (numel,) = struct.unpack_from("<q", data, pos)
        if numel != st.numel:
            raise ArasError(f"{source}: storage {k!r} holds {numel} elements, the pickle says {st.numel}")
        pos += 8
        end = pos + numel * itemsize
        if end > len(data):
            raise ArasError(f"{source}: truncated torch file (storage {k!r} needs {numel * itemsize} bytes, "
                            f"{len(data) - pos} left)")
        arrays[k] = np.frombuffer(data, dtype=st.dtype, count=numel, offset=pos)
        pos = end
    if pos != len(data):
        raise ArasError(f"{source}: {len(data) - pos} unexpected bytes after the last storage")
    return _materialize(obj, arrays, source)


def _load_zip(data: bytes, source: str) -> dict[str, np.ndarray]:
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        names = z.namelist()
        pkl = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise ArasError(f"{source}: zip archive without exactly one <dir>/data.pkl; not a torch file")
        prefix = pkl[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in names and z.read(f"{prefix}byteorder").strip() != b"little":
            raise ArasError(f"{source}: only little-endian torch files are supported")
        f = io.BytesIO(z.read(pkl[0]))
        up = _Unpickler(f, source)
        obj = _unpickle(f, source, "state dict", up)
        arrays = {}
        for k, st in up.storages.items():
            member = f"{prefix}data/{k}"
            if member not in names:
                raise ArasError(f"{source}: storage {k!r} has no archive member {member}")
            raw = z.read(member)
            if len(raw) != st.numel * np.dtype(st.dtype).itemsize:
                raise ArasError(f"{source}: storage {k!r} has {len(raw)} bytes, expected "
                                f"{st.numel * np.dtype(st.dtype).itemsize}")
            arrays[k] = np.frombuffer(raw, dtype=st.dtype)
    except ArasError:
        raise
    except Exception as e:  # bad zip directory, CRC, compression, truncated members
        raise ArasError(f"{source}: corrupt torch zip archive ({e})") from None
    return _materialize(obj, arrays, source)


def load_state_dict(data: bytes, source: str) -> dict[str, np.ndarray]:
    """Tensors of a ``torch.save``-d state dict, as numpy arrays (native byte order, C-contiguous).

    Parameters
    ----------
    data : bytes
        The file contents (legacy stream or zip archive).
    source : str
        Name of the file for error messages.

    Returns
    -------
    dict
        ``{name: array}`` in file order; float32, float64 or int64 arrays.

    Raises
    ------
    ArasError
        On anything but a state dict of float32/float64/int64 tensors, on refused pickle globals,
        and on corrupt or truncated input.
    """
    data = bytes(data)
    if data[:4] == b"PK\x03\x04":
        return _load_zip(data, source)
    if data[:1] != b"\x80":
        raise ArasError(f"{source}: not a torch file (neither a legacy pickle stream nor a zip archive)")
    return _load_legacy(data, source)
