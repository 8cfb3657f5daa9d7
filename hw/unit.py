"""The base of every RTL unit: a ``wiring.Component`` built for one :class:`aras.config.Config`."""

from __future__ import annotations

from amaranth.lib import wiring

from aras.config import Config

__all__ = ["Unit"]


class Unit(wiring.Component):
    """A component whose constructor takes ``cfg``, checked by :meth:`_take_cfg` before anything is
    derived from it, and exposed as :attr:`cfg`."""

    def _take_cfg(self, cfg) -> None:
        if not isinstance(cfg, Config):
            raise TypeError(f"{type(self).__name__}: cfg must be an aras.config.Config, not {type(cfg).__name__}")
        self._cfg = cfg

    @property
    def cfg(self) -> Config:
        return self._cfg
