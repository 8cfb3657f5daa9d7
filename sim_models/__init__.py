"""The Python golden model of ARAS: bit-exact functional model (this package's ``functional``),
and its units under the same names as ``hw/``: ``crossbar``, ``encoding`` (the encoder's codes and the
datapath's decode), ``quant`` (TFLite int8 arithmetic), ``vector_unit``, ``host``.
"""
