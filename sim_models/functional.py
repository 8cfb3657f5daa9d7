"""Bit-exact functional golden model: runs a layer trace the way the hardware computes it.

Crossbar layers (conv2d, linear) are tiled onto ``xbar_rows``-row chunks per group, encoded into
cell levels (``encoding``), multiplied bit-serially with clipping ADCs (``crossbar``), decoded with the
tile's input sum, accumulated over row chunks in int32, then biased (zero point folded in),
requantized and activated (``quant``). Other layers run on the ``vector_unit`` or the ``host``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from aras.config import Config
from aras.errors import ArasError
from aras.ops_float import im2col
from aras.program import Compute, Program, Write, positions_of
from aras.quant import INT32_MAX, INT32_MIN
from aras.trace import Layer, Trace

from . import host, vector_unit
from .crossbar import mvm
from .encoding import column_values, decode, encode
from .quant import requantize


@dataclass
class LayerEncoding:
    """A crossbar layer's encoding: the family, and per (group, row chunk, column) the alternative flag.

    A replicated layer (program COMPUTE with ``replicas`` = r) has one flag array per copy in
    ``copies``; copy q computes the positions ``positions_of(P, r, q)`` with its own encoding, which
    matters when the ADCs clip."""

    family: str = "offset"
    flags: np.ndarray | None = None  # bool (groups, row_chunks, N_g); None = all plain
    copies: list[np.ndarray] | None = None


@dataclass
class EncodingPlan:
    layers: dict[str, LayerEncoding] = field(default_factory=dict)

    def get(self, name: str) -> LayerEncoding:
        return self.layers.get(name, LayerEncoding())


def plan_from_program(prog: Program, trace: Trace, cfg: Config) -> EncodingPlan:
    """The encoding a program's WRITEs put on the crossbars, per layer (and per copy), for the
    functional model: what the hardware computes with when it executes ``prog``."""
    history: dict[int, list[Write]] = {}
    plan = EncodingPlan()
    for ins in prog.instrs:
        if isinstance(ins, Write):
            history.setdefault(ins.xbar, []).append(ins)
            continue
        if not isinstance(ins, Compute):
            continue
        ly = trace.layers[ins.layer]
        lt = prog.tilings[ins.layer]
        g, _, ng, chunks = geometry(ly, cfg)
        enc = plan.layers.get(ly.name)
        if enc is None:
            enc = plan.layers[ly.name] = LayerEncoding(prog.writes[0].family if prog.writes else "offset",
                                                       copies=[np.zeros((g, chunks, ng), bool)
                                                               for _ in range(ins.replicas)])
        for te in ins.tiles:
            w = history[te.xbar][te.need_gen - 1] if te.need_gen else prog.initial_writes[te.xbar]
            enc.family = w.family
            f = enc.copies[te.replica]
            t = w.tile
            if lt.packed:
                for i in range(t.pack_g):
                    f[t.g * lt.pack + i, 0, :] = w.flags[i * ng:(i + 1) * ng]
            else:
                f[t.g, t.r, t.c * lt.cw:t.c * lt.cw + t.wcols] = w.flags
    return plan


def geometry(ly: Layer, cfg: Config) -> tuple[int, int, int, int]:
    """(groups, K_g, N_g, row_chunks) of a crossbar layer."""
    w = ly.arrays["weight"]
    g = int(ly.attrs.get("groups", 1)) if ly.op == "conv2d" else 1
    kg = int(np.prod(w.shape[1:]))
    return g, kg, w.shape[0] // g, -(-kg // cfg.xbar_rows)


def _patches(ly: Layer, x: np.ndarray, zx: int, kernel) -> tuple[np.ndarray, tuple]:
    """Input vectors (B, P, K) and the output's spatial shape. Conv padding feeds the zero point."""
    if ly.op == "conv2d":
        a = ly.attrs
        cols, oh, ow = im2col(x.astype(np.int64), *kernel, tuple(a["stride"]), tuple(a["pads"]),
                              tuple(a["dilation"]), pad_value=zx)
        return cols, (oh, ow)
    lead = x.shape[1:-1]
    return x.reshape(x.shape[0], -1, x.shape[-1]).astype(np.int64), lead


class _CrossbarLayer:
    """Per-layer constants computed once (encoded tiles, folded bias) and reused for every batch chunk."""

    def __init__(self, ly: Layer, cfg: Config, enc: LayerEncoding, zx: int):
        self.ly, self.cfg, self.zx = ly, cfg, zx
        w = ly.arrays["weight"].astype(np.int64)
        self.groups, self.kg, self.ng, self.chunks = geometry(ly, cfg)
        self.kernel = w.shape[2:] if ly.op == "conv2d" else None
        shape = (self.groups, self.chunks, self.ng)
        copies = enc.copies if enc.copies is not None else [enc.flags]
        copies = [np.zeros(shape, bool) if f is None else np.asarray(f, bool) for f in copies]
        for f in copies:
            if f.shape != shape:
                raise ArasError(f"layer {ly.name!r}: encoding flags shape {f.shape} != {shape}")
        if enc.family not in ("offset", "signmag"):
            raise ArasError(f"layer {ly.name!r}: unknown encoding family {enc.family!r}")
        self.family, self.copies = enc.family, copies
        wg = w.reshape(self.groups, self.ng, self.kg).transpose(0, 2, 1)  # (G, K_g, N_g)
        r = cfg.xbar_rows
        # levels[q][c]: (G, rows_c, N_g * cols_per_weight) cell levels of row chunk c of every group, copy q.
        self.levels = [[
            np.stack([encode(wg[g, c * r:(c + 1) * r], self.family, f[g, c], cfg.cell_bits)
                      for g in range(self.groups)])
            for c in range(self.chunks)] for f in copies]
        self.bias_hw = ly.arrays["bias"].astype(np.int64) - zx * w.reshape(w.shape[0], -1).sum(axis=1)

    def _acc(self, cols: np.ndarray, q: int, force_bit_serial: bool) -> np.ndarray:
        """Σ x·w per (position row, channel) of ``cols`` (BP, K) through copy q's tiles."""
        cfg = self.cfg
        bp = cols.shape[0]
        xg = cols.reshape(bp, self.groups, self.kg).transpose(1, 0, 2)  # (G, BP, K_g)
        acc = np.zeros((self.groups, bp, self.ng), np.int64)
        r = cfg.xbar_rows
        for c in range(self.chunks):
            xs = xg[:, :, c * r:(c + 1) * r]
            for g in range(self.groups):
                t = mvm(xs[g], self.levels[q][c][g], cfg.adc_max, force_bit_serial)
                acc[g] += decode(column_values(t, self.family, cfg.cell_bits), xs[g].sum(axis=1), self.family,
                                 self.copies[q][g, c])
        return acc.transpose(1, 0, 2).reshape(bp, self.groups * self.ng)

    def __call__(self, x: np.ndarray, force_bit_serial: bool) -> np.ndarray:
        ly = self.ly
        cols, spatial = _patches(ly, x, self.zx, self.kernel)
        b, p, _ = cols.shape
        n = len(self.copies)
        if n == 1:
            acc = self._acc(cols.reshape(b * p, -1), 0, force_bit_serial)
        else:
            acc = np.empty((b, p, self.groups * self.ng), np.int64)
            for q in range(n):
                span = positions_of(p, n, q)
                part = cols[:, span.start:span.stop]
                acc[:, span.start:span.stop] = self._acc(part.reshape(-1, part.shape[-1]), q,
                                                         force_bit_serial).reshape(b, len(span), -1)
            acc = acc.reshape(b * p, -1)
        acc = acc + self.bias_hw
        if acc.min(initial=0) < INT32_MIN or acc.max(initial=0) > INT32_MAX:
            raise ArasError(f"layer {ly.name!r}: int32 accumulator overflow")
        a = ly.arrays
        y = requantize(acc, a["mult"].astype(np.int64), a["shift"].astype(np.int64), self.zo,
                       ly.attrs["act_min"], ly.attrs["act_max"],
                       a["mult_neg"].astype(np.int64) if "mult_neg" in a else None,
                       a["shift_neg"].astype(np.int64) if "shift_neg" in a else None)
        y = y.reshape((b,) + tuple(spatial) + (self.groups * self.ng,))
        if ly.op == "conv2d":
            y = y.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(y)


def run(trace: Trace, cfg: Config, inputs_q: np.ndarray, plan: EncodingPlan | None = None,
        force_bit_serial: bool = False, keep_all: bool = False, chunk: int = 128,
        progress: bool = False) -> dict[str, np.ndarray]:
    """Run ``trace`` on int8 inputs (batch first). Returns the int8 outputs (or every tensor)."""
    inputs_q = np.asarray(inputs_q)
    if inputs_q.dtype != np.int8 or tuple(inputs_q.shape[1:]) != trace.input_q.shape:
        raise ArasError(f"{trace.name}: inputs must be int8 of shape (N, {trace.input_q.shape}), "
                        f"got {inputs_q.dtype} {inputs_q.shape}")
    plan = plan or EncodingPlan()
    unknown = set(plan.layers) - {ly.name for ly in trace.weight_layers()}
    if unknown:
        raise ArasError(f"{trace.name}: encoding plan names unknown crossbar layers {sorted(unknown)}")
    xlayers = {}
    for ly in trace.weight_layers():
        xl = _CrossbarLayer(ly, cfg, plan.get(ly.name), trace.tensors[ly.inputs[0]].zero_point)
        xl.zo = trace.tensors[ly.output].zero_point
        xlayers[ly.name] = xl
    results: dict[str, list[np.ndarray]] = {}
    starts = range(0, len(inputs_q), chunk)
    for s in tqdm(starts, desc=f"simulate {trace.name}", disable=not progress or len(starts) < 2, leave=False):
        env = _run_chunk(trace, inputs_q[s:s + chunk], xlayers, force_bit_serial, keep_all)
        for k, v in env.items():
            results.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in results.items()}


def _run_chunk(trace: Trace, x: np.ndarray, xlayers, force_bit_serial: bool, keep_all: bool):
    env = {trace.input: x}
    last = {t: i for i, ly in enumerate(trace.layers) for t in ly.inputs}
    for i, ly in enumerate(trace.layers):
        ins = [env[t] for t in ly.inputs]
        env[ly.output] = run_layer(trace, ly, ins, xlayers.get(ly.name), force_bit_serial)
        if not keep_all:
            for t in set(ly.inputs):  # add(y, y) names y twice
                if last[t] == i and t not in trace.outputs:
                    del env[t]
    return env if keep_all else {o: env[o] for o in trace.outputs}


def run_layer(trace: Trace, ly: Layer, ins: list[np.ndarray], xl=None, force_bit_serial=False) -> np.ndarray:
    tin = [trace.tensors[t] for t in ly.inputs]
    tout = trace.tensors[ly.output]
    a = ly.attrs
    x = ins[0]
    if ly.on_crossbars:
        return xl(x, force_bit_serial)
    if ly.op == "maxpool":
        return vector_unit.maxpool(x, tuple(a["kernel"]), tuple(a["stride"]), tuple(a["pads"]), a["act_min"],
                                   a["act_max"])
    if ly.op == "avgpool":
        return vector_unit.avgpool(x, tuple(a["kernel"]), tuple(a["stride"]), tuple(a["pads"]), a["act_min"],
                                   a["act_max"], tin[0].zero_point, bool(a.get("count_include_pad", False)))
    if ly.op == "gap":
        return vector_unit.gap(x, a["act_min"], a["act_max"])
    if ly.op == "add":
        return vector_unit.add(x, ins[1], tin[0].zero_point, tin[1].zero_point, tout.zero_point, a)
    if ly.op == "clamp":
        return np.clip(x, a["act_min"], a["act_max"]).astype(np.int8)
    if ly.op == "leaky":
        return vector_unit.leaky(x, tin[0].zero_point, tout.zero_point, ly.arrays)
    if ly.op in ("reshape", "flatten"):
        return x.reshape((x.shape[0],) + tuple(tout.shape))
    if ly.on_host:
        return host.run(ly, ins, tin, tout)
    raise ArasError(f"layer {ly.name!r}: unsupported op {ly.op!r}")
