"""Tests of scripts/plot_loss.py on a tiny synthetic train.py log."""
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src.train.loss_report import format_report

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "plot_loss.py"


def _load_module():
    spec = importlib.util.spec_from_file_location("plot_loss", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plot_loss = _load_module()


def _report(loss, paf, heatmap, speed=12.5):
    return {"loss": loss, "paf": np.asarray(paf), "heatmap": np.asarray(heatmap),
            "images_per_s": speed, "s_per_step": 8 / speed if math.isfinite(speed) else speed,
            "steps": 10}


def _synthetic_log(tmp_path):
    """A log as train.py writes it: messages, progress-bar junk and three report lines."""
    lines = [
        "device CPU, rank 0 of 1, insize 128",
        "first step done in 6.0 s (graph compile and data start-up included), loss 0.201695",
        "epoch 1/8:  40%|####      | 50/125 [00:10<00:15, 5.0it/s, loss=0.1]\r"
        + format_report(_report(0.2, [0.08, 0.07], [0.03, 0.02]), 0, 10, 25, 10, 2e-3),
        format_report(_report(0.1, [0.04, 0.03], [0.02, 0.01]), 0, 20, 25, 20, 1.5e-3),
        format_report(_report(0.05, [0.02, 0.015], [0.01, 0.005], float("nan")), 1, 5, 25, 30,
                      1e-3),
        "finished at global step 30, last loss 0.050000; last checkpoint x.ckpt",
    ]
    path = tmp_path / "train.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_parse_values(tmp_path):
    history = plot_loss.read_log(_synthetic_log(tmp_path))
    assert history.steps == [10, 20, 30]
    assert history.loss == pytest.approx([0.2, 0.1, 0.05])
    assert history.num_stages == 2
    assert history.paf[0] == pytest.approx([0.08, 0.07])
    assert history.heatmap[2] == pytest.approx([0.01, 0.005])
    assert history.lr == pytest.approx([2e-3, 1.5e-3, 1e-3])
    assert history.images_per_s[0] == pytest.approx(12.5)
    assert math.isnan(history.images_per_s[2])


def test_later_duplicate_step_wins_and_no_stage_values():
    lines = ["epoch 1 step 5/5 (global 5): mean loss 0.500000",
             "epoch 1 step 5/5 (global 5): mean loss 0.400000",
             "epoch 2 step 5/5 (global 10): mean loss 0.300000"]
    history = plot_loss.parse_log_lines(lines)
    assert history.steps == [5, 10]
    assert history.loss == pytest.approx([0.4, 0.3])
    assert history.num_stages == 0


def test_a_distributed_log_gives_rank_0s_losses():
    lines = ["[rank 0/2] epoch 1 step 5/5 (global 5): mean loss 0.500000",
             "[rank 1/2] epoch 1 step 5/5 (global 5): mean loss 0.900000"]
    history = plot_loss.parse_log_lines(lines)
    assert history.loss == pytest.approx([0.5]), "another rank's loss replaced rank 0's"


def test_cli_writes_png(tmp_path):
    out = tmp_path / "plots" / "loss.png"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(_synthetic_log(tmp_path)), "-o", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "3 points" in proc.stdout
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import cv2
    image = cv2.imread(str(out))
    assert image.shape == (700, 900, 3)           # two panels stacked: 9 x (1 + 2 x 3) inches, 100 dpi
    assert image.std() > 10                        # something was drawn


def test_cli_errors(tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_text("no loss here\n")
    for path, needle in ((tmp_path / "missing.log", "cannot read"), (empty, "no training loss lines")):
        proc = subprocess.run([sys.executable, str(SCRIPT), str(path), "-o", str(tmp_path / "x.png")],
                              capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
        assert proc.returncode == 1
        assert needle in proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_metrics_jsonl_with_validation(tmp_path):
    from src.train.metrics_log import MetricsLog
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step, loss in ((10, 0.2), (20, 0.1), (30, 0.05)):
        log.write("train", step=step, epoch=1, loss=loss, paf=np.array([loss / 2]),
                  heatmap=[loss / 4], lr=1e-3, images_per_s=float("nan"))
    log.write("val", step=20, epoch=1, AP=0.25, AR=0.3)
    log.write("val", step=30, epoch=2, AP=0.5, AR=0.6)
    history = plot_loss.read_log(tmp_path / "metrics.jsonl")
    assert history.steps == [10, 20, 30] and history.loss == [0.2, 0.1, 0.05]
    assert history.val_steps == [20, 30] and history.val_ap == [0.25, 0.5]
    assert math.isnan(history.images_per_s[0])
    out = plot_loss.plot_history(history, tmp_path / "loss.png")
    import matplotlib.image
    height, width = matplotlib.image.imread(out).shape[:2]
    assert width == 900 and height == 1000, "three panels: loss, per-stage losses, validation"


VALIDATION_LINES = [
    # as src/train/validation.py prints them (the text after ';' varies)
    "validation in epoch 2 (global step 20, 50 images, 2.4 s): AP 0.0000 AP.5 0.0000 "
    "AP.75 0.0000 AR 0.0000; first validation, saved runs/x/ckpt_0/best.ckpt",
    "[rank 0/2] validation in epoch 3 (global step 30, 50 images, 3.5 s): AP 0.2002 AP.5 0.6350 "
    "AP.75 0.0482 AR 0.2250; best so far, saved runs/x/ckpt_0/best.ckpt",
]


def _log_with_validation(tmp_path):
    path = _synthetic_log(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:4] + VALIDATION_LINES[:1] + lines[4:5] + VALIDATION_LINES[1:]
                              + lines[5:]) + "\n")
    return path


def test_train_log_validation_lines_are_read_and_drawn(tmp_path):
    history = plot_loss.read_log(_log_with_validation(tmp_path))
    assert history.steps == [10, 20, 30]
    assert history.val_steps == [20, 30]
    assert history.val_ap == pytest.approx([0.0, 0.2002])
    assert history.val_ar == pytest.approx([0.0, 0.2250])
    out = plot_loss.plot_history(history, tmp_path / "loss.png")
    import matplotlib.image
    height, width = matplotlib.image.imread(out).shape[:2]
    assert (width, height) == (900, 1000), "three panels, the validation one included"


def test_every_axis_is_labelled_and_the_x_axis_shared(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    plot_loss.plot_history(plot_loss.read_log(_log_with_validation(tmp_path)),
                           tmp_path / "loss.png", "a title")
    (fig,) = figures
    axes = fig.get_axes()
    assert len(axes) == 3
    assert all(ax.get_ylabel() for ax in axes), [ax.get_ylabel() for ax in axes]
    assert axes[-1].get_xlabel() == "global step"
    assert all(ax.get_shared_x_axes().joined(axes[0], ax) for ax in axes)
    assert len({ax.get_xlim() for ax in axes}) == 1, "panels line up on one step axis"
    # Figure.get_suptitle is matplotlib >= 3.8; the oldest supported release (3.7.2) lacks it
    titles = [text.get_text() for text in fig.findobj(matplotlib.text.Text)]
    assert "a title" in titles, f"no figure title among the texts {titles}"
    plt.close(fig)


def test_cli_writes_beside_its_input_by_default(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    log = _log_with_validation(run_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, str(SCRIPT), str(log)], capture_output=True, text=True,
                          cwd=elsewhere, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "loss.png").is_file() and not list(elsewhere.iterdir())
    assert "2 validation(s), last AP 0.2002" in proc.stdout
    same = subprocess.run([sys.executable, str(SCRIPT), str(log), "-o", str(log)],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert same.returncode == 1 and "is the input" in same.stderr
    assert "mean loss" in log.read_text(), "the input is untouched"
