"""Training history: one record per epoch, each device's share of the work, and a plot."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["EpochRecord", "History"]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch. ``loss``/``accuracy`` are over the training samples as they were processed
    (each with the weights of its moment); ``samples``/``circuits`` are per device;
    ``staleness``/``max_staleness``: the mean and largest number of optimizer steps between
    the weights a sample's gradient was computed on and the step that used it (0 for
    synchronous training; for local-update training, local steps since the last
    averaging); ``epsilon``: the privacy budget spent so far (DP-SGD, at the trainer's
    delta), else None."""

    epoch: int
    loss: float
    accuracy: float
    seconds: float
    samples: tuple[int, ...]
    circuits: tuple[int, ...]
    updates: int
    dropped: int = 0
    val_loss: float | None = None
    val_accuracy: float | None = None
    staleness: float = 0.0
    max_staleness: int = 0
    epsilon: float | None = None

    def with_validation(self, loss: float, accuracy: float) -> EpochRecord:
        return replace(self, val_loss=loss, val_accuracy=accuracy)


@dataclass
class History:
    """The epochs, and what the defences found: ``outliers`` (devices whose gradients were
    outliers in most steps, by a robust aggregator's tally), ``outlier_rate`` (each device's
    fraction of flagged steps), ``quarantined`` (devices given no more shards) and
    ``stopped`` (why training ended early: the privacy budget), else None."""

    devices: list[str]
    epochs: list[EpochRecord] = field(default_factory=list)
    outliers: list[str] = field(default_factory=list)
    outlier_rate: dict[str, float] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)
    stopped: str | None = None

    def share(self) -> dict[str, float]:
        """Each device's fraction of all training circuits run so far."""
        totals = [0] * len(self.devices)
        for e in self.epochs:
            for d, c in enumerate(e.circuits):
                totals[d] += c
        grand = sum(totals) or 1
        return {name: t / grand for name, t in zip(self.devices, totals, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        return {"devices": list(self.devices), "epochs": [asdict(e) for e in self.epochs],
                "outliers": list(self.outliers), "outlier_rate": dict(self.outlier_rate),
                "quarantined": list(self.quarantined), "stopped": self.stopped}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        epochs = []
        for e in data["epochs"]:
            e = dict(e)
            e["samples"] = tuple(e["samples"])
            e["circuits"] = tuple(e["circuits"])
            epochs.append(EpochRecord(**e))
        return cls(
            devices=list(data["devices"]),
            epochs=epochs,
            outliers=list(data.get("outliers", [])),
            outlier_rate=dict(data.get("outlier_rate", {})),
            quarantined=list(data.get("quarantined", [])),
            stopped=data.get("stopped"),
        )

    def plot(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Four panels: loss and accuracy per epoch (validation too when recorded), each
        device's share of the epoch's circuits (stacked), and the staleness of the
        gradients (mean and largest per epoch). Saves to ``path`` when given (PNG, SVG,
        PDF by extension) and returns the matplotlib figure."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        x = [e.epoch + 1 for e in self.epochs]
        fig, axes = plt.subplots(2, 2, figsize=(10, 7))
        (ax_loss, ax_acc), (ax_share, ax_stale) = axes
        ax_loss.plot(x, [e.loss for e in self.epochs], "o-", label="train")
        ax_acc.plot(x, [e.accuracy for e in self.epochs], "o-", label="train")
        if any(e.val_loss is not None for e in self.epochs):
            ax_loss.plot(x, [e.val_loss for e in self.epochs], "s--", label="validation")
            ax_acc.plot(x, [e.val_accuracy for e in self.epochs], "s--", label="validation")
        ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
        ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.05))
        bottom = [0.0] * len(self.epochs)
        for d, name in enumerate(self.devices):
            share = [e.circuits[d] / max(sum(e.circuits), 1) for e in self.epochs]
            ax_share.bar(x, share, bottom=bottom, label=name)
            bottom = [b + s for b, s in zip(bottom, share, strict=True)]
        ax_share.set(xlabel="epoch", ylabel="share of circuits", title="per-device share",
                     ylim=(0, 1))  # fmt: skip
        ax_stale.plot(x, [e.staleness for e in self.epochs], "o-", label="mean")
        ax_stale.plot(x, [e.max_staleness for e in self.epochs], "^:", label="largest")
        ax_stale.set(xlabel="epoch", ylabel="optimizer steps", title="gradient staleness")
        for ax in (ax_loss, ax_acc, ax_stale):
            ax.grid(alpha=0.3)
            ax.legend()
        if len(self.devices) <= 12:
            ax_share.legend(fontsize=7)
        fig.tight_layout()
        if path is not None:
            from multiqpu._private_files import private_output

            private_output(path)  # 0600, as every file that holds results
            fig.savefig(path)
            plt.close(fig)
        return fig
