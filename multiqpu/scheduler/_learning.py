"""Online estimates of each device's real queue wait and execution speed.

Queue reports are not trusted blindly. For every device we learn, from its own completed jobs:

* **wait**: ``log(actual + tau) = log(prior + tau) + beta``, where ``prior`` is what the device's
  report suggested when the job was submitted (its ``expected_wait_s``, or ``pending_jobs``
  times a per-job guess). ``beta`` has a normal prior centred on 0 (trust the report) worth
  ``prior_weight`` observations, and observations are forgotten exponentially (factor
  ``forget`` per new job), so the estimate follows a queue that changes during the day. The
  spread of ``beta`` gives the wait quantiles used for hedging deadlines. The prior mean of
  ``beta`` is itself learned across the fleet (per kind of report): if every device seen so
  far waits a quarter of what its pending-job count suggested, a device not yet used is
  assumed to do the same (hierarchical shrinkage).
* **speed**: ``execution_s = overhead + speed * predicted_s`` by weighted least squares with
  the same forgetting and a normal prior (overhead ``overhead_0`` give or take 100 %,
  speed 1 give or take 30 %); ``predicted_s`` is the
  cost model's shots x circuit duration for the job.

Everything is held in numpy arrays indexed by device, so both the async executor and the
virtual-clock simulator update it in O(1) per completed job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from multiqpu.pool import DeviceKnowledge

__all__ = ["DeviceKnowledge", "Learner"]

TAU_S = 1.0  # seconds added before taking logs, so zero waits are fine
SPEED_SIGMA = 0.3  # prior spread of the real/published execution-time ratio
# spread of log(actual/reported) before any observation: a wait estimated by the vendor (or
# a queue model) is trusted more than one derived from a pending-job count
PRIOR_SIGMA = {"estimate": 0.5, "pending": 1.0, "none": 1.0}


class Learner:
    """Per-device wait and speed estimates (see the module docstring)."""

    def __init__(
        self,
        n_devices: int,
        *,
        reported_wait_s: Sequence[float] | np.ndarray,
        prior_overhead_s: Sequence[float] | np.ndarray,
        prior_weight: float = 1.0,
        forget: float = 0.8,
        knowledge: Sequence[DeviceKnowledge | None] | None = None,
        report_kind: Sequence[str] | None = None,
        speed_sigma: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        self.n_devices = n_devices
        kinds = list(report_kind) if report_kind is not None else ["pending"] * n_devices
        names = sorted(set(kinds))
        self.kind = np.array([names.index(k) for k in kinds], dtype=np.int64)
        self.sigma0 = np.array([PRIOR_SIGMA.get(k, 1.0) for k in kinds])
        self.speed_sigma = (
            np.full(n_devices, SPEED_SIGMA)
            if speed_sigma is None
            else np.asarray(speed_sigma, dtype=float)
        )
        self.gn = np.zeros(len(names))
        self.gr = np.zeros(len(names))
        self.reported = np.asarray(reported_wait_s, dtype=float).copy()
        self.overhead0 = np.asarray(prior_overhead_s, dtype=float).copy()
        self.prior_weight = float(prior_weight)
        self.forget = float(forget)
        self.n = np.zeros(n_devices)
        self.sum_r = np.zeros(n_devices)
        self.sum_r2 = np.zeros(n_devices)
        self.sxx = np.zeros((n_devices, 3))
        self.sxy = np.zeros((n_devices, 2))
        self.jobs = np.zeros(n_devices, dtype=np.int64)
        self._overhead = self.overhead0.copy()
        self._speed = np.ones(n_devices)
        self._cache: dict[str, np.ndarray] = {}
        if knowledge is not None:
            for d, k in enumerate(knowledge):
                if k is not None:
                    self.load(d, k)

    # ------------------------------------------------------------------ observations
    def observe(
        self,
        d: int,
        *,
        queue_s: float | None,
        execution_s: float | None,
        predicted_s: float,
        prior_wait_s: float,
    ) -> None:
        """Learn from one completed job on device ``d`` (``execution_s`` None: a job that
        lost a race while queued, a censored wait; it does not count as a finished job, the
        device's speed is no better known)."""
        self._cache.clear()
        if execution_s is not None:
            self.jobs[d] += 1
        if queue_s is not None and math.isfinite(queue_s):
            r = math.log(max(queue_s, 0.0) + TAU_S) - math.log(max(prior_wait_s, 0.0) + TAU_S)
            lam = self.forget
            self.n[d] = lam * self.n[d] + 1.0
            self.sum_r[d] = lam * self.sum_r[d] + r
            self.sum_r2[d] = lam * self.sum_r2[d] + r * r
            k = self.kind[d]
            self.gn[k] = 0.95 * self.gn[k] + 1.0
            self.gr[k] = 0.95 * self.gr[k] + r
        if execution_s is not None and math.isfinite(execution_s) and execution_s >= 0:
            p = max(predicted_s, 0.0)
            # 10 % relative errors: long jobs vary more in absolute terms
            w = 1.0 / (0.1 * (self._overhead[d] + self._speed[d] * p) + 1e-3) ** 2
            lam = self.forget
            self.sxx[d] = lam * self.sxx[d] + w * np.array([1.0, p, p * p])
            self.sxy[d] = lam * self.sxy[d] + w * np.array([execution_s, p * execution_s])
            self._solve_speed(d, p)

    def _solve_speed(self, d: int, p_ref: float) -> None:
        # Bayesian ridge: overhead ~ N(o0, o0^2) (vendors rarely say), speed ~ N(1, 0.3^2)
        # (published gate and shot times are roughly right); observations carry 10 % noise.
        o0 = max(self.overhead0[d], 1e-3)
        po, ps = 1.0 / o0**2, 1.0 / self.speed_sigma[d] ** 2
        s1, sp, spp = self.sxx[d]
        y, py = self.sxy[d]
        a11, a12, a22 = s1 + po, sp, spp + ps
        b1, b2 = y + po * o0, py + ps * 1.0
        det = a11 * a22 - a12 * a12
        if det <= 0:
            return
        overhead = (b1 * a22 - b2 * a12) / det
        speed = (a11 * b2 - a12 * b1) / det
        if overhead < 0:  # refit the slope alone with the overhead pinned at zero
            overhead = 0.0
            speed = b2 / a22
        self._overhead[d] = overhead
        self._speed[d] = float(np.clip(speed, 1e-3, 1e3))

    def set_reported(self, d: int, wait_s: float) -> None:
        """The device's current report, translated to seconds (the prior for new jobs)."""
        self.reported[d] = max(wait_s, 0.0)
        self._cache.clear()

    # ------------------------------------------------------------------ estimates
    def beta(self) -> np.ndarray:
        if "beta" in self._cache:
            return self._cache["beta"]
        gamma = (self.gr / (self.prior_weight + self.gn))[self.kind]
        out = (self.prior_weight * gamma + self.sum_r) / (self.prior_weight + self.n)
        self._cache["beta"] = out
        return out

    def wait(self) -> np.ndarray:
        """Expected (median) wait of a job submitted now, per device, in seconds."""
        if "wait" not in self._cache:
            w = (self.reported + TAU_S) * np.exp(self.beta()) - TAU_S
            self._cache["wait"] = np.maximum(w, 0.0)
        return self._cache["wait"]

    def wait_sigma(self) -> np.ndarray:
        """Spread (log scale) of the wait around :meth:`wait`."""
        if "sigma" in self._cache:
            return self._cache["sigma"]
        b = self.beta()
        resid = self.sum_r2 - 2 * b * self.sum_r + b * b * self.n
        var = (self.prior_weight * self.sigma0**2 + np.maximum(resid, 0.0)) / (
            self.prior_weight + self.n
        )
        self._cache["sigma"] = np.sqrt(var)
        return self._cache["sigma"]

    def wait_quantile(self, z: float) -> np.ndarray:
        """The wait a job exceeds with the normal tail probability of ``z`` sigmas."""
        key = f"q{z}"
        if key not in self._cache:
            w = self.wait()
            self._cache[key] = np.maximum((w + TAU_S) * np.exp(z * self.wait_sigma()) - TAU_S, 0.0)
        return self._cache[key]

    def speed(self) -> np.ndarray:
        """Actual execution time per predicted second."""
        return self._speed

    def overhead(self) -> np.ndarray:
        """Per-job overhead in seconds."""
        return self._overhead

    # ------------------------------------------------------------------ persistence
    def knowledge(self, d: int) -> DeviceKnowledge:
        return DeviceKnowledge(
            n=float(self.n[d]),
            sum_r=float(self.sum_r[d]),
            sum_r2=float(self.sum_r2[d]),
            sxx=(float(self.sxx[d, 0]), float(self.sxx[d, 1]), float(self.sxx[d, 2])),
            sxy=(float(self.sxy[d, 0]), float(self.sxy[d, 1])),
            jobs=int(self.jobs[d]),
        )

    def load(self, d: int, k: DeviceKnowledge) -> None:
        self._cache.clear()
        self.n[d], self.sum_r[d], self.sum_r2[d] = k.n, k.sum_r, k.sum_r2
        self.sxx[d] = k.sxx
        self.sxy[d] = k.sxy
        self.jobs[d] = k.jobs
        self.gn[self.kind[d]] += k.n
        self.gr[self.kind[d]] += k.sum_r
        if k.sxx[0] > 0:
            p_ref = k.sxx[1] / k.sxx[0]
            self._solve_speed(d, p_ref)

    def summary(self, names: Sequence[str]) -> Mapping[str, dict[str, float]]:
        w, s, o = self.wait(), self.speed(), self.overhead()
        return {
            name: {
                "wait_s": float(w[d]),
                "speed": float(s[d]),
                "overhead_s": float(o[d]),
                "jobs": int(self.jobs[d]),
            }
            for d, name in enumerate(names)
        }
