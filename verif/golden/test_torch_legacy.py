"""torch state-dict reader without torch: real facenet-pytorch file, hand-built views, refusals."""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pytest

from aras.errors import ArasError
from aras.importers.torch_legacy import MAGIC_NUMBER, load_state_dict

# ---------------------------------------------------------------- a tiny hand-written pickler
# torch is not available, so files are written opcode by opcode (pickle protocol 2), exactly the
# shapes torch's legacy writer emits: GLOBAL, REDUCE, BINPERSID, OrderedDict + SETITEMS.


@dataclass
class G:  # a global reference "module name"
    module: str
    name: str


@dataclass
class Call:  # func(*args) via REDUCE
    func: object
    args: tuple


@dataclass
class Pid:  # persistent id
    pid: tuple


def enc(o) -> bytes:
    if isinstance(o, G):
        return b"c" + f"{o.module}\n{o.name}\n".encode()
    if isinstance(o, Call):
        return enc(o.func) + enc(tuple(o.args)) + b"R"
    if isinstance(o, Pid):
        return enc(o.pid) + b"Q"
    if isinstance(o, tuple):
        return b"(" + b"".join(enc(x) for x in o) + b"t"
    if isinstance(o, OrderedDict):
        return enc(Call(G("collections", "OrderedDict"), ())) + b"(" + b"".join(
            enc(k) + enc(v) for k, v in o.items()) + b"u"
    return pickletools.optimize(pickle.dumps(o, 2))[2:-1]  # plain value without PROTO/STOP


def dump(o) -> bytes:
    return b"\x80\x02" + enc(o) + b"."


def storage(key: str, numel: int, stype: str = "FloatStorage", view=None) -> Pid:
    return Pid(("storage", G("torch", stype), key, "cpu", numel, view))


def tensor(st: Pid, offset: int, size: tuple, stride: tuple, fn: str = "_rebuild_tensor_v2") -> Call:
    return Call(G("torch._utils", fn), (st, offset, size, stride, False, OrderedDict()))


def legacy_file(state, storages: dict[str, np.ndarray]) -> bytes:
    """Legacy torch.save stream: magic, protocol, sys info, state pickle, key list, raw storages."""
    parts = [dump(MAGIC_NUMBER), dump(1001),
             dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}),
             dump(state), dump(list(storages))]
    for a in storages.values():
        parts.append(struct.pack("<q", a.size) + a.tobytes())
    return b"".join(parts)


STORE = np.arange(24, dtype="<f4") * 0.5 - 3.0


def views_file() -> bytes:
    s = storage("7", 24)
    state = OrderedDict([
        ("contig", tensor(s, 0, (2, 3, 4), (12, 4, 1))),
        ("transposed", tensor(s, 2, (3, 4), (1, 3))),  # shares the storage, column-major view
        ("strided", tensor(s, 5, (2, 2), (6, 2), fn="_rebuild_tensor")),
        ("broadcast", tensor(s, 23, (3,), (0,))),
        ("ints", tensor(storage("9", 4, "LongStorage"), 1, (3,), (1,))),
        ("doubles", tensor(storage("8", 3, "DoubleStorage"), 0, (3, 1), (1, 1))),
        ("scalar", tensor(s, 4, (), ())),
    ])
    return legacy_file(state, {"7": STORE, "8": np.array([1.5, -2.25, 1e300], "<f8"),
                               "9": np.array([-(2 ** 40), 7, 0, 5], "<i8")})


def literal_view(buf: np.ndarray, offset: int, size: tuple, stride: tuple) -> np.ndarray:
    """Element-by-element torch view semantics: x[i...] = storage[offset + sum(i_k * stride_k)]."""
    out = np.empty(size, dtype=buf.dtype)
    for idx in np.ndindex(*size):
        out[idx] = buf[offset + sum(i * s for i, s in zip(idx, stride, strict=True))]
    return out


def test_views_and_dtypes_known_answer():
    sd = load_state_dict(views_file(), "views.pt")
    assert list(sd) == ["contig", "transposed", "strided", "broadcast", "ints", "doubles", "scalar"]
    assert np.array_equal(sd["contig"], STORE.reshape(2, 3, 4))
    assert np.array_equal(sd["transposed"], literal_view(STORE, 2, (3, 4), (1, 3)))
    assert sd["transposed"][2, 1] == STORE[2 + 2 + 3]
    assert np.array_equal(sd["strided"], [[STORE[5], STORE[7]], [STORE[11], STORE[13]]])
    assert np.array_equal(sd["broadcast"], [STORE[23]] * 3)
    assert sd["ints"].dtype == np.int64 and sd["ints"].tolist() == [7, 0, 5]
    assert sd["doubles"].dtype == np.float64 and sd["doubles"][:, 0].tolist() == [1.5, -2.25, 1e300]
    assert sd["scalar"].shape == () and sd["scalar"] == STORE[4]
    for a in sd.values():  # independent, writable, C-contiguous copies
        assert a.flags.c_contiguous and a.flags.writeable and a.flags.owndata
    sd["contig"][0, 0, 0] = 99.0
    assert sd["transposed"][0, 0] == STORE[2]


def test_storage_view_metadata():
    # Old torch pickled slices of a storage: (view_key, element offset, element count).
    s = storage("1", 24, view=("1v", 10, 6))
    sd = load_state_dict(legacy_file(OrderedDict(x=tensor(s, 1, (2, 2), (2, 1))), {"1": STORE}), "v.pt")
    assert sd["x"].tolist() == [[STORE[11], STORE[12]], [STORE[13], STORE[14]]]


def test_zip_format_known_answer():
    s = storage("0", 24)
    state = OrderedDict(w=tensor(s, 3, (2, 5), (1, 2)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", dump(state))
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/data/0", STORE.tobytes())
        z.writestr("archive/version", "3\n")
    sd = load_state_dict(buf.getvalue(), "z.pt")
    assert np.array_equal(sd["w"], literal_view(STORE, 3, (2, 5), (1, 2)))


@pytest.mark.parametrize("module,name", [("os", "system"), ("builtins", "eval"), ("posix", "system"),
                                         ("torch", "load"), ("torch._utils", "_rebuild_device_tensor_from_numpy")])
def test_refuses_foreign_globals(module, name):
    state = OrderedDict(w=Call(G(module, name), ("exit 3",)))
    data = legacy_file(state, {})
    with pytest.raises(ArasError, match=rf"evil\.pt: refusing to load global {module}\.{name}\b"):
        load_state_dict(data, "evil.pt")


def test_refuses_global_hidden_in_storage_type():
    state = OrderedDict(w=tensor(Pid(("storage", G("os", "system"), "0", "cpu", 1, None)), 0, (1,), (1,)))
    with pytest.raises(ArasError, match=r"evil\.pt: refusing to load global os\.system"):
        load_state_dict(legacy_file(state, {"0": STORE[:1]}), "evil.pt")


@pytest.mark.parametrize("cut", [1, 10, 20, 60, 200, -97, -8, -1])
def test_truncated_file(cut):
    data = views_file()
    with pytest.raises(ArasError, match=r"^cut\.pt: "):
        load_state_dict(data[:cut], "cut.pt")


@pytest.mark.parametrize("case,match", [
    ("half", r"torch\.HalfStorage; only FloatStorage"),
    ("out_of_range", r"tensor 'w' \(offset 20, size \(2, 3\), stride \(3, 1\)\) reaches element 25"),
    ("not_tensor", r"entry 'w' is a int, not a tensor"),
    ("trailing", r"4 unexpected bytes after the last storage"),
    ("count", r"storage '0' holds 24 elements, the pickle says 25"),
    ("negative_stride", r"size \(2,\) and stride \(-1,\) do not match"),
    ("huge_broadcast", r"tensor 'w' has 1099511627776 elements"),
    ("garbage", r"not a torch file"),
    ("magic", r"bad magic number"),
])
def test_bad_inputs(case, match):
    st = {"0": STORE}
    if case == "half":
        data = legacy_file(OrderedDict(w=tensor(storage("0", 24, "HalfStorage"), 0, (2,), (1,))), st)
    elif case == "out_of_range":
        data = legacy_file(OrderedDict(w=tensor(storage("0", 24), 20, (2, 3), (3, 1))), st)
    elif case == "not_tensor":
        data = legacy_file(OrderedDict(w=5), {})
    elif case == "trailing":
        data = legacy_file(OrderedDict(w=tensor(storage("0", 24), 0, (2,), (1,))), st) + b"\0" * 4
    elif case == "count":
        data = legacy_file(OrderedDict(w=tensor(storage("0", 25), 0, (2,), (1,))), st)
    elif case == "negative_stride":
        data = legacy_file(OrderedDict(w=tensor(storage("0", 24), 5, (2,), (-1,))), st)
    elif case == "huge_broadcast":
        data = legacy_file(OrderedDict(w=tensor(storage("0", 24), 0, (1 << 20, 1 << 20), (0, 0))), st)
    elif case == "garbage":
        data = b"hello, world"
    else:
        data = dump(12345) + views_file()[len(dump(MAGIC_NUMBER)):]
    with pytest.raises(ArasError, match=match):
        load_state_dict(data, "bad.pt")


@pytest.mark.parametrize("n,match", [(3, r"state dict uses pickle opcode BYTEARRAY8"),
                                     (1 << 40, r"expected 1099511627776 bytes in a bytearray8")])
def test_protocol5_buffer_opcode_refused(n, match):
    # A huge declared BYTEARRAY8 must be refused by the bounded scan, never allocated by pickle.
    state = b"\x80\x02\x96" + struct.pack("<Q", n) + b"xyz."
    data = dump(MAGIC_NUMBER) + dump(1001) + dump({"little_endian": True}) + state
    with pytest.raises(ArasError, match=rf"^big\.pt: .*{match}"):
        load_state_dict(data, "big.pt")


def test_random_corruption_only_arases():
    # Seeded byte flips anywhere in a valid file: the reader either succeeds or raises ArasError.
    base = views_file()
    rng = np.random.default_rng(7)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(1500):
        d = bytearray(base)
        for _ in range(rng.integers(1, 4)):
            d[rng.integers(0, len(d))] = rng.integers(0, 256)
        try:
            load_state_dict(bytes(d), "fuzz.pt")
            outcomes["ok"] += 1
        except ArasError as e:
            assert str(e).startswith("fuzz.pt: ")
            outcomes["error"] += 1
    assert outcomes["error"] > 1000  # most flips hit structure, so the check above really ran


# ---------------------------------------------------------------- the real facenet-pytorch P-Net
PNET_SHAPES = {
    "conv1.weight": (10, 3, 3, 3), "conv1.bias": (10,), "prelu1.weight": (10,),
    "conv2.weight": (16, 10, 3, 3), "conv2.bias": (16,), "prelu2.weight": (16,),
    "conv3.weight": (32, 16, 3, 3), "conv3.bias": (32,), "prelu3.weight": (32,),
    "conv4_1.weight": (2, 32, 1, 1), "conv4_1.bias": (2,),
    "conv4_2.weight": (4, 32, 1, 1), "conv4_2.bias": (4,),
}


@pytest.mark.network
def test_real_pnet_state_dict():
    from aras.fetch import wheel_member

    data = wheel_member("facenet-pytorch", "facenet_pytorch/data/pnet.pt")
    sd = load_state_dict(data, "pnet.pt")
    assert {k: v.shape for k, v in sd.items()} == PNET_SHAPES
    assert list(sd) == list(PNET_SHAPES)  # file order
    assert all(v.dtype == np.float32 for v in sd.values())
    # The conv weights are stored column-major (stride (1, 10, 30, 90) for conv1): known values
    # at non-zero indices check the stride handling on the real file.
    assert sd["conv1.weight"][0, 0, 0, 0] == np.float32(-0.08164716)
    assert sd["conv1.weight"][1, 0, 0, 0] == np.float32(0.48790067)
    assert sd["conv1.weight"][9, 2, 1, 2] == np.float32(-0.45462683)
    assert sd["conv2.weight"][0, 0, 0, 0] == np.float32(-0.11650129)
    assert np.allclose(sd["conv4_2.bias"], [0.0215605, -0.04285, -0.06107179, -0.01218751], rtol=1e-6, atol=0)
    for cut in (100, 1500, 1945, len(data) - 3):
        with pytest.raises(ArasError, match=r"^pnet\.pt: (corrupt or truncated|truncated)"):
            load_state_dict(data[:cut], "pnet.pt")
