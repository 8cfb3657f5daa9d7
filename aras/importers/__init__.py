"""Importers: ONNX graphs and torch state dicts (read without torch) to :class:`aras.graph.FloatGraph`."""
