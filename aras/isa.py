"""Program image format v2 (docs/architecture.md §9): the shared ``amaranth.lib.data`` layouts of every
table entry and instruction word, the encoder from a scheduled :class:`aras.program.Program` to
the binary image (plus the DRAM image of the tiles), and a decoder for tests.

The same layouts pack the image here, unpack it in the RTL (``hw/controller.py`` views program-memory
rows through them) and in the testbenches, so no bit offset is written twice.

Image (little endian, every section starts 32-byte aligned, in this order):

==============  ===========  ====================================================================
section         entry bytes  content
==============  ===========  ====================================================================
header          64           :data:`HEADER`
banks_init      16           ``gbuf_banks``-bit mask padded to 128 bit
layers          128          :data:`LAYER` (one per trace layer, index = trace layer index)
tensors         16           :data:`TENSOR`
qparams         16           :data:`QPARAM` (per output channel of crossbar layers; per channel of
                             standalone leaky/prelu layers)
tiles           16           :data:`TILE` (COMPUTE tile tables: one entry per crossbar, dense)
blocks          8            :data:`BLOCK` (COMPUTE block entries)
bank_events     32           :data:`BANK_EVENT`
initial         8            :data:`INITIAL` (none, or one per crossbar: the tile it holds at cycle 0)
writes          32           :data:`INSTR` (write stream, program order)
execs           32           :data:`INSTR` (execute stream, program order, last word END)
==============  ===========  ====================================================================

Choices fixed here (issue: rtl-controller; see the module docstring of ``hw/controller.py``):

- header ``flags`` (u32 after the counts): bit 0 = ``gbuf_adaptive`` (0: all banks on during the run);
  then ``n_initial`` (u32): 0, or ``n_xbars`` entries of the initial tile map of a steady-state program
  (§9.6 resident tiles; section ``initial`` after the bank events);
  ``n_execs`` counts the END word; ``cfg_fingerprint`` = first 8 bytes (little endian) of SHA-256 of
  ``json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))``;
- the layer descriptor (:data:`LAYER`, 1024 bit) carries the §9.5 field list plus ``chan_last``,
  ``kg`` (rows per group, K for linear) and ``ng`` (columns per group, N for linear). Shapes: a (C, H, W)
  tensor is (C, H, W); a crossbar ``linear`` layer is viewed as (1, P, K) → (1, P, N); other tensors
  of rank ≤ 2 as (1, T, D) / (1, 1, K) with ``chan_last`` = 1;
- the tensor entry is 16 bytes (``base`` u32, ``item_bytes`` u32, ``dtype`` u8, ``alias_of`` u16, pad);
  an int32 psum buffer's ``item_bytes`` is its whole size (``B·P·ncols·4``); block entries name
  ``psum_tensor`` 0xFFF when they have none;
- a COMPUTE's tile table is **dense**: ``tiles_n`` = ``n_xbars`` entries, entry x for crossbar x
  (``valid`` = 1 when x runs in the round). Besides the tile's tag, copy and ``need_gen`` the entry
  carries what the RTL would otherwise have to search for across crossbars (format v2): its block's
  ``pmode`` and ``psum_tensor``, ``lead`` (the lowest crossbar of its (gchunk, cchunk, copy): the
  block's accumulator), ``leader`` (x is that crossbar), ``sleader`` (x is the lowest crossbar of its
  (gchunk, rchunk, copy): it counts that input stream, §7.4) and, for a tile of an output block,
  ``out_first`` (first output block of the round in block-table order) or ``prev_ch`` (the last
  channel of the previous output block: §7.4's output stream compares against its word). The block
  table stays the round's compact description (tools, tests); the RTL reads only the tile table;
- standalone ``leaky`` layers use ``vop`` 5 (leaky_relu, scalar ``Mi/ei`` and ``Ma/ea``) when every
  channel has the same alpha multiplier, else 6 (prelu: ``M_neg/shift_neg`` of its qparam records).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum

from .errors import ArasError
from .program import PMODE_COMPLETE, PMODE_LAST, Compute, Host, Vector, Write
from .tiling import block_channels

__all__ = [
    "BANK_EVENT", "BLOCK", "ENTRY_BYTES", "HEADER", "INITIAL", "INSTR", "LAYER", "QPARAM", "SECTIONS", "TENSOR", "TILE",
    "WORD_BYTES", "ActKind", "Image", "Kind", "Opcode", "Tables", "VOP_CODES", "cfg_fingerprint", "decode",
    "encode", "pack", "section_offsets",
]

WORD_BYTES = 32  # program memory row = one instruction word
MAGIC = b"ARASPRG\0"
VERSION = 2
NO_TENSOR = 0xFFFF
NO_PSUM = 0xFFF


class Opcode(enum.Enum, shape=4):
    ILLEGAL = 0
    WRITE = 1
    COMPUTE = 2
    VECTOR = 3
    HOST = 4
    END = 15


class Kind(enum.Enum, shape=3):
    CONV = 0
    LINEAR = 1
    VECTOR = 2
    HOST = 3
    ALIAS = 4


class ActKind(enum.Enum, shape=2):
    NONE = 0
    CLAMP = 1
    LEAKY = 2  # fused leaky/prelu: negative accumulators use (M_neg, shift_neg)


VOP_CODES = {"maxpool": 0, "avgpool": 1, "gap": 2, "add": 3, "clamp": 4, "leaky_relu": 5, "prelu": 6}

HEADER = data.StructLayout({
    "magic": unsigned(64), "version": unsigned(16), "batch": unsigned(16), "cfg_fingerprint": unsigned(64),
    "n_layers": unsigned(32), "n_tensors": unsigned(32), "n_writes": unsigned(32), "n_execs": unsigned(32),
    "n_tiles": unsigned(32), "n_blocks": unsigned(32), "n_bank_events": unsigned(32), "n_qparams": unsigned(32),
    "flags": unsigned(32), "n_initial": unsigned(32), "reserved": unsigned(32),
})

WRITE = data.StructLayout({
    "op": Opcode, "layer": unsigned(12), "xbar": unsigned(12),
    "t_group": unsigned(16), "t_row": unsigned(12), "t_col": unsigned(12),
    "dram_addr": unsigned(32), "rows": unsigned(9), "wcols": unsigned(7), "family": unsigned(1), "mode": unsigned(1),
    "pack_g": unsigned(7), "pack_k": unsigned(9), "pack_n": unsigned(7), "wait_exec": unsigned(24),
    "barrier": unsigned(1), "flags": unsigned(64), "reserved": unsigned(26),
})

COMPUTE = data.StructLayout({
    "op": Opcode, "layer": unsigned(12), "round": unsigned(12),
    "tiles_ptr": unsigned(24), "tiles_n": unsigned(12), "blocks_ptr": unsigned(24), "blocks_n": unsigned(12),
    "bank_evt": unsigned(16), "replicas": unsigned(8), "reserved": unsigned(132),
})

VECTOR = data.StructLayout({  # VECTOR and HOST (vop = 0)
    "op": Opcode, "layer": unsigned(12), "vop": unsigned(4), "bank_evt": unsigned(16), "reserved": unsigned(220),
})

INSTR = data.UnionLayout({
    "head": data.StructLayout({"op": Opcode, "layer": unsigned(12)}),
    "write": WRITE, "compute": COMPUTE, "vector": VECTOR, "raw": unsigned(256),
})

TILE = data.StructLayout({  # entry x of a COMPUTE's dense tile table (see the module docstring)
    "xbar": unsigned(12), "need_gen": unsigned(20), "t_group": unsigned(16), "t_row": unsigned(12),
    "t_col": unsigned(12), "replica": unsigned(8),
    "valid": unsigned(1), "leader": unsigned(1), "sleader": unsigned(1), "pmode": unsigned(2),
    "lead": unsigned(12), "psum_tensor": unsigned(12), "out_first": unsigned(1), "prev_ch": unsigned(16),
    "reserved": unsigned(2),
})

BLOCK = data.StructLayout({
    "t_group": unsigned(16), "t_col": unsigned(12), "pmode": unsigned(2), "psum_tensor": unsigned(12),
    "reserved": unsigned(22),
})

BANK_EVENT = data.StructLayout({"on_mask": unsigned(128), "off_mask": unsigned(128)})

INITIAL = data.StructLayout({  # the tile crossbar x holds at cycle 0 (steady-state programs, §9.6)
    "valid": unsigned(1), "layer": unsigned(12), "t_group": unsigned(16), "t_row": unsigned(12), "t_col": unsigned(12),
    "reserved": unsigned(11),
})

TENSOR = data.StructLayout({
    "base": unsigned(32), "item_bytes": unsigned(32), "dtype": unsigned(8), "alias_of": unsigned(16),
    "reserved": unsigned(40),
})

QPARAM = data.StructLayout({
    "bias_hw": signed(32), "m": signed(32), "m_neg": signed(32), "shift": signed(8), "shift_neg": signed(8),
    "reserved": unsigned(16),
})

LAYER = data.StructLayout({
    "kind": Kind, "vop": unsigned(4), "in0": unsigned(16), "in1": unsigned(16), "out": unsigned(16),
    "cin": unsigned(16), "h": unsigned(16), "w": unsigned(16), "cout": unsigned(16), "ho": unsigned(16),
    "wo": unsigned(16),
    "kh": unsigned(8), "kw": unsigned(8), "sh": unsigned(8), "sw": unsigned(8), "dh": unsigned(8), "dw": unsigned(8),
    "pt": unsigned(8), "pl": unsigned(8), "pb": unsigned(8), "pr": unsigned(8),
    "groups": unsigned(16), "p": unsigned(32), "family": unsigned(1), "pack_g": unsigned(8),
    "n_gchunks": unsigned(16), "n_rchunks": unsigned(12), "n_cchunks": unsigned(12),
    "zx": signed(8), "zx2": signed(8), "zo": signed(8), "act_min": signed(8), "act_max": signed(8),
    "act_kind": ActKind, "count_include_pad": unsigned(1), "qparam_ptr": unsigned(24),
    "m1": signed(32), "m2": signed(32), "mo": signed(32), "e1": signed(8), "e2": signed(8), "eo": signed(8),
    "mi": signed(32), "ma": signed(32), "ei": signed(8), "ea": signed(8),
    "chan_last": unsigned(1), "kg": unsigned(16), "ng": unsigned(16),
    "reserved": unsigned(396),
})

# Section order and entry sizes (bytes). Every section starts at a multiple of WORD_BYTES.
SECTIONS = ("header", "banks_init", "layers", "tensors", "qparams", "tiles", "blocks", "bank_events", "initial",
            "writes", "execs")
ENTRY_BYTES = {"header": 64, "banks_init": 16, "layers": 128, "tensors": 16, "qparams": 16, "tiles": 16,
               "blocks": 8, "bank_events": 32, "initial": 8, "writes": 32, "execs": 32}
_LAYOUTS = {"header": HEADER, "layers": LAYER, "tensors": TENSOR, "qparams": QPARAM, "tiles": TILE, "blocks": BLOCK,
            "bank_events": BANK_EVENT, "initial": INITIAL, "writes": INSTR, "execs": INSTR}
_COUNT_FIELD = {"layers": "n_layers", "tensors": "n_tensors", "qparams": "n_qparams", "tiles": "n_tiles",
                "blocks": "n_blocks", "bank_events": "n_bank_events", "initial": "n_initial", "writes": "n_writes",
                "execs": "n_execs"}

for _name, _lay in _LAYOUTS.items():  # the layouts are the format: keep them in step with the table
    assert _lay.size == 8 * ENTRY_BYTES[_name], (_name, _lay.size)


def section_offsets(counts: dict[str, int]) -> dict[str, int]:
    """Byte offset of every section (and ``"end"``), given the entry counts per section name."""
    off, out = 0, {}
    for name in SECTIONS:
        out[name] = off
        n = 1 if name in ("header", "banks_init") else counts[name]
        off += -(-n * ENTRY_BYTES[name] // WORD_BYTES) * WORD_BYTES
    out["end"] = off
    return out


def cfg_fingerprint(cfg) -> int:
    text = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def to_dict(layout, value) -> dict:
    """A layout's fields as plain Python values (nested layouts as dicts, enums as ints)."""
    if isinstance(value, int):
        c = layout.from_bits(value & ((1 << layout.size) - 1))
    elif isinstance(value, data.Const):
        c = value
    else:
        c = layout.const(value)
    out = {}
    for name, fld in layout:
        v = c[name]
        if isinstance(v, data.Const):
            out[name] = to_dict(fld.shape, v)
        elif isinstance(v, enum.Enum):
            out[name] = v.value
        else:
            out[name] = int(v)
    return out


def _bits(layout, fields: dict) -> int:
    return layout.const(fields).as_bits()


@dataclass
class Tables:
    """The image's contents as field dictionaries (what :func:`encode` packs and :func:`decode` returns)."""

    header: dict
    banks_init: int
    layers: list[dict] = field(default_factory=list)
    tensors: list[dict] = field(default_factory=list)
    qparams: list[dict] = field(default_factory=list)
    tiles: list[dict] = field(default_factory=list)
    blocks: list[dict] = field(default_factory=list)
    bank_events: list[dict] = field(default_factory=list)
    initial: list[dict] = field(default_factory=list)  # empty, or one INITIAL per crossbar
    writes: list[dict] = field(default_factory=list)  # INSTR "write" members
    execs: list[dict] = field(default_factory=list)  # INSTR members by op: "compute" / "vector" / "head"

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in _COUNT_FIELD}


@dataclass
class Image:
    """An encoded program: the program-memory image, the DRAM image of the tiles, and naming maps."""

    program: bytes
    dram: bytes
    tables: Tables
    tensor_ids: dict[str, int]

    @property
    def words(self) -> list[int]:
        """The program image as 256-bit program-memory rows (little endian)."""
        return [int.from_bytes(self.program[k:k + WORD_BYTES], "little")
                for k in range(0, len(self.program), WORD_BYTES)]


def _instr_bits(d: dict) -> int:
    op = d["op"]
    member = {Opcode.WRITE.value: "write", Opcode.COMPUTE.value: "compute", Opcode.VECTOR.value: "vector",
              Opcode.HOST.value: "vector"}.get(op, "head")
    return INSTR.const({member: d}).as_bits()


def pack(t: Tables) -> bytes:
    """Serialise :class:`Tables` to the image bytes."""
    counts = t.counts()
    hdr = dict(t.header, **{_COUNT_FIELD[k]: v for k, v in counts.items()})
    offs = section_offsets(counts)
    out = bytearray(offs["end"])

    def put(off, nbytes, value):
        out[off:off + nbytes] = value.to_bytes(nbytes, "little")

    put(0, 64, _bits(HEADER, hdr))
    put(offs["banks_init"], 16, t.banks_init)
    for name in SECTIONS[2:]:
        size = ENTRY_BYTES[name]
        for i, e in enumerate(getattr(t, name)):
            bits = _instr_bits(e) if name in ("writes", "execs") else _bits(_LAYOUTS[name], e)
            put(offs[name] + i * size, size, bits)
    return bytes(out)


def decode(image: bytes) -> Tables:
    """Parse an image (checks magic and version) back into :class:`Tables`."""
    if len(image) < 64 or image[:8] != MAGIC:
        raise ArasError("program image: bad magic (not an ARAS program)")
    hdr = to_dict(HEADER, int.from_bytes(image[:64], "little"))
    if hdr["version"] != VERSION:
        raise ArasError(f"program image: version {hdr['version']}, this build reads version {VERSION}")
    counts = {k: hdr[f] for k, f in _COUNT_FIELD.items()}
    offs = section_offsets(counts)
    if len(image) < offs["end"]:
        raise ArasError(f"program image: {len(image)} bytes, the header's counts need {offs['end']}")
    t = Tables(hdr, int.from_bytes(image[offs["banks_init"]:offs["banks_init"] + 16], "little"))
    for name in SECTIONS[2:]:
        size = ENTRY_BYTES[name]
        lst = getattr(t, name)
        for i in range(counts[name]):
            raw = int.from_bytes(image[offs[name] + i * size:offs[name] + (i + 1) * size], "little")
            if name in ("writes", "execs"):
                op = raw & 0xF
                member = {1: "write", 2: "compute", 3: "vector", 4: "vector"}.get(op, "head")
                lst.append(to_dict(INSTR[member].shape, raw))
            else:
                lst.append(to_dict(_LAYOUTS[name], raw))
    return t


# ------------------------------------------------------------------------------------------------ encoder
def _mask(banks) -> int:
    m = 0
    for b in banks:
        m |= 1 << int(b)
    return m


def _view_shape(shape, linear: bool) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if linear:
        return 1, int(np.prod(shape[:-1])), shape[-1]
    if len(shape) == 3:
        return shape
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    if len(shape) == 1:
        return 1, 1, shape[0]
    raise ArasError(f"program image: tensor shape {shape} has no (C, H, W) view")


def _check(v: int, bits: int, what: str, is_signed: bool = False) -> int:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if is_signed else (0, (1 << bits) - 1)
    if not lo <= int(v) <= hi:
        raise ArasError(f"program image: {what} = {v} does not fit the v1 field ({bits} bits)")
    return int(v)


def _tile_table(ins, prog, cfg, tid) -> list[dict]:
    """The dense tile table of one COMPUTE (format v2, see the module docstring): entry x = crossbar x."""
    where = f"program image: COMPUTE of layer {ins.layer} round {ins.round}"
    lt = prog.tilings[ins.layer]
    blocks = {(b.g, b.c): b for b in ins.blocks}
    prev_ch, last = {}, None  # block -> last channel of the previous output block (None: first)
    for b in ins.blocks:
        if b.pmode in (PMODE_COMPLETE, PMODE_LAST):
            prev_ch[(b.g, b.c)] = last
            last = block_channels(lt, b.g, b.c)[-1]
    lead, slead = {}, {}
    for te in ins.tiles:
        _, g, r, c = te.tag
        lead[(g, c, te.replica)] = min(lead.get((g, c, te.replica), te.xbar), te.xbar)
        slead[(g, r, te.replica)] = min(slead.get((g, r, te.replica), te.xbar), te.xbar)
    out = [{"xbar": x, "need_gen": 0, "t_group": 0, "t_row": 0, "t_col": 0, "replica": 0, "valid": 0,
            "leader": 0, "sleader": 0, "pmode": 0, "lead": 0, "psum_tensor": NO_PSUM, "out_first": 0,
            "prev_ch": 0, "reserved": 0} for x in range(cfg.n_xbars)]
    for te in ins.tiles:
        _, g, r, c = te.tag
        if not 0 <= te.xbar < cfg.n_xbars or out[te.xbar]["valid"]:
            raise ArasError(f"{where}: crossbar {te.xbar} is out of range or holds two tile entries")
        b = blocks.get((g, c))
        if b is None:
            raise ArasError(f"{where}: tile (g={g}, c={c}) has no block entry")
        x0 = lead[(g, c, te.replica)]
        pc = prev_ch.get((g, c))
        out[te.xbar].update({
            "need_gen": _check(te.need_gen, 20, "need_gen"), "t_group": g, "t_row": r, "t_col": c,
            "replica": _check(te.replica, 8, "replica"), "valid": 1, "leader": int(x0 == te.xbar),
            "sleader": int(slead[(g, r, te.replica)] == te.xbar), "pmode": b.pmode, "lead": x0,
            "psum_tensor": tid(b.psum) if b.psum else NO_PSUM,
            "out_first": int((g, c) in prev_ch and pc is None),
            "prev_ch": _check(pc or 0, 16, "prev_ch (output channel)")})
    return out


def encode(prog, trace, cfg) -> Image:
    """Encode an assembled program (``sim_models.scheduler.schedule``) of ``trace`` on ``cfg``.

    Returns the program image, the DRAM image (tile weights at each WRITE's ``dram_addr``, row-major
    R_used × wcols int8) and the tensor-name → id map. Raises :class:`ArasError` naming the field that
    does not fit program format v1.
    """
    if prog.batch != cfg.batch:
        raise ArasError(f"program image: program batch {prog.batch} != config batch {cfg.batch}")
    tensor_ids = {name: i for i, name in enumerate(prog.tensors)}
    _check(len(tensor_ids), 12, "number of tensors")
    tensors = []
    for name, ta in prog.tensors.items():
        tensors.append({"base": _check(ta.base, 32, f"tensor {name!r} base"),
                        "item_bytes": _check(ta.item_bytes, 32, f"tensor {name!r} item_bytes"),
                        "dtype": 1 if ta.dtype == "int32" else 0,
                        "alias_of": tensor_ids[ta.alias_of] if ta.alias_of else NO_TENSOR, "reserved": 0})

    def tid(name):
        if name not in tensor_ids:
            raise ArasError(f"program image: tensor {name!r} has no Gbuffer allocation")
        return tensor_ids[name]

    layers, qparams = [], []
    for li, ly in enumerate(trace.layers):
        layers.append(_layer_desc(li, ly, trace, prog, cfg, tid, qparams))
    _check(len(layers), 12, "number of layers")

    tiles, blocks, bank_events, writes, execs = [], [], [], [], []
    dram = bytearray()
    for ins in prog.instrs:
        if isinstance(ins, Write):
            if ins.bcast:
                raise ArasError("encode: broadcast WRITEs (config broadcast_writes) are golden-model only; program "
                                "format v1 has no such field (docs/architecture.md §9.8)")
            t = ins.tile
            flags = 0
            for j, f in enumerate(ins.flags):
                flags |= int(bool(f)) << j
            writes.append({
                "op": Opcode.WRITE.value, "layer": t.layer, "xbar": _check(ins.xbar, 12, "xbar"),
                "t_group": _check(t.g, 16, "t_group"), "t_row": _check(t.r, 12, "t_row"),
                "t_col": _check(t.c, 12, "t_col"), "dram_addr": _check(ins.dram_addr, 32, "dram_addr"),
                "rows": _check(t.rows, 9, "rows"), "wcols": _check(t.wcols, 7, "wcols"),
                "family": 1 if ins.family == "signmag" else 0, "mode": int(ins.mode),
                "pack_g": _check(t.pack_g, 7, "pack_g"), "pack_k": _check(t.pack_k, 9, "pack_k"),
                "pack_n": _check(t.pack_n, 7, "pack_n"), "wait_exec": _check(ins.wait_exec, 24, "wait_exec"),
                "barrier": int(bool(ins.barrier)), "flags": flags, "reserved": 0,
            })
            img = np.ascontiguousarray(ins.weights, dtype=np.int8).tobytes()
            end = ins.dram_addr + len(img)
            if len(dram) < end:
                dram.extend(bytes(end - len(dram)))
            dram[ins.dram_addr:end] = img
            continue
        evt = 0
        if ins.bank_on or ins.bank_off:
            bank_events.append({"on_mask": _mask(ins.bank_on), "off_mask": _mask(ins.bank_off)})
            evt = _check(len(bank_events), 16, "bank event index")
        if isinstance(ins, Compute):
            tp, bp = len(tiles), len(blocks)
            tiles.extend(_tile_table(ins, prog, cfg, tid))
            for b in ins.blocks:
                blocks.append({"t_group": b.g, "t_col": b.c, "pmode": b.pmode,
                               "psum_tensor": tid(b.psum) if b.psum else NO_PSUM, "reserved": 0})
            execs.append({"op": Opcode.COMPUTE.value, "layer": ins.layer, "round": _check(ins.round, 12, "round"),
                          "tiles_ptr": _check(tp, 24, "tiles_ptr"), "tiles_n": _check(cfg.n_xbars, 12, "tiles_n"),
                          "blocks_ptr": _check(bp, 24, "blocks_ptr"),
                          "blocks_n": _check(len(ins.blocks), 12, "blocks_n"), "bank_evt": evt,
                          "replicas": _check(ins.replicas, 8, "replicas"), "reserved": 0})
        elif isinstance(ins, Vector):
            execs.append({"op": Opcode.VECTOR.value, "layer": ins.layer, "vop": layers[ins.layer]["vop"],
                          "bank_evt": evt, "reserved": 0})
        elif isinstance(ins, Host):
            execs.append({"op": Opcode.HOST.value, "layer": ins.layer, "vop": 0, "bank_evt": evt, "reserved": 0})
        else:  # pragma: no cover - the program holds only these kinds
            raise ArasError(f"program image: unknown instruction {type(ins).__name__}")
    execs.append({"op": Opcode.END.value, "layer": 0})
    _check(len(writes), 24, "number of WRITEs")
    _check(len(execs), 24, "number of execute instructions")
    header = {"magic": int.from_bytes(MAGIC, "little"), "version": VERSION, "batch": prog.batch,
              "cfg_fingerprint": cfg_fingerprint(cfg), "flags": int(bool(prog.gbuf_adaptive)), "reserved": 0}
    initial = []
    if prog.initial_writes:
        for x in range(cfg.n_xbars):
            w0 = prog.initial_writes.get(x)
            tag = w0.tile.tag if w0 is not None else (0, 0, 0, 0)
            initial.append({"valid": int(w0 is not None), "layer": tag[0], "t_group": tag[1], "t_row": tag[2],
                            "t_col": tag[3], "reserved": 0})
    tables = Tables(header, _mask(prog.banks_init), layers, tensors, qparams, tiles, blocks, bank_events, initial,
                    writes, execs)
    tables.header = dict(header, **{_COUNT_FIELD[k]: v for k, v in tables.counts().items()})
    return Image(pack(tables), bytes(dram), tables, tensor_ids)


def _act_kind(ly) -> int:
    act = ly.attrs.get("act", "none")
    if act in ("leaky", "prelu"):
        return ActKind.LEAKY.value
    return ActKind.NONE.value if act == "none" else ActKind.CLAMP.value


def _layer_desc(li, ly, trace, prog, cfg, tid, qparams: list) -> dict:
    """One layer descriptor; appends the layer's qparam records to ``qparams``."""
    d = dict.fromkeys((n for n, _ in LAYER), 0)
    d["in0"] = d["in1"] = d["out"] = NO_TENSOR
    d.update(kh=1, kw=1, sh=1, sw=1, dh=1, dw=1, groups=1, pack_g=1, act_min=-128, act_max=127)
    where = f"layer {ly.name!r}"
    ins = [trace.tensors[t] for t in ly.inputs]
    out = trace.tensors[ly.output]
    linear = ly.op == "linear"
    if ly.inputs:
        d["in0"] = tid(ly.inputs[0])
        d["cin"], d["h"], d["w"] = (_check(v, 16, f"{where} input shape") for v in _view_shape(ins[0].shape, linear))
        d["zx"] = ins[0].zero_point
    if len(ly.inputs) > 1:
        d["in1"] = tid(ly.inputs[1])
        d["zx2"] = ins[1].zero_point
    d["out"] = tid(ly.output)
    d["cout"], d["ho"], d["wo"] = (_check(v, 16, f"{where} output shape") for v in _view_shape(out.shape, linear))
    d["zo"] = out.zero_point
    d["chan_last"] = int(len(out.shape) != 3 or linear)
    a = ly.attrs
    if "act_min" in a:
        d["act_min"], d["act_max"] = int(a["act_min"]), int(a["act_max"])
    if ly.on_crossbars:
        w = ly.arrays["weight"]
        lt = prog.tilings.get(li)
        if lt is None:
            raise ArasError(f"program image: {where}: crossbar layer without a tiling")
        d["kind"] = Kind.LINEAR.value if linear else Kind.CONV.value
        if not linear:
            d["kh"], d["kw"] = (int(v) for v in w.shape[2:])
            d["sh"], d["sw"] = (int(v) for v in a["stride"])
            d["dh"], d["dw"] = (int(v) for v in a["dilation"])
            d["pt"], d["pl"], d["pb"], d["pr"] = (int(v) for v in a["pads"])
            d["groups"] = int(a.get("groups", 1))
        d["p"] = _check(d["ho"] if linear else d["ho"] * d["wo"], 32, f"{where} positions")
        d["family"] = 1 if lt.family == "signmag" else 0
        d["pack_g"] = lt.pack
        d["n_gchunks"], d["n_rchunks"], d["n_cchunks"] = lt.n_gchunks, lt.n_rchunks, lt.n_cchunks
        d["kg"], d["ng"] = _check(lt.kg, 16, f"{where} K_g"), _check(lt.ng, 16, f"{where} N_g")
        d["act_kind"] = _act_kind(ly)
        d["qparam_ptr"] = _check(len(qparams), 24, "qparam_ptr")
        zx = ins[0].zero_point
        bias_hw = ly.arrays["bias"].astype(np.int64) - zx * w.reshape(w.shape[0], -1).astype(np.int64).sum(axis=1)
        neg = "mult_neg" in ly.arrays
        for c in range(w.shape[0]):
            qparams.append({
                "bias_hw": _check(bias_hw[c], 32, f"{where} bias_hw[{c}]", True),
                "m": int(ly.arrays["mult"][c]), "shift": int(ly.arrays["shift"][c]),
                "m_neg": int(ly.arrays["mult_neg"][c]) if neg else 0,
                "shift_neg": int(ly.arrays["shift_neg"][c]) if neg else 0, "reserved": 0})
    elif ly.on_host:
        d["kind"] = Kind.HOST.value
    elif ly.op in ("reshape", "flatten"):
        d["kind"] = Kind.ALIAS.value
    else:
        d["kind"] = Kind.VECTOR.value
        if ly.op in ("maxpool", "avgpool"):
            d["vop"] = VOP_CODES[ly.op]
            d["kh"], d["kw"] = (_check(v, 8, f"{where} kernel") for v in a["kernel"])
            d["sh"], d["sw"] = (_check(v, 8, f"{where} stride") for v in a["stride"])
            d["pt"], d["pl"], d["pb"], d["pr"] = (_check(v, 8, f"{where} pads") for v in a.get("pads", (0,) * 4))
            d["count_include_pad"] = int(bool(a.get("count_include_pad", False)))
        elif ly.op == "gap":
            d["vop"] = VOP_CODES["gap"]
        elif ly.op == "add":
            d["vop"] = VOP_CODES["add"]
            d["m1"], d["m2"], d["mo"] = int(a["m1"]), int(a["m2"]), int(a["mo"])
            d["e1"], d["e2"], d["eo"] = int(a["s1"]), int(a["s2"]), int(a["so"])
            if int(a.get("left_shift", 20)) != 20:
                raise ArasError(f"program image: {where}: add left_shift must be 20 (TFLite int8)")
        elif ly.op == "clamp":
            d["vop"] = VOP_CODES["clamp"]
        elif ly.op == "leaky":
            arr = ly.arrays
            mid, sid = arr["mult_id"].ravel(), arr["shift_id"].ravel()
            ma, sa = arr["mult_alpha"].ravel(), arr["shift_alpha"].ravel()
            if len(set(mid.tolist())) > 1 or len(set(sid.tolist())) > 1:
                raise ArasError(f"program image: {where}: the identity multiplier must be the same for every channel")
            d["mi"], d["ei"] = int(mid[0]), int(sid[0])
            if len(set(ma.tolist())) == 1 and len(set(sa.tolist())) == 1:
                d["vop"] = VOP_CODES["leaky_relu"]
                d["ma"], d["ea"] = int(ma[0]), int(sa[0])
            else:
                d["vop"] = VOP_CODES["prelu"]
            d["qparam_ptr"] = _check(len(qparams), 24, "qparam_ptr")
            for c in range(len(ma)):
                qparams.append({"bias_hw": 0, "m": int(mid[c]), "shift": int(sid[c]), "m_neg": int(ma[c]),
                                "shift_neg": int(sa[c]), "reserved": 0})
        else:
            raise ArasError(f"program image: {where}: op {ly.op!r} has no descriptor")
    return d
