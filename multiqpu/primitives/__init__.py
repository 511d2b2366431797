"""Qiskit primitives over a fleet: ``FleetEstimator`` (``BaseEstimatorV2``) and
``FleetSampler`` (``BaseSamplerV2``). Build them with ``fleet.estimator()`` and
``fleet.sampler()``; Qiskit code written against the V2 primitives runs on the fleet unchanged.
See docs/primitives.md."""

from __future__ import annotations

from multiqpu.primitives.estimator import FleetEstimator
from multiqpu.primitives.sampler import FleetSampler

__all__ = ["FleetEstimator", "FleetSampler"]
