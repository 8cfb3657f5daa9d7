"""Energy and area of a run from its event counters (docs/architecture.md §11.2, §12)."""

from __future__ import annotations

from aras.config import Config

PJ = 1e-12


def energy_breakdown(cnt: dict, write_energy_pj: float, cfg: Config) -> dict[str, float]:
    """Joules per component; ``write`` is the ReRAM write energy incl. read-before-write."""
    e = {
        "write": write_energy_pj,
        "adc": cnt["adc_conversions"] * cfg.e_adc_pj,
        "xbar_read": cnt["xbar_reads"] * cfg.e_xbar_read_pj,
        "dac": cnt["dac_activations"] * cfg.e_dac_pj,
        "digital": (cnt["adc_conversions"] + cnt["input_sum_ops"]) * cfg.e_digital_op_pj
        + cnt["post_ops"] * cfg.e_post_op_pj,
        "vector": cnt["vector_ops"] * cfg.e_vector_op_pj,
        "gbuf_dynamic": (cnt["gbuf_reads"] + cnt["gbuf_writes"]) * cfg.e_gbuf_access_pj,
        "gbuf_static": cnt["gbuf_active_bank_cycles"] * cfg.p_gbuf_bank_leak_mw / cfg.clock_ghz,
        "write_buffer": cnt["write_buffer_bytes"] * cfg.e_wbuf_byte_pj,
        "dram": 8 * cnt["dram_bytes"] * cfg.dram_pj_per_bit,
        "control": 0.0,  # controller logic not modelled in v1 (docs/architecture.md §13.2)
    }
    out = {k: v * PJ for k, v in e.items()}
    out["total"] = sum(out.values())
    return out


def area_mm2(cfg: Config) -> dict[str, float]:
    x = cfg.n_xbars
    adcs = x * cfg.xbar_cols // cfg.cols_per_adc
    a = {
        "crossbars": x * cfg.area_xbar_mm2,
        "adc": adcs * cfg.area_adc_mm2,
        "dac": x * cfg.xbar_rows * cfg.area_dac_mm2,
        "sample_hold": x * cfg.xbar_cols * cfg.area_sh_mm2,
        "shift_add": adcs * cfg.area_sna_mm2,
        "gbuffer": cfg.gbuf_banks * cfg.area_gbuf_bank_mm2,
        "write_buffer": cfg.n_pe * cfg.write_buffer_bytes / 65536 * cfg.area_gbuf_64k_mm2,
        "vector_unit": cfg.vector_lanes * cfg.area_vector_lane_mm2,
    }
    a["total"] = sum(a.values())
    return a
