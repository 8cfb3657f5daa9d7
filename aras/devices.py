"""Named ReRAM device presets of the write model, each constant with its source (docs/devices.md).

A device sets the cell fields of :class:`aras.config.Config` that the write model reads (docs/architecture.md
section 8.2-8.3): pulse, verify and reset times, energy per SET/RESET pulse and program-and-verify pulses per
level step (``pulses_per_level``, which builds the default ``write_pulses`` table, hence the write time in
the golden model and in the RTL alike, and the default ``write_energy_pj`` table). Everything else of the
config (crossbars, ADCs, buffers, DRAM) is left as the base config has it.

Load with ``aras simulate MODEL --config paper --device NAME`` or from a TOML/JSON config file with
``device = "NAME"`` (over its ``base``, default ``paper``) or ``base = "NAME"`` (= ``paper`` with that device).
``aras config --devices`` lists them; ``aras config paper --device NAME`` prints the merged config.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ArasError

# NeuroSim real-device RRAM defaults (DNN_NeuroSim V2.1, Training_pytorch/NeuroSIM/Param.cpp): Ron = 100 kOhm,
# Roff = 10 x Ron, writeVoltage = 4 V, writePulseWidth = 50 ns, maxNumLevelLTP = maxNumLevelLTD = 32,
# readPulseWidth = 10 ns.
NEUROSIM_V_WRITE = 4.0
NEUROSIM_G_ON = 1 / 100e3
NEUROSIM_G_OFF = 1 / 1000e3
NEUROSIM_T_WRITE_NS = 50.0
NEUROSIM_LEVELS = 32
# NeuroSim's average-case cell energy per write pulse (SubArray.cpp, "half SET with Ron and Roff 50/50"):
# V_w^2 x (1/Ron + 1/Roff) / 2 x t_w = 16 x 5.5e-6 x 50e-9 J = 4.4 pJ.
NEUROSIM_E_PULSE_PJ = NEUROSIM_V_WRITE ** 2 * (NEUROSIM_G_ON + NEUROSIM_G_OFF) / 2 * NEUROSIM_T_WRITE_NS * 1e-9 * 1e12
# NeuroSim's pulses for a conductance change dG (ProcessingUnit.cpp): ceil(dG / minDeltaConductance) with
# minDeltaConductance = (Gmax - Gmin) / max(maxNumLevelLTP, maxNumLevelLTD). One level step of a 2-bit cell is a
# third of the range: ceil(32 / 3) = 11 pulses.
NEUROSIM_PULSES_PER_2BIT_STEP = -(-NEUROSIM_LEVELS // 3)


@dataclass(frozen=True)
class Device:
    name: str
    summary: str
    fields: dict  # config field -> (value, source)

    def values(self) -> dict:
        return {k: v for k, (v, _) in self.fields.items()}

    def sources(self) -> dict[str, str]:
        return {k: f"device {self.name}: {s}" for k, (_, s) in self.fields.items()}


DEVICES: dict[str, Device] = {
    "nvsim-sample": Device(
        "nvsim-sample",
        "binary-style fast cell, one pulse per level step (today's default; NVSim sample_RRAM.cell)",
        {
            "t_pulse_ns": (10.0, "NVSim sample_RRAM.cell SetPulse/ResetPulse 10 ns; MNSIM Write_Latency = 10 ns"),
            "t_verify_ns": (10.0, "program-and-verify: one read per pulse, NeuroSim readPulseWidth 10 ns"),
            "t_reset_ns": (10.0, "NVSim sample_RRAM.cell ResetPulse 10 ns"),
            "e_set_pj": (0.6, "NVSim sample_RRAM.cell SetEnergy 0.6 pJ per pulse"),
            "e_reset_pj": (0.6, "NVSim sample_RRAM.cell ResetEnergy 0.6 pJ per pulse"),
            "pulses_per_level": (1, "one program-and-verify pulse per level step (a binary cell switches in one)"),
        }),
    "neurosim-mlc": Device(
        "neurosim-mlc",
        "multi-level write-and-verify cell from NeuroSim's real-device RRAM defaults (4.4 pJ, 50 ns, "
        "11 pulses per 2-bit level step)",
        {
            "t_pulse_ns": (NEUROSIM_T_WRITE_NS, "DNN_NeuroSim V2.1 Param.cpp writePulseWidth = 50e-9"),
            "t_verify_ns": (10.0, "DNN_NeuroSim V2.1 Param.cpp readPulseWidth = 10e-9 (one verify read per pulse)"),
            "t_reset_ns": (NEUROSIM_T_WRITE_NS, "one write pulse (writePulseWidth 50 ns) to level 0"),
            "e_set_pj": (NEUROSIM_E_PULSE_PJ, "NeuroSim SubArray.cpp average-case cell energy per pulse "
                                              "V_w^2 (1/Ron + 1/Roff)/2 t_w with V_w = 4 V, Ron 100 kOhm, "
                                              "Roff 1 MOhm, t_w 50 ns (Param.cpp) = 4.4 pJ"),
            "e_reset_pj": (NEUROSIM_E_PULSE_PJ, "as e_set_pj (NeuroSim charges SET and RESET pulses alike)"),
            "pulses_per_level": (NEUROSIM_PULSES_PER_2BIT_STEP,
                                 "NeuroSim ProcessingUnit.cpp: ceil(dG / ((Gmax - Gmin) / maxNumLevelLTP)), "
                                 "maxNumLevelLTP = 32, dG = a third of the range for a 2-bit cell: ceil(32/3) = 11"),
        }),
    "neurram-slow": Device(
        "neurram-slow",
        "slow, microsecond-scale programmed cell (NeuRRAM class: incremental-pulse write-verify)",
        {
            "t_pulse_ns": (1000.0, "NeuRRAM (Wan et al., Nature 608, 2022, Extended Data Fig. 3): incremental-pulse "
                                   "write-verify; 1 us per pulse is our order-of-magnitude reading of its "
                                   "us-scale programming (the project brief's slow sweep end)"),
            "t_verify_ns": (1000.0, "our choice: the verify read of a write-verify iteration as long as its pulse "
                                    "(NeuRRAM reads each cell back through its ADC path)"),
            "t_reset_ns": (1000.0, "one RESET pulse of the same width (t_pulse_ns)"),
            "e_set_pj": (NEUROSIM_E_PULSE_PJ * 1000.0 / NEUROSIM_T_WRITE_NS,
                         "NeuroSim's cell energy per pulse (4.4 pJ at 50 ns) scaled by pulse width to 1 us "
                         "(V^2 G t at the same cell) = 88 pJ"),
            "e_reset_pj": (NEUROSIM_E_PULSE_PJ * 1000.0 / NEUROSIM_T_WRITE_NS,
                           "as e_set_pj: NeuroSim's 4.4 pJ per 50 ns pulse scaled to 1 us = 88 pJ"),
            "pulses_per_level": (NEUROSIM_PULSES_PER_2BIT_STEP,
                                 "as neurosim-mlc: 11 write-verify iterations per 2-bit level step (NeuRRAM's "
                                 "Extended Data Fig. 3f shows a distribution of several to tens of pulses)"),
        }),
}
DEFAULT_DEVICE = "nvsim-sample"


def device(name: str) -> Device:
    if name not in DEVICES:
        raise ArasError(f"--device {name!r}: unknown device; devices: {', '.join(DEVICES)} (aras config --devices)")
    return DEVICES[name]


def with_device(cfg, name: str):
    """``cfg`` with the cell fields of device ``name`` (and the label ``device = name``); derived write tables
    follow (:meth:`aras.config.Config.replace`)."""
    kw = device(name).values()
    if name != cfg.device:
        kw["name"] = f"{cfg.name}+{name}"
    return cfg.replace(device=name, **kw)


def listing() -> list[str]:
    """Lines of ``aras config --devices``: every device, its summary and its constants with sources."""
    out = []
    for d in DEVICES.values():
        out.append(f"{d.name}{' (default)' if d.name == DEFAULT_DEVICE else ''}: {d.summary}")
        for k, (v, src) in d.fields.items():
            out.append(f"    {k} = {v:g}  # {src}")
    return out
