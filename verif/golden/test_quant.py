"""TFLite int8 arithmetic (offline helpers aras.quant, run time sim_models.quant): known answers and
agreement with the scalar reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aras import quant as AQ
from sim_models import quant as Q
from verif.golden import intref

INT32 = st.integers(-(1 << 31), (1 << 31) - 1)


@pytest.mark.parametrize("real,m,shift", [
    (0.0, 0, 0),
    (0.5, 1 << 30, 0),
    (1.0, 1 << 30, 1),
    (0.25, 1 << 30, -1),
    (0.75, 3 << 29, 0),
    (2.0 ** -40, 0, 0),  # exponent below -31: flushed to zero
    (-0.5, -(1 << 30), 0),
])
def test_quantize_multiplier_known_answers(real, m, shift):
    assert AQ.quantize_multiplier(real) == (m, shift)


def test_quantize_multiplier_rounds_up_to_next_power():
    # q * 2**31 rounds to 2**31 -> halved, shift + 1
    m, s = AQ.quantize_multiplier(1 - 2.0 ** -33)
    assert (m, s) == (1 << 30, 1)


@pytest.mark.parametrize("a,b,want", [
    (-(1 << 31), -(1 << 31), (1 << 31) - 1),  # the one saturating case
    (1 << 30, 1 << 30, 1 << 29),
    (1, 1 << 30, 1),  # 0.5 rounds away from zero
    (-1, 1 << 30, 0),  # gemmlowp nudge: a negative half rounds toward zero
    (3, 1 << 29, 1),  # 0.75 -> 1
    (-3, 1 << 29, -1),
])
def test_srdhm_known_answers(a, b, want):
    assert int(Q.srdhm(a, b)) == want == intref.srdhm(a, b)


@pytest.mark.parametrize("x,e,want", [(5, 1, 3), (-5, 1, -3), (4, 1, 2), (-4, 1, -2), (6, 2, 2), (-6, 2, -2),
                                      (7, 0, 7), (-(1 << 31), 31, -1), (3, 2, 1), (-3, 2, -1), (2, 2, 1), (-2, 2, -1)])
def test_rdbpot_known_answers(x, e, want):
    assert int(Q.rdbpot(x, e)) == want == intref.rdbpot(x, e)


@given(INT32, st.integers(1 << 30, (1 << 31) - 1), st.integers(-31, 0))
def test_mbqm_matches_scalar_reference(x, m, shift):
    assert int(Q.mbqm(np.int64(x), m, shift)) == intref.mbqm(x, m, shift)


@given(st.floats(-300, 300, allow_nan=False))
def test_round_half_away(v):
    import math
    want = int(math.copysign(math.floor(abs(v) + 0.5), v))
    assert int(AQ.round_half_away(v)) == want


def test_quantize_clamps_and_rounds_half_away():
    q = AQ.quantize(np.array([0.125, -0.125, 0.375, 100.0, -100.0]), 0.25, 3)  # exact halves
    np.testing.assert_array_equal(q, [4, 2, 5, 127, -128])
