"""Experiment runners and reports (aras/experiments.py, aras/report.py): ``run_compare`` on the committed
LeNet-5 trace with the ``tiny`` config, ``run_sweep`` on small parameter sets; the tables carry every
section and the real/synthetic marker, their numbers match results.json, the plots are PNG images."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from aras.config import preset
from aras.errors import ArasError
from aras.experiments import (
    ENDURANCE,
    compare_runs,
    count_tiles,
    parse_sweep_values,
    run_compare,
    run_sweep,
    scale_xbars,
)
from aras.trace import Trace

LENET = Path(__file__).resolve().parents[2] / "aras" / "fixtures" / "lenet5"
TINY = preset("tiny")
SECTIONS = ("1. Speedup and energy", "2. Energy breakdown per mode", "3. Write activity and wear",
            "4. Ablation", "5. Steady state vs cold start", "6. Distance to the lower bounds")


def _tables(md: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table as (header, rows)."""
    out, cur = [], None
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if cur is None:
                cur = (cells, [])
            elif not all(set(c) <= {"-"} for c in cells):
                cur[1].append(cells)
        elif cur is not None:
            out.append(cur)
            cur = None
    if cur is not None:
        out.append(cur)
    return out


def _section_table(md: str, heading: str, nth: int = 0):
    part = md.split(heading, 1)[1].split("\n## ", 1)[0]
    return _tables(part)[nth]


def _num(s: str) -> float:
    return float(s.replace(",", "").replace("×", "").replace("%", "").strip())


def _row(table, **match) -> dict[str, str]:
    head, rows = table
    for r in rows:
        d = dict(zip(head, r, strict=True))
        if all(d[k] == v for k, v in match.items()):
            return d
    raise AssertionError(f"no row {match} in {head}")


def _close(text: str, value: float, rel: float) -> bool:
    return math.isclose(_num(text), value, rel_tol=rel, abs_tol=1e-12)


def _png_ok(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300, (path, img.shape)
    assert np.ptp(img[..., :3]) > 0.5, f"{path} is blank"


@pytest.fixture(scope="module")
def compare(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    data = run_compare([str(LENET)], TINY, out, jobs=1, progress=False)
    return out, data


# ---------------------------------------------------------------------------------------------- compare
def test_compare_files_and_sections(compare):
    out, data = compare
    md = (out / "report.md").read_text()
    for s in SECTIONS:
        assert f"## {s}" in md, s
    # header: config name, key parameters, pointer to the architecture doc
    for s in ("config `tiny`", "8 (2 PEs × 2 APUs × 2) of 16×16 cells", "2-bit cells", "ADC: 6 bits",
              "pulse 1 ns", "SET 0.6 pJ", "docs/architecture.md", "2×2 int8 MACs"):
        assert s in md, s
    imgs = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert len(imgs) == 6
    for name in imgs:
        _png_ok(out / name)
    saved = json.loads((out / "results.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert saved["runs"]["lenet5"].keys() == set(compare_runs())
    assert saved["runs"]["lenet5"]["aras"]["cycles"] == data["runs"]["lenet5"]["aras"]["cycles"]
    ht = (out / "report.html").read_text()
    assert ht.count("data:image/png;base64,") == len(imgs) and ".png'" not in ht
    assert f"{data['runs']['lenet5']['baseline']['cycles']:,}" in ht


def test_every_table_marks_weights(compare):
    out, _ = compare
    tables = _tables((out / "report.md").read_text())
    assert len(tables) >= 9
    for head, rows in tables:
        assert "weights" in head, head
        col = head.index("weights")
        assert rows and all(r[col] == "real" for r in rows), (head, rows)


def test_md_numbers_match_results(compare):
    out, data = compare
    md = (out / "report.md").read_text()
    r = json.loads((out / "results.json").read_text())["runs"]["lenet5"]
    a, b, t = r["aras"], r["baseline"], r["tpu"]
    row = _row(_section_table(md, SECTIONS[0]), network="lenet5")
    assert _num(row["ARAS cycles"]) == a["cycles"] and _num(row["TPU-like cycles"]) == t["cycles"]
    assert _close(row["speedup vs baseline"], b["cycles"] / a["cycles"], 5e-3)
    assert _close(row["speedup vs TPU-like"], t["cycles"] / a["cycles"], 5e-3)
    assert _close(row["baseline energy (µJ)"], b["energy_j"]["total"] * 1e6, 5e-4)
    saving = 100 * (1 - a["energy_j"]["total"] / b["energy_j"]["total"])
    assert abs(_num(row["energy saving vs baseline"]) - saving) <= 0.051

    bd = _row(_section_table(md, SECTIONS[1]), network="lenet5", mode="TPU-like")
    assert _close(bd["MAC array (µJ)"], t["energy_j"]["mac"] * 1e6, 5e-4) and bd["ReRAM write (µJ)"] == "—"
    bd = _row(_section_table(md, SECTIONS[1]), network="lenet5", mode="ARAS")
    assert _close(bd["ReRAM write (µJ)"], a["energy_j"]["write"] * 1e6, 5e-4)
    assert _close(bd["total (µJ)"], a["energy_j"]["total"] * 1e6, 5e-4)

    w = _row(_section_table(md, SECTIONS[2]), network="lenet5", mode="baseline PUM")
    assert _num(w["rows written"]) == b["writes"]["rows_written"]
    assert _num(w["cells changed"]) == b["writes"]["cells_changed"]
    mx = b["writes"]["max_cell_writes"]
    assert mx > 0 and _num(w["max programs per cell"]) == mx
    life = _row(_section_table(md, SECTIONS[2], 1), network="lenet5", mode="baseline PUM")
    runs_1e6 = int(1e6 // mx)
    assert life["endurance 1e6"].startswith(f"{runs_1e6:,} runs (")

    ab = _row(_section_table(md, SECTIONS[3]), network="lenet5", run="no differential write")
    nd = r["no_diff_write"]
    assert _num(ab["cycles"]) == nd["cycles"]
    assert _close(ab["write energy / ARAS"], nd["energy_j"]["write"] / a["energy_j"]["write"], 5e-3)

    cs = _row(_section_table(md, SECTIONS[4]), network="lenet5", mode="ARAS")
    assert _num(cs["cold cycles"]) == a["cold_start"]["cycles"] and _num(cs["steady cycles"]) == a["cycles"]

    lb = _row(_section_table(md, SECTIONS[5]), network="lenet5", mode="ARAS")
    assert _num(lb["compute bound"]) == a["lower_bound"]["compute_cycles"]
    assert _num(lb["lower bound (cycles)"]) == max(a["lower_bound"]["compute_cycles"], a["lower_bound"]["write_cycles"])
    assert _close(lb["cycles / bound"], a["cycles"] / a["lower_bound"]["cycles"], 5e-3)
    assert data["summary"]["lenet5"]["lifetime"]["baseline"][0]["runs"] == runs_1e6


def test_lifetime_known_answer():
    from aras.experiments import lifetime

    lt = lifetime(3, 2e-3)
    assert [x["endurance"] for x in lt] == list(ENDURANCE) and len(lt) == 7
    assert lt[0]["runs"] == 333_333 and math.isclose(lt[0]["seconds"], 666.666)
    assert all(x["runs"] is None and x["seconds"] is None for x in lifetime(0, 1e-3))


def test_compare_bad_model_writes_nothing(tmp_path):
    with pytest.raises(ArasError, match="neither a trace directory nor a model name"):
        run_compare(["no-such-net"], TINY, tmp_path / "o", jobs=1, progress=False)
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------- sweep
def test_scale_xbars_known_answers():
    paper = preset("paper")  # 64 crossbars and 8 write drivers per PE, 8 per APU
    assert scale_xbars(paper, 256) == {"n_pe": 4, "apus_per_pe": 8, "xbars_per_apu": 8, "write_drivers_per_pe": 8}
    assert scale_xbars(paper, 13) == {"n_pe": 1, "apus_per_pe": 2, "xbars_per_apu": 8, "write_drivers_per_pe": 2}
    assert scale_xbars(paper, 5) == {"n_pe": 1, "apus_per_pe": 1, "xbars_per_apu": 5, "write_drivers_per_pe": 1}
    assert scale_xbars(paper, 6400)["n_pe"] == 64  # program format v1: at most 4096 crossbars
    assert scale_xbars(TINY, 1) == {"n_pe": 1, "apus_per_pe": 1, "xbars_per_apu": 2, "write_drivers_per_pe": 1}


def test_sweep_points_known_answers():
    from aras.experiments import _sweep_point

    c, ch, _, _ = _sweep_point(TINY, "cell_bits", 4, 100)  # 16 rows x 15 = 240 -> 8 bits
    assert ch == {"cell_bits": 4, "adc_bits": 8} and c.adc_exact_bits == 8
    assert math.isclose(c.write_energy_pj[0][3], 1.8)  # 3 SET pulses
    assert _sweep_point(TINY, "cell_bits", 1, 100)[1]["adc_bits"] == 5  # 16 x 1 = 16 -> 5 bits
    c, ch, _, label = _sweep_point(TINY, "xbars", 0.5, 710)  # 355 -> 89 PEs of 4
    assert c.n_xbars == 356 and label == "50 %"
    c, _, _, _ = _sweep_point(TINY, "write_energy", 1.5, 1)
    assert math.isclose(c.write_energy_pj[3][0], 4.5) and math.isclose(c.write_energy_pj[0][2], 3.0)
    assert _sweep_point(TINY, "lookahead", None, 1)[2] == (("lookahead", None),)
    with pytest.raises(ArasError, match="lookahead"):
        _sweep_point(TINY, "lookahead", 0, 1)


def test_parse_sweep_values():
    assert parse_sweep_values("lookahead", "1, 4,none") == [1, 4, None]
    assert parse_sweep_values("xbars", "0.05,1") == [0.05, 1.0]
    assert parse_sweep_values("batch", "1,2") == [1, 2]
    with pytest.raises(ArasError, match="integer"):
        parse_sweep_values("batch", "1.5")
    with pytest.raises(ArasError, match="not a number"):
        parse_sweep_values("write_latency", "fast")
    with pytest.raises(ArasError, match="unknown sweep parameter"):
        parse_sweep_values("voltage", "1")


def test_sweep_batch_records_what_does_not_fit(tmp_path):
    d = run_sweep(str(LENET), TINY, "batch", [1, 2], tmp_path, jobs=1, progress=False)
    p1, p2 = d["points"]
    assert set(p1["runs"]) == {"aras", "baseline", "tpu"} and p1["summary"]["speedup_vs_baseline"] > 1
    assert "Gbuffer too small" in p2["error"] and p2["runs"] == {}
    md = (tmp_path / "sweep_batch.md").read_text()
    head, rows = _tables(md)[0]
    assert [r[head.index("weights")] for r in rows] == ["real", "real"]
    assert _num(rows[0][head.index("ARAS cycles")]) == p1["runs"]["aras"]["cycles"]
    assert rows[1][head.index("ARAS cycles")].startswith("not run: ") and "Gbuffer too small" in rows[1][3]
    assert json.loads((tmp_path / "sweep_batch.json").read_text())["points"][1]["error"] == p2["error"]
    _png_ok(tmp_path / "sweep_batch.png")


def test_sweep_lookahead_in_a_pool_matches_compare(tmp_path, compare):
    _, cmp = compare
    d = run_sweep(Trace.load(LENET), TINY, "lookahead", [1, None], tmp_path, jobs=2, progress=False)
    one, unb = d["points"]
    assert d["jobs"] == 2 and unb["label"] == "unbounded"
    assert unb["runs"]["aras"]["cycles"] == cmp["runs"]["lenet5"]["aras"]["cycles"]
    assert one["runs"]["aras"]["cycles"] >= unb["runs"]["aras"]["cycles"]
    assert one["runs"]["baseline"] == unb["runs"]["baseline"]  # run once: look-ahead does not touch it
    assert "tpu" not in one["runs"]
    assert d["model"]["tiles"] == count_tiles(Trace.load(LENET), TINY)
    _png_ok(tmp_path / "sweep_lookahead.png")


def test_every_sweep_parameter_is_labelled():
    from aras.experiments import DEFAULT_SWEEP_VALUES, SWEEP_PARAMS
    from aras.report import SWEEP_AXIS

    assert set(SWEEP_PARAMS) == set(SWEEP_AXIS) == set(DEFAULT_SWEEP_VALUES)


def test_compare_report_says_when_the_tpu_array_is_not_area_matched(tmp_path):
    """``--tpu-array`` (config tpu_rows/tpu_cols) overrides the area matching: the header says so instead of
    claiming the array fits ARAS's analog compute area."""
    data = run_compare([str(LENET)], TINY.replace(tpu_rows=3, tpu_cols=5), tmp_path, jobs=1, progress=False)
    md = (tmp_path / "report.md").read_text()
    assert "3×5 int8 MACs set by `--tpu-array`, **not area-matched**" in md
    assert "sized so that" not in md
    assert not data["runs"][next(iter(data["runs"]))]["tpu"]["tpu"]["area_matched"]
