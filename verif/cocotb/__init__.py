"""cocotb tests of the generated SystemVerilog (``hw.generate.to_sv``): the pytest files (``test_*.py``)
that drive the testbench library :mod:`verif.testbench` (runner, cases, cocotb modules) — the units,
whole traces through the top level and ``aras verify``. Verilator by default when installed, else
Icarus; ``SIM`` chooses, ``WAVES=1`` traces (docs/verification.md)."""
