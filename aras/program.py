"""The program the offline scheduler emits and the controller executes (docs/architecture.md §9): the
contract between the golden model (``sim_models/``) and the RTL (``aras/isa.py`` encodes it for ``hw/``).

Instructions name work and dependencies, never cycles. :func:`assemble` derives the dependency
fields (``need_gen`` of every COMPUTE tile entry, the WAR minimum of every WRITE's ``wait_exec``)
from program order; :func:`validate` checks the v1 rules of §9.6.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ArasError
from .tiling import LayerTiling, Tile

VOPS = {"maxpool": 0, "avgpool": 1, "gap": 2, "add": 3, "clamp": 4, "leaky": 5}
PMODE_COMPLETE, PMODE_FIRST, PMODE_MIDDLE, PMODE_LAST = 0, 1, 2, 3


@dataclass
class Write:
    tile: Tile
    xbar: int
    dram_addr: int
    family: str
    mode: int  # 0 blind, 1 differential
    flags: np.ndarray  # (wcols,) bool: per weight column encoding alternative
    weights: np.ndarray  # (rows, wcols) int8: the tile's DRAM image (model-side view)
    wait_exec: int = 0
    barrier: bool = False
    # Model-side caches (not part of the instruction word): target levels of the tile under the plain
    # encoding of the family and under its alternative (None until sim_models.tiling.write_targets).
    levels0: np.ndarray | None = None
    levels1: np.ndarray | None = None
    # Broadcast WRITE (docs/architecture.md §9.8, config ``broadcast_writes``; golden model only): the tile
    # image comes from the DRAM interface's copy of the previous WRITE's transfer, not from DRAM.
    bcast: bool = False

    @property
    def layer(self) -> int:
        return self.tile.layer


@dataclass
class TileEntry:
    xbar: int
    tag: tuple[int, int, int, int]
    rows: int
    cphys: int  # physical columns used
    family: str
    need_gen: int = 0
    replica: int = 0  # which copy of the tile (replicated layers: positions split between copies)


@dataclass
class BlockEntry:
    g: int
    c: int
    ncols: int  # output channels of the block
    pmode: int = PMODE_COMPLETE
    psum: str | None = None  # psum tensor name for split blocks


@dataclass
class Compute:
    layer: int
    round: int
    tiles: list[TileEntry]
    blocks: list[BlockEntry]
    bank_on: tuple[int, ...] = ()
    bank_off: tuple[int, ...] = ()
    replicas: int = 1  # copies of every tile; copy q computes positions positions_of(P, replicas, q)


def positions_of(P: int, replicas: int, q: int) -> range:
    """Positions computed by copy ``q`` of a replicated round: contiguous ranges of ceil(P / replicas)."""
    per = -(-P // replicas)
    return range(min(P, q * per), min(P, (q + 1) * per))


@dataclass
class Vector:
    layer: int
    vop: int
    bank_on: tuple[int, ...] = ()
    bank_off: tuple[int, ...] = ()


@dataclass
class Host:
    layer: int
    bank_on: tuple[int, ...] = ()
    bank_off: tuple[int, ...] = ()


@dataclass
class TensorAlloc:
    name: str
    item_bytes: int
    banks: tuple[int, ...]  # banks owned while live
    base: int  # byte address
    alias_of: str | None = None
    dtype: str = "int8"


@dataclass
class Program:
    mode: str
    batch: int
    instrs: list  # program order: Write / Compute / Vector / Host
    tilings: dict[int, LayerTiling]
    tensors: dict[str, TensorAlloc] = field(default_factory=dict)
    banks_init: tuple[int, ...] = ()
    gbuf_adaptive: bool = True
    notes: dict = field(default_factory=dict)
    # crossbar -> the WRITE of the previous run whose tile the crossbar holds at cycle 0 (steady state);
    # a COMPUTE tile entry with need_gen 0 computes on such a resident tile.
    initial_writes: dict = field(default_factory=dict)

    @property
    def writes(self) -> list[Write]:
        return [i for i in self.instrs if isinstance(i, Write)]

    @property
    def execs(self) -> list:
        return [i for i in self.instrs if not isinstance(i, Write)]


def assemble(prog: Program) -> Program:
    """Fill ``need_gen`` and raise each WRITE's ``wait_exec`` to its WAR minimum (in place)."""
    gen: dict[int, int] = {}
    last_compute: dict[int, int] = {}  # xbar -> execute index of the last COMPUTE naming it
    e = 0
    for ins in prog.instrs:
        if isinstance(ins, Write):
            war = last_compute.get(ins.xbar, -1) + 1
            ins.wait_exec = max(ins.wait_exec, war)
            gen[ins.xbar] = gen.get(ins.xbar, 0) + 1
        else:
            if isinstance(ins, Compute):
                for te in ins.tiles:
                    te.need_gen = gen.get(te.xbar, 0)
                    last_compute[te.xbar] = e
            e += 1
    validate(prog)
    return prog


def validate(prog: Program) -> None:
    """The v1 rules of docs/architecture.md §9.6; an ArasError names the instruction."""
    history: dict[int, list[tuple]] = {}
    pmodes: dict[tuple, list] = {}  # (layer, gchunk, cchunk) -> [(instruction index, block entry)] in order
    e = 0
    seen_tiles: dict[int, set] = {}
    prev_write = None
    for n, ins in enumerate(prog.instrs):
        if isinstance(ins, Write):
            if ins.bcast and (prev_write is None or (prev_write.tile.tag, prev_write.dram_addr) !=
                              (ins.tile.tag, ins.dram_addr)):
                raise ArasError(f"program: WRITE #{n}: broadcast WRITE whose previous WRITE is not of the same "
                                "tile image (docs/architecture.md §9.8)")
            prev_write = ins
            if ins.wait_exec > e:
                raise ArasError(f"program: WRITE #{n}: wait_exec {ins.wait_exec} > {e} preceding execute instructions")
            if ins.weights.shape != (ins.tile.rows, ins.tile.wcols) or ins.flags.shape != (ins.tile.wcols,):
                raise ArasError(f"program: WRITE #{n}: weights/flags do not match the tile shape")
            history.setdefault(ins.xbar, []).append(ins.tile.tag)
        else:
            if isinstance(ins, Compute):
                blocks = {(b.g, b.c) for b in ins.blocks}
                for te in ins.tiles:
                    h = history.get(te.xbar, [])
                    if te.need_gen == 0:
                        w0 = prog.initial_writes.get(te.xbar)
                        ok = not h and w0 is not None and w0.tile.tag == te.tag
                    else:
                        ok = te.need_gen == len(h) and h[te.need_gen - 1] == te.tag
                    if not ok:
                        raise ArasError(f"program: COMPUTE #{n} (layer {ins.layer} round {ins.round}): crossbar "
                                        f"{te.xbar} does not hold tile {te.tag} (from a preceding WRITE or "
                                        "resident from the previous run)")
                    if (te.tag[1], te.tag[3]) not in blocks:
                        raise ArasError(f"program: COMPUTE #{n}: tile {te.tag} belongs to no block of the round")
                    if not 0 <= te.replica < ins.replicas:
                        raise ArasError(f"program: COMPUTE #{n}: replica {te.replica} of {ins.replicas}")
                    s = seen_tiles.setdefault(ins.layer, set())
                    if (te.tag, te.replica) in s:
                        raise ArasError(f"program: tile {te.tag} copy {te.replica} appears twice")
                    s.add((te.tag, te.replica))
                tags = {}
                for te in ins.tiles:
                    tags.setdefault(te.tag, set()).add(te.replica)
                if any(len(v) != ins.replicas for v in tags.values()):
                    raise ArasError(f"program: COMPUTE #{n}: every tile needs exactly {ins.replicas} copies")
                xs = [te.xbar for te in ins.tiles]
                if len(set(xs)) != len(xs):
                    raise ArasError(f"program: COMPUTE #{n}: a crossbar is named twice")
                with_tiles = {(te.tag[1], te.tag[3]) for te in ins.tiles}
                for b in ins.blocks:
                    if (b.g, b.c) not in with_tiles:
                        raise ArasError(f"program: COMPUTE #{n}: output block (g{b.g}, c{b.c}) has no tile "
                                        "in the round")
                    pmodes.setdefault((ins.layer, b.g, b.c), []).append((n, b))
            e += 1
    for (li, g, c), seq in pmodes.items():
        modes = [b.pmode for _, b in seq]
        ok = modes == [PMODE_COMPLETE] or (len(modes) >= 2 and modes[0] == PMODE_FIRST and modes[-1] == PMODE_LAST
                                           and all(m == PMODE_MIDDLE for m in modes[1:-1]))
        if not ok or (len(modes) > 1 and (seq[0][1].psum is None or any(b.psum != seq[0][1].psum for _, b in seq))):
            raise ArasError(f"program: layer {li} block (g{g}, c{c}): psum modes {modes} over rounds "
                            f"(COMPUTE #{seq[0][0]} on) are not complete, or first, middle..., last on one psum tensor")
    for li, lt in prog.tilings.items():
        want = {t.tag for t in lt.tiles}
        got = [tag for tag, _ in seen_tiles.get(li, set())]
        if set(got) != want or len(got) != sum(
                ins.replicas * len({te.tag for te in ins.tiles}) for ins in prog.instrs
                if isinstance(ins, Compute) and ins.layer == li):
            raise ArasError(f"program: layer {li}: rounds do not cover every tile exactly once")
