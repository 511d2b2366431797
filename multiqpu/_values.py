"""What every estimate result shares: ``values`` and ``std_errors`` per observable, and
``value``/``std_error`` for the common case of one observable."""

from __future__ import annotations

from multiqpu.errors import InvalidInputError

__all__ = ["Values"]


class Values:
    """Mixed into the frozen result dataclasses that declare ``values`` and ``std_errors``."""

    __slots__ = ()
    values: tuple[float, ...]
    std_errors: tuple[float, ...]

    def _single(self) -> int:
        if len(self.values) != 1:
            raise InvalidInputError(
                f"this result holds {len(self.values)} values; use .values and .std_errors"
            )
        return 0

    @property
    def value(self) -> float:
        """The value, when one observable was asked for."""
        return self.values[self._single()]

    @property
    def std_error(self) -> float:
        """Its standard error, when one observable was asked for."""
        return self.std_errors[self._single()]
