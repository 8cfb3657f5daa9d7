"""cocotb tests of the generated SystemVerilog (``hw.generate.to_sv``): shared testbench helpers
(:mod:`verif.cocotb.tb`), the build/run helper (:mod:`verif.cocotb.runner`), test wrappers
(:mod:`verif.cocotb.wrappers`), per-unit cocotb modules (``*_tb.py``) and their pytest wrappers
(``test_*_tb.py``). Icarus by default; ``SIM=verilator`` (≥ 5.036), ``WAVES=1`` for FST traces."""
