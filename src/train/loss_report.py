"""The loss log of a training run: per-stage means and speed since the last report, one line each."""
import math
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LossMeter:
    """Averages the total and per-stage losses over the steps since the last report."""

    steps: int = 0
    timed_steps: int = 0
    loss: float = 0.0
    paf: np.ndarray = None
    heatmap: np.ndarray = None
    started: float = field(default_factory=time.perf_counter)

    def restart_clock(self):
        """Time rates from now on (e.g. after the first step, which includes the graph compile)."""
        self.started = time.perf_counter()
        self.timed_steps = 0

    def add(self, loss, paf_losses, heatmap_losses):
        """Add one step: scalar loss and the (S,) per-stage arrays."""
        paf_losses = np.asarray(paf_losses, np.float64)
        heatmap_losses = np.asarray(heatmap_losses, np.float64)
        if self.steps == 0:
            self.paf = np.zeros_like(paf_losses)
            self.heatmap = np.zeros_like(heatmap_losses)
        self.steps += 1
        self.timed_steps += 1
        self.loss += float(loss)
        self.paf += paf_losses
        self.heatmap += heatmap_losses

    def report(self, images_per_step):
        """Means and rates since the last report, then reset.

        Returns:
            dict with loss, paf (S,), heatmap (S,), images_per_s, s_per_step, steps.
        """
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        steps = max(self.steps, 1)
        timed = self.timed_steps
        out = {"loss": self.loss / steps,
               "paf": (self.paf if self.paf is not None else np.zeros(0)) / steps,
               "heatmap": (self.heatmap if self.heatmap is not None else np.zeros(0)) / steps,
               "images_per_s": timed * images_per_step / elapsed if timed else float("nan"),
               "s_per_step": elapsed / timed if timed else float("nan"), "steps": self.steps}
        self.steps, self.loss, self.paf, self.heatmap = 0, 0.0, None, None
        self.restart_clock()
        return out


def format_report(report, epoch, step_in_epoch, steps_per_epoch, global_step, lr):
    """One log line of a :meth:`LossMeter.report`."""
    def fmt(values):
        return "[" + " ".join(f"{v:.5f}" for v in values) + "]"

    if math.isfinite(report["images_per_s"]):
        speed = f"{report['images_per_s']:.2f} img/s, {report['s_per_step']:.3f} s/step"
    else:
        speed = "img/s after the first step"
    return (f"epoch {epoch + 1} step {step_in_epoch}/{steps_per_epoch} (global {global_step}): "
            f"mean loss {report['loss']:.6f} | paf stages {fmt(report['paf'])} | "
            f"heatmap stages {fmt(report['heatmap'])} | lr {lr:.3e} | {speed}")
