"""ARAS: an open, RTL-exact model of an adaptive low-cost ReRAM-based DNN accelerator.

Package map: ``aras`` holds what the golden model and the RTL share or what users touch
(configuration, float graphs, layer traces, importers, the model registry, the command line);
``sim_models`` is the Python golden model; ``hw`` is the Amaranth RTL.
"""

__version__ = "0.1.0"
