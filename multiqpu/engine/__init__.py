"""Engines: where the classical side of a run goes (simulation, folding results,
reconstruction, sweeps). See docs/scale-out.md.

* ``local`` (the default): in-process, or a pool of worker processes
  (:class:`LocalEngine`, ``processes=n``).
* ``ray`` (``pip install 'multiqpu[ray]'``): tasks and simulator actors on a Ray cluster
  (:class:`RayEngine`); Ray is imported and started only when first asked for.

Choose one with ``engine=`` (``fleet.estimate(..., engine="ray")``), ``$MULTIQPU_ENGINE``
or the config file's ``[engine]`` table (:func:`get_engine`). Submitting to and polling real
QPUs never leaves the driver's event loop.

Sweeps map a module-level function over scenarios: ``get_engine("ray").map(fn, items)``
(or ``await engine.amap(fn, items)``); results come back in order. :func:`simulate_many`
does that for the scheduler's virtual-clock ``simulate``.
"""

from __future__ import annotations

from multiqpu.engine._base import Engine, LocalEngine
from multiqpu.engine._devices import EngineDevice, RayDevice
from multiqpu.engine._ray import RayEngine
from multiqpu.engine._select import ENGINE_KINDS, get_engine
from multiqpu.engine._sweeps import simulate_many

__all__ = [
    "ENGINE_KINDS",
    "Engine",
    "EngineDevice",
    "LocalEngine",
    "RayDevice",
    "RayEngine",
    "get_engine",
    "simulate_many",
]
