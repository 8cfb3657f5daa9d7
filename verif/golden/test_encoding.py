"""Encodings round-trip exactly: Σ x·w recovered from cell levels for every encoding and cell width."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim_models.crossbar import mvm
from sim_models.encoding import FAMILIES, Encoding, column_values, decode, encode, family_of

WEIGHTS = arrays(np.int64, st.tuples(st.integers(1, 12), st.integers(1, 6)), elements=st.integers(-127, 127))


@settings(max_examples=60, deadline=None)
@given(w=WEIGHTS, enc=st.sampled_from(list(Encoding)), cell_bits=st.sampled_from([1, 2, 4, 8]))
def test_every_encoding_round_trips(w, enc, cell_bits):
    """Unit input vectors read back each weight exactly (decode(encode(w)) == w)."""
    fam = family_of(enc)
    flags = np.full(w.shape[1], enc == FAMILIES[fam][1])
    levels = encode(w, fam, flags, cell_bits)
    assert levels.max() < (1 << cell_bits)
    eye = np.eye(w.shape[0], dtype=np.int64)
    t = eye @ levels.astype(np.int64)
    got = decode(column_values(t, fam, cell_bits), eye.sum(axis=1), fam, flags)
    np.testing.assert_array_equal(got, w)


@settings(max_examples=40, deadline=None)
@given(w=WEIGHTS, seed=st.integers(0, 2**31), fam=st.sampled_from(["offset", "signmag"]))
def test_mixed_flags_dot_products_exact(w, seed, fam):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (5, w.shape[0]))
    flags = rng.integers(0, 2, w.shape[1]).astype(bool)
    t = mvm(x, encode(w, fam, flags, 2), adc_max=(1 << 20) - 1, force_bit_serial=True)
    np.testing.assert_array_equal(decode(column_values(t, fam, 2), x.sum(axis=1), fam, flags), x @ w)


@pytest.mark.parametrize("enc,w,codes", [
    (Encoding.OFFSET, -127, [1]), (Encoding.OFFSET, 0, [128]), (Encoding.OFFSET, 127, [255]),
    (Encoding.OFFSET_INV, -127, [254]), (Encoding.OFFSET_INV, 0, [127]), (Encoding.OFFSET_INV, 127, [0]),
    (Encoding.SIGNMAG, -5, [0, 5]), (Encoding.SIGNMAG, 5, [5, 0]), (Encoding.SIGNMAG_SWAP, 5, [0, 5]),
])
def test_code_table(enc, w, codes):
    """Known codes: 8-bit cells show the code itself in each physical column."""
    fam = family_of(enc)
    lv = encode(np.array([[w]]), fam, np.array([enc == FAMILIES[fam][1]]), 8)
    assert lv.ravel().tolist() == codes


def test_slices_are_little_endian_2bit():
    lv = encode(np.array([[-128 + 0b11100100]]), "offset", np.array([False]), 2)  # code 0b11_10_01_00
    assert lv.ravel().tolist() == [0, 1, 2, 3]
