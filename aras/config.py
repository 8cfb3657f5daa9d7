"""The one frozen, validated configuration of the accelerator (RTL generator, golden model, testbenches).

Every field carries its default's source in ``metadata["source"]``; ``docs/architecture.md`` has the
same table. Load with :func:`load` (TOML or JSON: a ``base`` preset name plus overrides) or
:func:`preset`. Widths that follow from fields (ADC exact width, weight columns per crossbar, ...) are
properties, never stored twice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ArasError


def _f(default, source: str):
    return field(default=default, metadata={"source": source})


@dataclass(frozen=True)
class Config:
    name: str = _f("paper", "preset name")
    # --- crossbar and cell ------------------------------------------------------------------------
    xbar_rows: int = _f(128, "ISAAC, PUMA (xbar_size), MNSIM, NeuroSim all use 128x128")
    xbar_cols: int = _f(128, "ISAAC, PUMA, MNSIM, NeuroSim")
    cell_bits: int = _f(2, "ISAAC; PUMA xbar_bits = 2")
    weight_bits: int = _f(8, "int8 weights (TFLite int8 spec; Jacob et al., CVPR 2018)")
    act_bits: int = _f(8, "int8 activations fed bit-serially through 1-bit DACs (ISAAC, PUMA dac_res = 1)")
    # --- ADC --------------------------------------------------------------------------------------
    adc_bits: int = _f(9, "our choice: exact width for 128 rows x 1 input bit x 3 (= 384 -> 9 bits)")
    cols_per_adc: int = _f(8, "NeuroSim numColMuxed = 8")
    adc_exact: bool = _f(True, "declares the ADC lossless; validated against the exact width")
    # --- hierarchy --------------------------------------------------------------------------------
    n_pe: int = _f(4, "our choice: 256 crossbars = 4.2 M cells, ~4 % of ResNet-50 (paper: resource-limited)")
    apus_per_pe: int = _f(8, "our choice (ISAAC has 8 crossbars per IMA; PE/APU per ARAS summary)")
    xbars_per_apu: int = _f(8, "ISAAC: 8 crossbars per IMA")
    write_drivers_per_pe: int = _f(8, "brief: one write driver per APU")
    write_buffer_bytes: int = _f(65536, "our choice: 16 tile slots = 2 per driver so DRAM can run ahead; "
                                        "64 KiB = ISAAC eDRAM size")
    # --- Gbuffer ----------------------------------------------------------------------------------
    gbuf_banks: int = _f(128, "our choice: 128 x 64 KiB = 8 MiB holds VGG-16's largest layer (~6.4 MB)")
    gbuf_bank_bytes: int = _f(65536, "ISAAC: 64 KB eDRAM per tile")
    gbuf_word_bytes: int = _f(32, "ISAAC/PUMA eDRAM: 256-bit access")
    gbuf_adaptive: bool = _f(True, "ARAS adaptive bank selection (only banks with live data powered); "
                                  "the program flag is this and the mode's bank selection (baseline off)")
    # --- digital units ----------------------------------------------------------------------------
    vector_lanes: int = _f(32, "our choice: one Gbuffer word (32 B) per cycle")
    vector_latency: int = _f(2, "our choice: read + write-back pipeline stages")
    post_latency: int = _f(3, "our choice: shift-add/accumulate, requantize, write-back stages")
    # --- bandwidth-bounded COMPUTE (docs/architecture.md section 10.3; 0 = unbounded, the v1 rule) -----
    fetch_ports: int = _f(2, "docs/uarch-v3.md section 5.2: least read ports (of 256 bit) keeping every network's "
                             "stall <= 10 % (1 port: VGG-16 10.9 %, MobileNetV2 16.9 %)")
    psum_lanes: int = _f(16, "docs/uarch-v3.md section 5.2: least int32 lanes per PE psum bus and PE link keeping "
                             "every network's stall <= 10 % (8 lanes: BERT-base 20.2 %)")
    post_lanes: int = _f(4, "docs/uarch-v3.md section 5.2: least requantization lanes per PE keeping every "
                            "network's stall <= 10 % (2 lanes: MobileNetV2 18.5 %)")
    clock_ghz: float = _f(1.0, "NeuroSim clkFreq, PUMA: 1 GHz")
    host_handoff_cycles: int = _f(0, "our choice: a HOST instruction costs 1 + this many cycles (host time untimed)")
    # --- timing (ns; converted with ceil(ns * clock_ghz)) -------------------------------------------
    t_read_mvm_ns: float = _f(10.0, "NeuroSim read pulse 10 ns (per input bit-plane)")
    t_read_ns: float = _f(10.0, "NeuroSim read pulse 10 ns (read-before-write of a row, verify)")
    t_write_setup_ns: float = _f(10.0, "our choice: one pulse width of driver set-up")
    t_pulse_ns: float = _f(10.0, "MNSIM Write_Latency = 10 ns; NVSim sample_RRAM SetPulse/ResetPulse 10 ns")
    t_verify_ns: float = _f(10.0, "program-and-verify: one read (NeuroSim 10 ns) per pulse")
    t_reset_ns: float = _f(10.0, "NVSim ResetPulse 10 ns (blind write resets every cell first)")
    # --- write tables (indexed [old level][new level]) ----------------------------------------------
    pulses_per_level: int = _f(1, "NVSim sample_RRAM cell (device 'nvsim-sample'): one program-and-verify pulse "
                                  "per level step; builds the default write_pulses table (docs/devices.md)")
    write_pulses: tuple[tuple[int, ...], ...] = _f(
        (), "default: |new - old| x pulses_per_level pulses (program-and-verify iterations per level step)")
    write_energy_pj: tuple[tuple[float, ...], ...] = _f(
        (), "default: pulses x 0.6 pJ (NVSim sample_RRAM cell, SET and RESET)")
    e_set_pj: float = _f(0.6, "NVSim sample_RRAM.cell: 0.6 pJ per SET pulse")
    e_reset_pj: float = _f(0.6, "NVSim sample_RRAM.cell: 0.6 pJ per RESET pulse (also blind-write reset)")
    device: str = _f("nvsim-sample", "write-model device preset the cell fields come from (aras/devices.py, "
                                     "docs/devices.md; `aras config --devices`); a label, the fields decide")
    # --- DRAM -------------------------------------------------------------------------------------
    dram_latency_cycles: int = _f(100, "our choice: ~100 ns DRAM access latency at 1 GHz")
    dram_bytes_per_cycle: int = _f(16, "one DDR4-2133 x64 channel ~17 GB/s -> 16 B/cycle at 1 GHz")
    dram_pj_per_bit: float = _f(20.0, "Horowitz ISSCC 2014: 1.3-2.6 nJ per 64-bit DRAM access (20-40 pJ/bit)")
    broadcast_writes: bool = _f(False, "our choice, off = the v1 contract the RTL implements: replicas of a tile "
                                      "re-sent from one DRAM fetch (docs/architecture.md section 9.8; model only)")
    # --- energy / area: published component figures; per-event values are derived (properties) ----------
    e_adc8_pj: float = _f(1.5625, "ISAAC 8-bit ADC 2 mW at 1.28 GS/s (PUMA constants.py 1.8 + 0.2 mW); "
                                  "scaled x 2^(adc_bits - 8) (constant Walden FOM; MNSIM 10-bit 4.6 pJ agrees)")
    p_dac_uw: float = _f(3.9, "ISAAC 1-bit DAC 3.9 uW (PUMA constants.py); energy = power x t_read_mvm")
    p_xbar_mw: float = _f(0.3, "ISAAC 128x128 array read 0.3 mW (PUMA constants.py); scaled by cells, x t_read_mvm")
    e_cell_read_pj: float = _f(0.1, "NVSim sample_RRAM.cell read energy 0.1 pJ per cell (read-before-write)")
    e_gbuf_256b_pj: float = _f(17.2, "PUMA edram_pow_dyn: 17.2 pJ per 256-bit access of a 64 KB eDRAM (ISAAC); "
                                     "scaled by word bits")
    p_gbuf_leak_64k_mw: float = _f(0.46, "PUMA edram_pow_leak: 0.46 mW per 64 KB eDRAM bank; scaled by bank bytes")
    e_vector_op_pj: float = _f(0.265, "PUMA ALU add/compare 0.373 mW x 32/45 lanes at 1 GHz, per lane-op")
    e_digital_op_pj: float = _f(0.045, "PUMA shift-and-add 0.05 mW (0.045 dynamic) at 1 GHz, per op")
    e_post_op_pj: float = _f(1.36, "our choice: one PUMA ALU multiply (0.565 pJ) + 3 add/shift/compare (0.265 pJ)")
    area_adc8_mm2: float = _f(0.0012, "ISAAC 8-bit ADC 0.0012 mm2 (PUMA constants); scaled x 2^(adc_bits - 8)")
    area_dac_mm2: float = _f(1.67e-7, "ISAAC 1-bit DAC (PUMA constants)")
    area_xbar128_mm2: float = _f(2.5e-5, "ISAAC 128x128 array 2.5e-5 mm2 (PUMA constants); scaled by cells")
    area_sh_mm2: float = _f(3.9e-8, "PUMA snh_area, per sample-and-hold")
    area_sna_mm2: float = _f(6e-5, "PUMA sna_area, per shift-and-add unit (one per ADC)")
    area_gbuf_64k_mm2: float = _f(0.086, "ISAAC/PUMA 64 KB eDRAM 0.086 mm2; scaled by bank bytes")
    area_vector_lane_mm2: float = _f(0.004, "PUMA ALU 0.00567 mm2 x 32/45, per lane")
    # --- run --------------------------------------------------------------------------------------
    batch: int = _f(1, "brief: batch size default 1")
    # --- TPU-like baseline (sim_models/tpu.py, docs/tpu.md); not part of ARAS's hardware ----------------
    tpu_rows: int = _f(0, "docs/tpu-baseline.md section 6: 0 = the square array of ARAS's analog-compute area "
                          "(tpu_config); else the array rows (--tpu-array RxC), tpu_cols too")
    tpu_cols: int = _f(0, "0 = area-matched (with tpu_rows = 0); else the array columns (--tpu-array RxC)")
    tpu_dataflow: str = _f("ws", "docs/tpu.md: ws = TPU v1 weight-stationary with double-buffered weights; "
                                 "ws-scalesim = SCALE-Sim 3.0 weight-stationary timing (--tpu-dataflow)")
    # --- faults (docs/architecture.md section 8.7) --------------------------------------------------
    max_verify_pulses: int = _f(255, "our choice: program-and-verify gives a cell up after this many pulses; "
                                     "255 = the most level steps of any cell (L - 1 <= 255), so every default "
                                     "table fits; validated >= every write_pulses entry")
    watchdog_cycles: int = _f(1_000_000, "our choice: 1 ms at 1 GHz of waiting for a host acknowledge or a held "
                                         "DRAM beat, >> a DDR4 refresh (tRFC 350 ns, JEDEC 8 Gb)")

    def __post_init__(self):
        self._check_types()  # before anything computes with a field
        levels = self.levels
        if not self.write_pulses:
            object.__setattr__(self, "write_pulses", tuple(
                tuple(abs(n - o) * self.pulses_per_level for n in range(levels)) for o in range(levels)))
        if not self.write_energy_pj:
            object.__setattr__(self, "write_energy_pj", tuple(
                tuple(float(abs(n - o) * self.pulses_per_level * (self.e_set_pj if n > o else self.e_reset_pj))
                      for n in range(levels)) for o in range(levels)))
        self._check_tables()
        self._validate()

    # ------------------------------------------------------------------ derived quantities
    @property
    def levels(self) -> int:
        return 1 << self.cell_bits

    @property
    def slices(self) -> int:
        """Cells per weight code (S)."""
        return self.weight_bits // self.cell_bits

    @property
    def weight_cols(self) -> int:
        """Weight columns per crossbar in the offset family (signmag pairs: half of this)."""
        return self.xbar_cols // self.slices

    @property
    def adc_exact_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.xbar_rows * (self.levels - 1) + 1)))

    @property
    def adc_max(self) -> int:
        return (1 << self.adc_bits) - 1

    @property
    def n_xbars(self) -> int:
        return self.n_pe * self.apus_per_pe * self.xbars_per_apu

    @property
    def gbuf_bytes(self) -> int:
        return self.gbuf_banks * self.gbuf_bank_bytes

    @property
    def exact_bits(self) -> int:
        return self.adc_exact_bits

    @property
    def tile_bytes_max(self) -> int:
        return self.xbar_rows * self.weight_cols

    @property
    def write_buffer_slots(self) -> int:
        return self.write_buffer_bytes // self.tile_bytes_max

    # Per-event energies (pJ) and areas (mm2) derived from the published component figures.
    @property
    def e_adc_pj(self) -> float:
        return self.e_adc8_pj * 2.0 ** (self.adc_bits - 8)

    @property
    def e_dac_pj(self) -> float:
        return self.p_dac_uw * 1e-3 * self.cycles(self.t_read_mvm_ns) / self.clock_ghz

    @property
    def e_xbar_read_pj(self) -> float:
        cells = self.xbar_rows * self.xbar_cols / (128 * 128)
        return self.p_xbar_mw * cells * self.cycles(self.t_read_mvm_ns) / self.clock_ghz

    @property
    def e_gbuf_access_pj(self) -> float:
        return self.e_gbuf_256b_pj * self.gbuf_word_bytes / 32

    @property
    def e_wbuf_byte_pj(self) -> float:
        return self.e_gbuf_256b_pj / 32  # same SRAM as the Gbuffer, per byte

    @property
    def p_gbuf_bank_leak_mw(self) -> float:
        return self.p_gbuf_leak_64k_mw * self.gbuf_bank_bytes / 65536

    @property
    def area_adc_mm2(self) -> float:
        return self.area_adc8_mm2 * 2.0 ** (self.adc_bits - 8)

    @property
    def area_xbar_mm2(self) -> float:
        return self.area_xbar128_mm2 * self.xbar_rows * self.xbar_cols / (128 * 128)

    @property
    def area_gbuf_bank_mm2(self) -> float:
        return self.area_gbuf_64k_mm2 * self.gbuf_bank_bytes / 65536

    def cycles(self, ns: float) -> int:
        """ns -> cycles: ceil(ns * clock_ghz), at least 1 for a nonzero time."""
        if ns <= 0:
            return 0
        return max(1, math.ceil(ns * self.clock_ghz - 1e-9))

    # ------------------------------------------------------------------ validation
    def _bad(self, fname, why):
        raise ArasError(f"config {self.name!r}: field {fname!r} {why}")

    def _check_types(self):
        """Every scalar field by its declared type: ``int`` fields take whole numbers (not bools, not
        16.5; 16.0 becomes 16), ``float`` fields finite real numbers (ints become floats), ``bool`` and
        ``str`` exactly that type; numbers must be > 0 (>= 0 for energies, powers, areas and the
        latencies in ``_ZERO_OK``) and at most ``MAX_VALUE``, so that no product the models form in
        int64 or float64 overflows. The tables are checked by :meth:`_check_tables`."""
        if not isinstance(self.name, str):
            raise ArasError(f"config: field 'name' must be str, got {self.name!r}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type in ("int", "float"):
                zero_ok = f.name in _ZERO_OK or f.name.startswith(("e_", "p_", "area_", "dram_pj"))
                object.__setattr__(self, f.name, _number(v, f.type, lambda why, n=f.name: self._bad(n, why), zero_ok))
            elif f.type in _EXACT_TYPES and not isinstance(v, _EXACT_TYPES[f.type]):
                self._bad(f.name, f"must be {f.type}, got {v!r}")
        if self.cell_bits not in (1, 2, 4, 8):  # before the tables are sized by it
            self._bad("cell_bits", f"must divide the 8-bit weight code (1, 2, 4 or 8), got {self.cell_bits}")

    def _check_tables(self):
        """The ``tuple[tuple[T, ...], ...]`` fields: a levels x levels table of T (each entry as a field
        of type T), stored as tuples."""
        for f in dataclasses.fields(self):
            if not f.type.startswith("tuple"):
                continue
            typ = "int" if "int" in f.type else "float"
            t = getattr(self, f.name)
            if not isinstance(t, (list, tuple)) or any(not isinstance(r, (list, tuple)) for r in t):
                self._bad(f.name, f"must be a {self.levels}x{self.levels} table of {typ} indexed "
                                  f"[old level][new level], got {t!r}")
            rows = tuple(tuple(_number(v, typ, lambda why, n=f.name, i=i, j=j: self._bad(f"{n}[{i}][{j}]", why))
                               for j, v in enumerate(r)) for i, r in enumerate(t))
            object.__setattr__(self, f.name, rows)

    def _validate(self):
        bad = self._bad
        # Sizes and times the models multiply out (cell arrays, byte counts, cycles): bounded like the fields.
        cells = self.n_xbars * self.xbar_rows * self.xbar_cols
        if cells > MAX_VALUE:
            bad("xbar_rows", f"gives {cells} cells (xbar_rows x xbar_cols x {self.n_xbars} crossbars); "
                             f"must be <= 2**40")
        if self.gbuf_bytes > MAX_VALUE:
            bad("gbuf_bank_bytes", f"gives a {self.gbuf_bytes} B Gbuffer (gbuf_banks x gbuf_bank_bytes); "
                                   f"must be <= 2**40")
        if self.n_pe * self.write_buffer_bytes > MAX_VALUE:
            bad("write_buffer_bytes", f"gives {self.n_pe * self.write_buffer_bytes} B of write buffers "
                                      f"(n_pe x write_buffer_bytes); must be <= 2**40")
        if self.clock_ghz < 1e-6:
            bad("clock_ghz", f"must be >= 1e-6 (1 kHz), got {self.clock_ghz}")
        for f in dataclasses.fields(self):
            if f.name.endswith("_ns") and getattr(self, f.name) * self.clock_ghz > MAX_VALUE:
                bad(f.name, f"gives {getattr(self, f.name) * self.clock_ghz:.3g} cycles at clock_ghz="
                            f"{self.clock_ghz}; must be <= 2**40")
        if (self.tpu_rows == 0) != (self.tpu_cols == 0):
            bad("tpu_rows" if self.tpu_rows == 0 else "tpu_cols",
                f"must be set with {'tpu_cols' if self.tpu_rows == 0 else 'tpu_rows'} (both 0 = area-matched array), "
                f"got tpu_rows={self.tpu_rows}, tpu_cols={self.tpu_cols}")
        if self.tpu_rows * self.tpu_cols > MAX_VALUE:
            bad("tpu_rows", f"gives {self.tpu_rows * self.tpu_cols} MACs (tpu_rows x tpu_cols); must be <= 2**40")
        if self.tpu_dataflow not in TPU_DATAFLOWS:
            bad("tpu_dataflow", f"must be one of {', '.join(TPU_DATAFLOWS)}, got {self.tpu_dataflow!r}")
        from .devices import DEVICES

        if self.device not in DEVICES:
            bad("device", f"is not a device preset ({', '.join(DEVICES)}), got {self.device!r}")
        if self.weight_bits != 8:
            bad("weight_bits", f"must be 8 (int8 weights), got {self.weight_bits}")
        if self.act_bits != 8:
            bad("act_bits", f"must be 8 (int8 activations), got {self.act_bits}")
        if self.xbar_cols % (2 * self.slices):
            bad("xbar_cols", f"must be a multiple of 2 x {self.slices} cells per weight (signmag pairs), "
                             f"got {self.xbar_cols}")
        if self.xbar_cols % self.cols_per_adc:
            bad("cols_per_adc", f"must divide xbar_cols={self.xbar_cols}, got {self.cols_per_adc}")
        if self.adc_exact and self.adc_bits < self.adc_exact_bits:
            bad("adc_bits", f"is {self.adc_bits} but adc_exact=true needs >= {self.adc_exact_bits} "
                            f"({self.xbar_rows} rows x {self.levels - 1})")
        if self.adc_bits > 24:
            bad("adc_bits", f"must be <= 24, got {self.adc_bits}")
        if self.write_drivers_per_pe > self.apus_per_pe * self.xbars_per_apu:
            bad("write_drivers_per_pe", "exceeds the crossbars of a PE")
        if self.write_buffer_slots < 1:
            bad("write_buffer_bytes", f"must hold one tile ({self.tile_bytes_max} B), got {self.write_buffer_bytes}")
        # RTL v1 constraints (docs/architecture.md section 3.14).
        if self.post_latency < 3:
            bad("post_latency", f"must be >= 3 (decode, post, write-back stages), got {self.post_latency}")
        if self.vector_latency < 2:
            bad("vector_latency", f"must be >= 2 (read, write-back), got {self.vector_latency}")
        if self.vector_lanes > self.gbuf_word_bytes:
            bad("vector_lanes", f"must be <= gbuf_word_bytes={self.gbuf_word_bytes}, got {self.vector_lanes}")
        # Program format v1 limits (docs/architecture.md section 9).
        if self.weight_cols > 64:
            bad("xbar_cols", f"gives {self.weight_cols} weight columns per crossbar; program format v1 allows 64")
        if self.gbuf_banks > 128:
            bad("gbuf_banks", f"must be <= 128 (program format v1), got {self.gbuf_banks}")
        if self.n_xbars > 4096:
            bad("n_pe", f"gives {self.n_xbars} crossbars; program format v1 allows 4096")
        if self.gbuf_bank_bytes % self.gbuf_word_bytes:
            bad("gbuf_word_bytes", f"must divide gbuf_bank_bytes={self.gbuf_bank_bytes}")
        for tname in ("write_pulses", "write_energy_pj"):
            t = getattr(self, tname)
            if len(t) != self.levels or any(len(r) != self.levels for r in t):
                bad(tname, f"must be a {self.levels}x{self.levels} table indexed [old level][new level]")
            if any(t[i][i] != 0 for i in range(self.levels)):
                bad(tname, "must be zero on the diagonal (an unchanged cell is not programmed)")
            if any(v < 0 for r in t for v in r):
                bad(tname, "must be non-negative")
            if any(t[o][n] == 0 for o in range(self.levels) for n in range(self.levels) if o != n) and \
                    tname == "write_pulses":
                bad(tname, "must be >= 1 off the diagonal (a changed cell needs a pulse)")
        step = self.cycles(self.t_pulse_ns) + self.cycles(self.t_verify_ns)
        if max(map(max, self.write_pulses)) * step > MAX_VALUE:
            bad("write_pulses", f"with {step} cycles per pulse (t_pulse_ns + t_verify_ns) gives more than 2**40 "
                                "cycles for one cell")
        # Faults (docs/architecture.md section 8.7): a healthy cell verifies within its table's pulses, so the
        # fault-free path never reaches the bound.
        most = max(map(max, self.write_pulses))
        if most > self.max_verify_pulses:
            o, n = next((o, n) for o in range(self.levels) for n in range(self.levels)
                        if self.write_pulses[o][n] == most)
            bad("max_verify_pulses", f"is {self.max_verify_pulses} but write_pulses[{o}][{n}] = {most} exceeds it "
                                     "(a healthy cell would fail verify)")
        if self.max_verify_pulses * step + self.cycles(self.t_reset_ns) > MAX_VALUE:
            bad("max_verify_pulses", f"with {step} cycles per pulse gives more than 2**40 cycles for a failing row")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["write_pulses"] = [list(r) for r in self.write_pulses]
        d["write_energy_pj"] = [list(r) for r in self.write_energy_pj]
        return d

    def replace(self, **kw) -> Config:
        d = {**self.to_dict(), **kw}
        if any(k in kw for k in _CELL_PARAMS):
            for t in _TABLES:
                if t not in kw:
                    d.pop(t)  # derived tables follow the new cell parameters
        return from_dict(d, source=f"{self.name} (modified)")

    @staticmethod
    def sources() -> dict[str, str]:
        return {f.name: f.metadata.get("source", "") for f in dataclasses.fields(Config)}


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
MAX_VALUE = 1 << 40  # bound of every numeric field and of the sizes/times they multiply out to (int64-safe)
_ZERO_OK = ("host_handoff_cycles", "dram_latency_cycles", "vector_latency", "post_latency", "fetch_ports",
            "psum_lanes", "post_lanes", "tpu_rows", "tpu_cols")
_TABLES = ("write_pulses", "write_energy_pj")
_CELL_PARAMS = ("cell_bits", "e_set_pj", "e_reset_pj", "pulses_per_level")
TPU_DATAFLOWS = ("ws", "ws-scalesim")
_EXACT_TYPES = {"bool": bool, "str": str}


def _number(v, typ: str, bad, zero_ok: bool = True):
    """``v`` as a field of type ``typ`` ("int" or "float"): a finite real (not a bool) in [0, 2**40]
    ((0, 2**40] unless ``zero_ok``), whole for "int"; returned as a Python int/float. ``bad(why)`` rejects."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        bad(f"must be {typ}, got {v!r}" + (" (a bool)" if isinstance(v, bool) else ""))
    if not isinstance(v, numbers.Integral) and not math.isfinite(v):
        bad(f"must be finite, got {v}")
    if v < 0 or v == 0 and not zero_ok:
        bad(f"must be {'>=' if zero_ok else '>'} 0, got {_show(v)}")
    if v > MAX_VALUE:
        bad(f"must be <= 2**40, got {_show(v)}")
    if typ == "float":
        return float(v)
    if v != int(v):
        bad(f"must be int (a whole number), got {v}")
    return int(v)


def _show(v) -> str:
    """A number for a one-line message (a huge int by its magnitude, not its 400 digits)."""
    if not isinstance(v, numbers.Integral) or abs(v) < 10 ** 20:
        return f"{v}"
    return f"~{'-' if v < 0 else ''}1e{len(str(abs(v))) - 1}"


def from_dict(d: dict, source: str = "config") -> Config:
    """Build a config from a flat mapping; a ``base`` key names the preset it overrides."""
    from .devices import DEVICES

    d = dict(d)
    base = d.pop("base", None)
    if base is not None and not isinstance(base, str):
        raise ArasError(f"{source}: field 'base' must be a preset name, got {base!r}")
    if base in DEVICES and base not in PRESETS:  # base = "<device>": paper with that device
        d.setdefault("device", base)
        base = "paper"
    dev = d.get("device")
    if dev is not None and (not isinstance(dev, str) or dev not in DEVICES):
        raise ArasError(f"{source}: field 'device' must be a device preset ({', '.join(DEVICES)}), got {dev!r}")
    merged = {} if base is None else preset(base).to_dict()
    if dev is not None:  # the device's cell fields over the base, under the file's own fields
        merged.update(DEVICES[dev].values())
    if base is not None:
        # Derived write tables follow the base's cell parameters unless given explicitly.
        for t in _TABLES:
            if t not in d and (dev is not None or any(k in d for k in _CELL_PARAMS)):
                merged.pop(t, None)
    for k, v in d.items():
        if k not in _FIELDS:
            raise ArasError(f"{source}: unknown config field {k!r}")
        merged[k] = v
    try:
        return Config(**merged)  # converts and checks every field by its type
    except TypeError as e:
        raise ArasError(f"{source}: {e}") from None


PRESETS: dict[str, dict] = {
    "paper": {},
    # Small enough for RTL simulation: 8 crossbars of 16x16 2-bit cells (4 weight columns each), fewer
    # than LeNet-5 needs (so rewrites happen); short pulses and reads. Unbounded fetch, psum and post
    # bandwidth (0): the rule the RTL implements until the input path and the reduction of
    # docs/uarch-v3.md section 4 land.
    "tiny": dict(
        name="tiny", xbar_rows=16, xbar_cols=16, adc_bits=6, cols_per_adc=4, n_pe=2, apus_per_pe=2,
        xbars_per_apu=2, write_drivers_per_pe=1, write_buffer_bytes=128, gbuf_banks=8, gbuf_bank_bytes=1024,
        gbuf_word_bytes=4, vector_lanes=4, fetch_ports=0, psum_lanes=0, post_lanes=0, t_read_mvm_ns=2.0,
        t_read_ns=1.0, t_write_setup_ns=1.0,
        t_pulse_ns=1.0, t_verify_ns=1.0, t_reset_ns=1.0, dram_latency_cycles=4, dram_bytes_per_cycle=4,
    ),
}
PRESETS["tiny-adc"] = dict(PRESETS["tiny"], name="tiny-adc", adc_bits=4, adc_exact=False)
# 'paper' with the unbounded COMPUTE rule (docs/architecture.md §10.3): what the RTL can be generated for
# until the bandwidth-bounded input path and reduction land (docs/uarch-v3.md §4).
PRESETS["paper-unbounded"] = dict(name="paper-unbounded", fetch_ports=0, psum_lanes=0, post_lanes=0)


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise ArasError(f"unknown config {name!r}; presets: {', '.join(PRESETS)} (or a .toml/.json file)")
    return from_dict(dict(PRESETS[name]), source=f"preset {name!r}")


def load(name_or_path: str, device: str | None = None) -> Config:
    """A preset name, or a TOML/JSON file (flat keys, optional ``base = "<preset>"`` or ``"<device>"``, optional
    ``device = "<device>"``); ``device`` (``--device``) then sets that device's cell fields (aras/devices.py)."""
    if device is not None:
        from .devices import with_device

        return with_device(load(name_or_path), device)
    if name_or_path in PRESETS:
        return preset(name_or_path)
    p = Path(name_or_path)
    if not p.exists():
        raise ArasError(f"config {name_or_path!r} is neither a preset ({', '.join(PRESETS)}) nor an existing file")
    try:
        text = p.read_text()
        d = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ArasError(f"{p}: cannot parse config: {e}") from None
    if not isinstance(d, dict):
        raise ArasError(f"{p}: a config file must hold a table of fields")
    d.setdefault("name", p.stem)
    try:
        return from_dict(d, source=str(p))
    except ArasError as e:  # every message names the file
        msg = str(e)
        raise ArasError(msg if msg.startswith(f"{p}:") else f"{p}: {msg}") from None


def parse_tpu_array(text: str, flag: str = "--tpu-array") -> tuple[int, int]:
    """``"RxC"`` (e.g. ``64x64``) -> (R, C), both whole numbers >= 1; a one-line error naming ``flag``."""
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ArasError(f"{flag} {text!r}: must be ROWSxCOLS, e.g. 64x64")
    r, c = (int(p) for p in parts)
    if r < 1 or c < 1:
        raise ArasError(f"{flag} {text!r}: rows and columns must be >= 1")
    if r * c > MAX_VALUE:
        raise ArasError(f"{flag} {text!r}: {r * c} MACs; must be <= 2**40")
    return r, c


def with_tpu(cfg: Config, array: str | None = None, dataflow: str | None = None) -> Config:
    """``cfg`` with the TPU-like baseline's ``--tpu-array RxC`` (fields ``tpu_rows``, ``tpu_cols``; overrides the
    area matching) and ``--tpu-dataflow`` (field ``tpu_dataflow``) where given."""
    kw: dict = {}
    if array is not None:
        kw["tpu_rows"], kw["tpu_cols"] = parse_tpu_array(array)
    if dataflow is not None:
        if dataflow not in TPU_DATAFLOWS:
            raise ArasError(f"--tpu-dataflow {dataflow!r}: must be one of {', '.join(TPU_DATAFLOWS)}")
        kw["tpu_dataflow"] = dataflow
    return cfg.replace(**kw) if kw else cfg
