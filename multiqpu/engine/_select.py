"""Which engine a call uses: the argument > ``$MULTIQPU_ENGINE`` > the config file's
``[engine]`` table > the local engine in-process.

``engine=`` takes an :class:`~multiqpu.engine.Engine` or a kind (``"local"``, ``"ray"``);
``$MULTIQPU_ENGINE`` a kind. The config file's table::

    [engine]
    kind = "ray"          # or "local"
    address = "auto"      # ray: "auto" (this machine's cluster) or "ray://host:10001";
                          # absent: a local instance (or $RAY_ADDRESS, which Ray reads)
    num_cpus = 8          # ray, local instance only: CPUs it may use
    processes = 4         # local: worker processes (0: in-process threads)

Engines are made once per process and setting (Ray itself is one per process).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from multiqpu.errors import ConfigError

if TYPE_CHECKING:
    from multiqpu.engine._base import Engine

__all__ = ["ENGINE_KINDS", "get_engine"]

ENGINE_KINDS = ("local", "ray")
_MADE: dict[tuple[Any, ...], Engine] = {}


def get_engine(engine: Engine | str | None = None) -> Engine:
    """The engine for ``engine=`` (see the module docstring for the precedence)."""
    from multiqpu.engine._base import Engine, LocalEngine

    if isinstance(engine, Engine):
        return engine
    address: str | None = None
    num_cpus: int | None = None
    processes: int | None = 0
    if engine is None:
        env = os.environ.get("MULTIQPU_ENGINE", "").strip()
        if env:
            kind, source = env, "environment"
        else:
            from multiqpu.config import load_config

            cfg = load_config().engine
            kind, source = cfg.kind, "config"
            address, num_cpus, processes = cfg.address, cfg.num_cpus, cfg.processes
    elif isinstance(engine, str):
        kind, source = engine.strip(), "argument"
    else:
        raise ConfigError(
            f"engine must be 'local', 'ray' or a multiqpu.engine.Engine, got {engine!r}",
            key="engine",
        )
    if kind not in ENGINE_KINDS:
        name = "MULTIQPU_ENGINE" if source == "environment" else "engine"
        raise ConfigError(f"unknown engine {kind!r}; choose 'local' or 'ray'", key=name)
    key = (kind, address, num_cpus, processes)
    made = _MADE.get(key)
    if made is None:
        if kind == "ray":
            from multiqpu.engine._ray import RayEngine

            made = RayEngine(address, num_cpus=num_cpus)
        else:
            made = LocalEngine(processes)
        _MADE[key] = made
    return made
