"""hw.fixedpoint (SRDHM, RDBPOT, MBQM, sat32, trunc_div) against sim_models.quant: corner tables and
random vectors through Amaranth's simulator, plus Verilog conversion."""

import numpy as np
import pytest
from amaranth import Module, signed, unsigned
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from aras import quant as aquant
from hw import fixedpoint as fp
from sim_models import quant

I32_MIN, I32_MAX = fp.INT32_MIN, fp.INT32_MAX


class Harness(wiring.Component):
    """All primitives side by side, combinational."""

    a: In(signed(32))
    b: In(signed(32))
    x: In(signed(32))
    e: In(unsigned(5))
    m: In(signed(32))
    shift: In(signed(8))
    wide: In(signed(40))
    den: In(unsigned(16))
    srdhm: Out(signed(32))
    rdbpot: Out(signed(32))
    mbqm: Out(signed(32))
    sat: Out(signed(32))
    div: Out(signed(41))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.srdhm.eq(fp.srdhm(m, self.a, self.b)),
            self.rdbpot.eq(fp.rdbpot(m, self.x, self.e)),
            self.mbqm.eq(fp.mbqm(m, self.x, self.m, self.shift)),
            self.sat.eq(fp.sat32(m, self.wide)),
            self.div.eq(fp.trunc_div(m, self.wide, self.den)),
        ]
        return m


def run_vectors(vectors):
    """vectors: list of dicts of input values -> list of dicts of outputs."""
    dut = Harness()
    out = []

    async def bench(ctx):
        for v in vectors:
            for k, val in v.items():
                ctx.set(getattr(dut, k), int(val))
            out.append({k: ctx.get(getattr(dut, k)) for k in ("srdhm", "rdbpot", "mbqm", "sat", "div")})

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


CORNER_I32 = [0, 1, -1, 2, -2, I32_MAX, I32_MIN, I32_MIN + 1, I32_MAX - 1, 1 << 30, -(1 << 30), (1 << 30) + 1,
              -(1 << 30) - 1, 12345, -12345, 1690499128, -1690499128]


def test_srdhm_corners():
    vecs = [{"a": a, "b": b} for a in CORNER_I32 for b in CORNER_I32]
    got = run_vectors(vecs)
    exp = quant.srdhm([v["a"] for v in vecs], [v["b"] for v in vecs])
    assert [g["srdhm"] for g in got] == exp.tolist()
    # Known answers: the only saturating case, and the §6.4 worked example.
    lookup = {(v["a"], v["b"]): g["srdhm"] for v, g in zip(vecs, got, strict=True)}
    assert lookup[(I32_MIN, I32_MIN)] == I32_MAX
    assert lookup[(I32_MIN + 1, I32_MIN)] == I32_MAX  # product 2^62 − 2^31 rounds to 2^31 − 1
    assert run_vectors([{"a": 1000, "b": 1690499128}])[0]["srdhm"] == 787


@pytest.mark.parametrize(("x", "e", "expected"), [
    (787, 6, 12),  # §6.4
    (5, 1, 3), (-5, 1, -3), (3, 1, 2), (-3, 1, -2),  # halves away from zero
    (4, 1, 2), (-4, 1, -2), (7, 2, 2), (-7, 2, -2), (6, 2, 2), (-6, 2, -2), (-2, 2, -1), (2, 2, 1),
    (I32_MAX, 31, 1), (I32_MIN, 31, -1), (I32_MIN, 0, I32_MIN), (I32_MAX, 1, 1 << 30),
    (-1, 31, 0), (1 << 30, 31, 1), (-(1 << 30), 31, -1), ((1 << 30) - 1, 31, 0),
])
def test_rdbpot_known(x, e, expected):
    got = run_vectors([{"x": x, "e": e}])[0]["rdbpot"]
    assert got == expected == int(quant.rdbpot(x, e))


def test_rdbpot_random_all_exponents():
    rng = np.random.default_rng(1)
    xs = np.concatenate([rng.integers(I32_MIN, I32_MAX, 32 * 40, endpoint=True), np.array(CORNER_I32 * 32)])
    es = np.concatenate([np.repeat(np.arange(32), 40), np.repeat(np.arange(32), len(CORNER_I32))])
    got = run_vectors([{"x": int(x), "e": int(e)} for x, e in zip(xs, es, strict=True)])
    assert [g["rdbpot"] for g in got] == quant.rdbpot(xs, es).tolist()


def test_mbqm_all_shifts_and_corners():
    rng = np.random.default_rng(2)
    vecs = []
    for s in range(-31, 31):
        for x in [0, 1, -1, I32_MAX, I32_MIN, 1 << 20, -(1 << 20), 127, -128]:
            for m in [1 << 30, (1 << 31) - 1, -(1 << 31), -(1 << 30), 1690499128, 0]:
                vecs.append({"x": x, "m": m, "shift": s})
        for _ in range(20):
            vecs.append({"x": int(rng.integers(I32_MIN, I32_MAX, endpoint=True)),
                         "m": int(rng.integers(I32_MIN, I32_MAX, endpoint=True)), "shift": s})
    got = run_vectors(vecs)
    exp = quant.mbqm([v["x"] for v in vecs], [v["m"] for v in vecs], [v["shift"] for v in vecs])
    bad = [(v, g["mbqm"], e) for v, g, e in zip(vecs, got, exp.tolist(), strict=True) if g["mbqm"] != e]
    assert not bad, bad[:5]


def test_mbqm_requant_multipliers():
    """Multipliers as the quantizer makes them (QuantizeMultiplier of reals, incl. negative slopes)."""
    rng = np.random.default_rng(3)
    reals = np.concatenate([10.0 ** rng.uniform(-9, 3, 300), -(10.0 ** rng.uniform(-6, 1, 100))])
    vecs = []
    for r in reals:
        mm, sh = aquant.quantize_multiplier(float(r))
        vecs.append({"x": int(rng.integers(-(1 << 24), 1 << 24)), "m": mm, "shift": sh})
    got = run_vectors(vecs)
    exp = quant.mbqm([v["x"] for v in vecs], [v["m"] for v in vecs], [v["shift"] for v in vecs])
    assert [g["mbqm"] for g in got] == exp.tolist()


def test_sat32_and_trunc_div():
    wides = [0, 5, -5, I32_MAX, I32_MAX + 1, I32_MIN, I32_MIN - 1, (1 << 39) - 1, -(1 << 39), 123456789012]
    dens = [1, 2, 3, 7, 9, 65535]
    vecs = [{"wide": w, "den": d} for w in wides for d in dens]
    got = run_vectors(vecs)
    for v, g in zip(vecs, got, strict=True):
        assert g["sat"] == min(max(v["wide"], I32_MIN), I32_MAX)
        q = abs(v["wide"]) // v["den"]
        assert g["div"] == (q if v["wide"] >= 0 else -q)


def test_converts_to_verilog():
    text = verilog.convert(Harness(), name="fixedpoint_harness", emit_src=False)
    assert "module fixedpoint_harness" in text
