"""multiqpu provider adapter for Amazon Braket.

Devices (``multiqpu.device("braket:NAME", **options)``):

* ``emulator``: Braket's ``LocalEmulator`` with the shipped Garnet-like device properties
  (modelled, not a real snapshot); offline, noisy, 20 qubits. In the default fleet.
* ``dm``: ``LocalSimulator("braket_dm")`` with noise from a calibration profile.
* ``sv``: ``LocalSimulator("braket_sv")``, ideal; exact probabilities with ``shots=None``.
* an AWS device ARN: a real QPU or managed simulator, through your AWS credential chain.

Importing this package imports neither braket nor boto3.
"""

from __future__ import annotations

from multiqpu_braket._provider import EXAMPLE_ARNS, BraketProvider

__all__ = ["EXAMPLE_ARNS", "BraketProvider", "provider"]

provider = BraketProvider()
