"""Draw the loss curves (and the validation AP) of a training run as a PNG.

Usage (from the repository root)::

    .venv/bin/python scripts/plot_loss.py runs/quickstart/checkpoint/metrics.jsonl
    .venv/bin/python scripts/plot_loss.py runs/quickstart/train.log -o pictures/loss.png

The input is train.py's metrics file (``<save_model_path>/metrics.jsonl``, see
``src/train/metrics_log.py``: loss records and, with ``--val_interval``, validation records)
or its log (what train.py printed); both give the same picture. The PNG goes beside the input
as ``loss.png`` unless ``-o`` names another file.

train.py writes one line every ``log_interval`` steps (see ``src.train.loss_report.format_report``)::

    epoch 2 step 50/125 (global 175): mean loss 0.012345 | paf stages [0.00400 0.00300] |
    heatmap stages [0.00200 0.00100] | lr 2.000e-03 | 9.80 img/s, 0.816 s/step

(on one line) and one line per validation (``src/train/validation.py``)::

    validation in epoch 2 (global step 100, 50 images, 2.4 s): AP 0.2002 AP.5 0.6350
    AP.75 0.0482 AR 0.2250; ...

The picture has panels stacked over one shared global-step axis: the mean total loss (log
scale); when the records carry them, the per-stage PAF (solid) and heatmap (dashed) losses; and
the validation AP and AR when there are validations. Other lines (progress bars, messages) are
skipped. A missing file, a log without loss lines or an output that would replace the input
prints one line and exits with status 1.
"""
import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from _repo_path import REPO_ROOT  # noqa: F401  (puts the repository root on sys.path)

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
#: The prefix of a distributed job's lines, "[rank r/n] " (src.parallel.cluster).
OTHER_RANK = re.compile(r"\s*\[rank (\d+)/\d+\] ")
LOSS_LINE = re.compile(
    r"\(global (?P<step>\d+)\): mean loss (?P<loss>" + _NUMBER + r")"
    r"(?: \| paf stages \[(?P<paf>[^\]]*)\])?"
    r"(?: \| heatmap stages \[(?P<heatmap>[^\]]*)\])?"
    r"(?: \| lr (?P<lr>" + _NUMBER + r"))?"
    r"(?: \| (?P<speed>" + _NUMBER + r") img/s)?")
VALIDATION_LINE = re.compile(
    r"validation in epoch \d+ \(global step (?P<step>\d+)[^)]*\): AP (?P<ap>" + _NUMBER + r")"
    r".*? AR (?P<ar>" + _NUMBER + r")")
DEFAULT_NAME = "loss.png"


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

    Loss report lines and validation lines are read (of rank 0 in a distributed job's log, the
    rank metrics.jsonl records). Carriage returns (progress bars written
    to the same file) split lines too. When a step appears twice (a resumed run re-logging it),
    the later value wins.
    """
    rows, validations = {}, {}
    for raw in lines:
        for line in str(raw).split("\r"):
            rank = OTHER_RANK.match(line)
            if rank and rank.group(1) != "0":
                continue   # every rank logs its own loss; metrics.jsonl holds rank 0's
            match = VALIDATION_LINE.search(line)
            if match:
                validations[int(match.group("step"))] = (float(match.group("ap")),
                                                         float(match.group("ar")))
                continue
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
    for step in sorted(validations):
        history.val_steps.append(step)
        history.val_ap.append(validations[step][0])
        history.val_ar.append(validations[step][1])
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
        from src.train.metrics_log import parse_metrics
        history = history_from_metrics(parse_metrics(text.splitlines()))
    else:
        history = parse_log_lines(text.splitlines())
    if not len(history):
        raise LogError(f"{path}: no training loss lines ('(global N): mean loss ...') found")
    return history


def _log_axis(ax):
    """Log-scale y axis (call after plotting) with plain labels at 1, 2 and 5 times each power
    of ten, or at every tick when the data span less than a factor of 2.5 (where 1-2-5 ticks
    could leave the axis without a label)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:.3g}")
    low, high = ax.get_ylim()
    narrow = low > 0 and high / low < 2.5
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain if narrow else NullFormatter())


def plot_history(history, out_path, title=None):
    """Write the loss-curve PNG of ``history`` to ``out_path`` (atomically: a failed write
    leaves no partial file).

    Panels, top to bottom, over one shared global-step axis: total loss; per-stage losses
    (when the records have them); validation AP and AR (when there were validations).

    Returns:
        The output path (str).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from src.runtime.atomic_write import atomic_write

    stages = history.num_stages
    panels = 1 + bool(stages) + bool(history.val_steps)
    fig, axes = plt.subplots(panels, 1, figsize=(9.0, 1.0 + 3.0 * panels), sharex=True,
                             squeeze=False)
    axes = axes[:, 0]
    ax = axes[0]
    ax.plot(history.steps, history.loss, color="black", marker="." if len(history) < 40 else None,
            label="total (mean over each log interval)")
    _log_axis(ax)
    ax.set_ylabel("total loss (log scale)")
    ax.set_title("total loss")
    ax.legend(loc="upper right", fontsize=8)
    if stages:
        ax = axes[1]
        colors = plt.get_cmap("viridis")([i / max(stages - 1, 1) * 0.85 for i in range(stages)])
        for stage in range(stages):
            ax.plot(history.steps, [v[stage] for v in history.paf], color=colors[stage],
                    label=f"PAF stage {stage + 1}")
            ax.plot(history.steps, [v[stage] for v in history.heatmap], color=colors[stage],
                    linestyle="--", label=f"heatmap stage {stage + 1}")
        _log_axis(ax)
        ax.set_ylabel("loss per stage (log scale)")
        ax.set_title("per-stage losses (PAF solid, heatmap dashed)")
        ax.legend(loc="upper right", fontsize=7, ncol=2 if stages > 1 else 1)
    if history.val_steps:
        ax = axes[-1]
        ax.plot(history.val_steps, history.val_ap, color="tab:red", marker="o", label="AP")
        ax.plot(history.val_steps, history.val_ar, color="tab:blue", marker="s", linestyle="--",
                label="AR")
        ax.set_ylim(0, 1)
        ax.set_ylabel("COCO keypoint AP / AR")
        ax.set_title("validation")
        ax.legend(loc="lower right", fontsize=8)
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
    last = max(history.steps[-1], history.val_steps[-1] if history.val_steps else 0)
    axes[-1].set_xlim(0, last * 1.02)
    axes[-1].set_xlabel("global step")
    fig.suptitle(title or "training")
    fig.tight_layout()
    out_path = Path(out_path)
    try:
        with atomic_write(out_path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return str(out_path)


def default_output(log_path):
    """``loss.png`` beside the input (never in the current directory)."""
    return Path(log_path).parent / DEFAULT_NAME


def build_parser():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", help="metrics.jsonl of a training run, or its log (train.py's output)")
    parser.add_argument("-o", "--output", default=None,
                        help=f"PNG to write (default: {DEFAULT_NAME} beside the input)")
    parser.add_argument("--title", default=None,
                        help="figure title (default: 'training: <input>')")
    return parser


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    output = Path(args.output) if args.output else default_output(args.log)
    try:
        if output.resolve() == Path(args.log).resolve():
            raise LogError(f"{output}: is the input; give another -o")
        history = read_log(args.log)
        out = plot_history(history, output, args.title or f"training: {args.log}")
    except LogError as exc:
        print(f"plot_loss.py: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:   # WriteError (an OSError) already names the file and the reason
        message = str(exc) if str(exc).startswith(str(output)) else \
            f"{output}: cannot write ({exc.strerror or exc})"
        print(f"plot_loss.py: error: {message}", file=sys.stderr)
        return 1
    validations = (f", {len(history.val_steps)} validation(s), last AP {history.val_ap[-1]:.4f}"
                   if history.val_steps else ", no validation")
    print(f"loss curve: {out} ({len(history)} points, steps {history.steps[0]}..{history.steps[-1]}, "
          f"loss {history.loss[0]:.6g} -> {history.loss[-1]:.6g}{validations})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
