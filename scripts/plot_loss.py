"""Draw the loss curve (and the validation AP) of a training run as a PNG.

Usage (from the repository root)::

    .venv/bin/python scripts/plot_loss.py runs/quickstart/checkpoint/metrics.jsonl -o loss.png
    .venv/bin/python scripts/plot_loss.py runs/quickstart/train.log -o loss.png

The input is train.py's metrics file (``<save_model_path>/metrics.jsonl``, see
``src/train/metrics_log.py``: loss records and, with ``--val_interval``, validation AP records) or,
for runs without one, its log.

train.py writes one line every ``log_interval`` steps (see ``src.train.loss_report.format_report``)::

    epoch 2 step 50/125 (global 175): mean loss 0.012345 | paf stages [0.00400 0.00300] |
    heatmap stages [0.00200 0.00100] | lr 2.000e-03 | 9.80 img/s, 0.816 s/step

(on one line). The picture has the mean total loss against the global step (log scale),
when the records carry them the per-stage PAF (solid) and heatmap (dashed) losses, and the
validation AP and AR when the metrics file has them. Other lines
(progress bars, messages) are skipped. A missing file or a log without loss lines prints one
line and exits with status 1.
"""
import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
LOSS_LINE = re.compile(
    r"\(global (?P<step>\d+)\): mean loss (?P<loss>" + _NUMBER + r")"
    r"(?: \| paf stages \[(?P<paf>[^\]]*)\])?"
    r"(?: \| heatmap stages \[(?P<heatmap>[^\]]*)\])?"
    r"(?: \| lr (?P<lr>" + _NUMBER + r"))?"
    r"(?: \| (?P<speed>" + _NUMBER + r") img/s)?")


class LogError(ValueError):
    """The log cannot be read or holds no loss lines (one-line message)."""


@dataclass
class LossHistory:
    """Loss values parsed from a training log.

    Attributes:
        steps: global step of each report (list of int).
        loss: mean total loss over the steps since the previous report (list of float).
        paf, heatmap: per report, the per-stage mean losses (list of lists of float; empty
            lists when the line has none).
        lr: learning rate of the stages at each report (float, NaN when absent).
        images_per_s: training speed at each report (float, NaN when absent).
    """

    steps: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    paf: list = field(default_factory=list)
    heatmap: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    images_per_s: list = field(default_factory=list)
    val_steps: list = field(default_factory=list)
    val_ap: list = field(default_factory=list)
    val_ar: list = field(default_factory=list)

    def __len__(self):
        return len(self.steps)

    @property
    def num_stages(self):
        """Stages present in every report (0 when some line has no per-stage values)."""
        counts = {len(v) for v in self.paf} | {len(v) for v in self.heatmap}
        return min(counts) if counts else 0


def _floats(text):
    return [float(v) for v in text.split()] if text else []


def parse_log_lines(lines):
    """Parse train.py log lines into a :class:`LossHistory` (unrelated lines are skipped).

    Carriage returns (progress bars written to the same file) split lines too. When a step
    appears twice (a resumed run re-logging it), the later value wins.
    """
    rows = {}
    for raw in lines:
        for line in str(raw).split("\r"):
            match = LOSS_LINE.search(line)
            if not match:
                continue
            nan = float("nan")
            rows[int(match.group("step"))] = (
                float(match.group("loss")), _floats(match.group("paf")),
                _floats(match.group("heatmap")),
                float(match.group("lr")) if match.group("lr") else nan,
                float(match.group("speed")) if match.group("speed") else nan)
    history = LossHistory()
    for step in sorted(rows):
        loss, paf, heatmap, lr, speed = rows[step]
        history.steps.append(step)
        history.loss.append(loss)
        history.paf.append(paf)
        history.heatmap.append(heatmap)
        history.lr.append(lr)
        history.images_per_s.append(speed)
    return history


def history_from_metrics(by_kind):
    """A :class:`LossHistory` from :func:`src.train.metrics_log.read_metrics`'s records."""
    nan = float("nan")
    def number(value):
        return nan if value is None else float(value)

    history = LossHistory()
    for record in by_kind.get("train", []):
        history.steps.append(int(record["step"]))
        history.loss.append(number(record.get("loss")))
        history.paf.append([number(v) for v in record.get("paf") or []])
        history.heatmap.append([number(v) for v in record.get("heatmap") or []])
        history.lr.append(number(record.get("lr")))
        history.images_per_s.append(number(record.get("images_per_s")))
    for record in by_kind.get("val", []):
        history.val_steps.append(int(record["step"]))
        history.val_ap.append(number(record.get("AP")))
        history.val_ar.append(number(record.get("AR")))
    return history


def read_log(path):
    """Parse the log file or metrics.jsonl at ``path``.

    Raises:
        LogError: unreadable file or no loss lines in it.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise LogError(f"{path}: cannot read the log ({exc.strerror or exc})") from None
    if str(path).endswith(".jsonl"):
        import _repo_path  # noqa: F401  (puts the repository root on sys.path)

        from src.train.metrics_log import parse_metrics
        history = history_from_metrics(parse_metrics(text.splitlines()))
    else:
        history = parse_log_lines(text.splitlines())
    if not len(history):
        raise LogError(f"{path}: no training loss lines ('(global N): mean loss ...') found")
    return history


def plot_history(history, out_path, title=None):
    """Write the loss-curve PNG of ``history`` to ``out_path``.

    Returns:
        The output path (str).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = history.num_stages
    panels = 1 + bool(stages) + bool(history.val_steps)
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    ax.plot(history.steps, history.loss, color="black", marker="." if len(history) < 40 else None,
            label="total (mean over log interval)")
    ax.set_yscale("log")
    ax.set_xlabel("global step")
    ax.set_ylabel("loss")
    ax.set_title("total loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    if stages:
        ax = axes[0, 1]
        colors = plt.get_cmap("viridis")([i / max(stages - 1, 1) * 0.85 for i in range(stages)])
        for stage in range(stages):
            ax.plot(history.steps, [v[stage] for v in history.paf], color=colors[stage],
                    label=f"PAF stage {stage + 1}")
            ax.plot(history.steps, [v[stage] for v in history.heatmap], color=colors[stage],
                    linestyle="--", label=f"heatmap stage {stage + 1}")
        ax.set_yscale("log")
        ax.set_xlabel("global step")
        ax.set_title("per-stage losses")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper right", fontsize=7, ncol=2)
    if history.val_steps:
        ax = axes[0, panels - 1]
        ax.plot(history.val_steps, history.val_ap, color="tab:red", marker="o", label="AP")
        ax.plot(history.val_steps, history.val_ar, color="tab:blue", marker="s", linestyle="--",
                label="AR")
        ax.set_ylim(0, 1)
        ax.set_xlabel("global step")
        ax.set_title("validation (COCO keypoints)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return str(out_path)


def build_parser():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", help="metrics.jsonl of a training run, or its log (train.py's stdout)")
    parser.add_argument("-o", "--output", default="loss.png", help="PNG to write (default loss.png)")
    parser.add_argument("--title", default=None, help="figure title")
    return parser


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        history = read_log(args.log)
        out = plot_history(history, args.output, args.title)
    except LogError as exc:
        print(f"plot_loss.py: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"plot_loss.py: error: {args.output}: cannot write ({exc.strerror or exc})",
              file=sys.stderr)
        return 1
    print(f"loss curve: {out} ({len(history)} points, steps {history.steps[0]}..{history.steps[-1]}, "
          f"loss {history.loss[0]:.6g} -> {history.loss[-1]:.6g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
