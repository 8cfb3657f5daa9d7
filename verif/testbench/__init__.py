"""The cocotb testbench library of the generated SystemVerilog (``hw.generate.to_sv``), used by the tests
in ``verif/cocotb/``, ``aras verify`` and ``scripts/regress.py``; it holds no tests itself.

The build/run helper and its content-hashed build cache (:mod:`verif.testbench.runner`), the system
runner (:mod:`verif.testbench.system`), cases and golden expectations
(:mod:`verif.testbench.system_vectors`), the system testbench (:mod:`verif.testbench.top_tb`) with its
hazard monitor (:mod:`verif.testbench.monitor`) and functional coverage
(:mod:`verif.testbench.coverage`), the shared drivers and helpers (:mod:`verif.testbench.tb`), the unit
harnesses (:mod:`verif.testbench.wrappers`) and the unit cocotb modules (``*_tb.py``). Verilator by
default when installed, else Icarus; ``SIM`` chooses, ``WAVES=1`` traces (docs/verification.md)."""
