"""The PennyLane device ``multiqpu.fleet`` (registered through the ``pennylane.plugins``
entry point): ``qml.device("multiqpu.fleet", wires=4, fleet=my_fleet)``. Importing this
package imports PennyLane; ``import multiqpu`` never does. See docs/pennylane.md."""

from __future__ import annotations

from multiqpu.pennylane.device import FleetDevice

__all__ = ["FleetDevice"]
