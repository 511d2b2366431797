"""The Ray engine: tasks and simulator actors on a Ray cluster (``pip install 'multiqpu[ray]'``).

Ray is imported, and started or joined, on first use, never by ``import multiqpu``.
``address=None`` starts a local Ray instance (``num_cpus`` CPUs, no dashboard) unless this
process already joined one; ``"auto"`` joins the cluster this machine belongs to (``ray start
--head`` / ``ray start --address=...``); ``"ray://host:10001"`` connects through Ray Client.

Object refs are awaited as ``asyncio`` futures (``asyncio.wrap_future(ref.future())``), so
the event loop that drives real QPUs never blocks on the cluster. Tasks are retried by Ray
when their worker process or node dies (``max_retries``): a lost worker's work is run again,
from the same arguments, so nothing is lost and seeded work gives the same result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from multiqpu.engine._base import Engine
from multiqpu.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    from multiqpu.device import Device

__all__ = ["RayEngine", "import_ray"]

T = TypeVar("T")

#: How often Ray reruns a task whose worker died (system failures, not exceptions).
MAX_RETRIES = 5


def import_ray() -> Any:
    """``import ray``, or a :class:`~multiqpu.ConfigError` saying what to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray engine needs the Python package 'ray', which is not installed; "
            "run: pip install 'multiqpu[ray]'",
            key="engine",
        ) from None
    return ray


class RayEngine(Engine):
    """Tasks on a Ray cluster. ``address``: None (a local instance, or the one this
    process already joined), ``"auto"`` or ``"ray://host:10001"``; ``num_cpus``: CPUs of a
    local instance (default: all); ``max_retries``: reruns of a task whose worker died."""

    kind = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ConfigError(
                f"engine address must be 'auto' or 'ray://host:port', got {address!r}",
                key="engine.address",
            )
        if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int)
                                     or num_cpus < 1):  # fmt: skip
            raise InvalidInputError(f"num_cpus must be an integer >= 1, got {num_cpus!r}")
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self._remotes: dict[Callable[..., Any], Any] = {}

    # ------------------------------------------------------------------ starting
    def ray(self) -> Any:
        """The ``ray`` module, connected (starts or joins Ray on first use)."""
        ray = import_ray()
        if not ray.is_initialized():
            if self.address is None:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)  # fmt: skip
            else:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        return ray

    def _remote(self, fn: Callable[..., Any]) -> Any:
        found = self._remotes.get(fn)
        if found is None:
            found = self.ray().remote(max_retries=self.max_retries)(fn)
            self._remotes[fn] = found
        return found

    @property
    def workers(self) -> int:
        return max(1, int(self.ray().cluster_resources().get("CPU", 1)))

    @property
    def remote(self) -> bool:
        return True

    # ------------------------------------------------------------------ tasks
    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Start ``fn(*args)`` as a Ray task; returns its ObjectRef."""
        return self._remote(fn).remote(*args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.wait(self.submit(fn, *args))

    async def wait(self, ref: Any) -> Any:
        """Await an ObjectRef on the running loop (cancelling the await cancels the task)."""
        try:
            return await asyncio.wrap_future(ref.future())
        except asyncio.CancelledError:
            self.ray().cancel(ref)
            raise

    async def amap(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        refs = [self.submit(fn, x) for x in items]
        try:
            return list(await asyncio.gather(*(asyncio.wrap_future(r.future()) for r in refs)))
        except BaseException:
            for r in refs:
                self.ray().cancel(r)
            raise

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        ray = self.ray()
        return list(ray.get([self.submit(fn, x) for x in items]))

    def put(self, obj: T) -> T:
        ref: T = self.ray().put(obj)
        return ref

    # ------------------------------------------------------------------ devices
    def devices(self, specs: Sequence[str | Device], *, num_cpus: float = 1,
                **options: Any) -> list[Device]:  # fmt: skip
        from multiqpu.engine._devices import actor_devices

        built = super().devices(specs, **options)
        return actor_devices(self, built, num_cpus=num_cpus)

    def __repr__(self) -> str:
        where = self.address or "local instance"
        return f"<RayEngine {where}>"
