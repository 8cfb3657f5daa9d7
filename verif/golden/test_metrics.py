"""The efficiency figures of docs/results.md §9 (aras/metrics.py), by hand."""

from __future__ import annotations

import copy

import pytest

from aras.metrics import efficiency, macs_per_sample
from verif.golden.test_spec_example import example_trace


def test_macs_of_the_spec_example_by_hand():
    # conv0: 4 output channels x (2 channels x 3 x 3) x 4 positions = 288; fc2: 6 x 16 = 96; flatten: none.
    tr = example_trace()
    assert macs_per_sample(tr) == 288 + 96


def test_grouped_conv_counts_each_group_once():
    # conv0 as 2 groups: weight (4, 1, 3, 3), each group 2 x (1 x 9) x 4 positions -> 2 x 72 = 144.
    tr = copy.deepcopy(example_trace())
    conv = tr.layers[0]
    conv.attrs["groups"] = 2
    conv.arrays["weight"] = conv.arrays["weight"][:, :1]
    assert macs_per_sample(tr) == 144 + 96


def test_efficiency_by_hand():
    # 768 ops in 1 µs on 2 mm² with 2 µJ: 768 / 2e-6 / 1e12 = 3.84e-4 TOPS/W; 768 / 1e-6 / 1e12 / 2 = 3.84e-4
    # TOPS/mm²; EDP 2e-6 J x 1e-6 s = 2e-12 J·s.
    f = efficiency({"latency_s": 1e-6, "energy_j": {"total": 2e-6}}, 768, 2.0)
    assert f["tops_per_w"] == pytest.approx(3.84e-4)
    assert f["tops_per_mm2"] == pytest.approx(3.84e-4)
    assert f["edp_js"] == pytest.approx(2e-12)
