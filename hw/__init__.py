"""Amaranth RTL of ARAS (docs/architecture.md). One ``wiring.Component`` per unit, one file each, with
the unit names of ``sim_models/``; every component is parameterised by :class:`aras.config.Config`."""
