"""Benchmark training: seconds per train step, and loss reduction on a fixed toy batch.

Usage (from the repository root)::

    .venv/bin/python scripts/benchmark_train.py --mode speed [--insize 368] [--batch_sizes 1,2]
        [--steps 5] [--warmup 1] [--train_type fix_loss_scale] [--device_target auto]
        [--amp_level O0] [--out result.json]
    .venv/bin/python scripts/benchmark_train.py --mode overfit [--overfit_insize 96]
        [--overfit_steps 30] [--overfit_batch 2] [--toy_dir DIR] [--out result.json]

``speed`` builds the real OpenPoseNet with the training optimizer (Adam, three groups) and train
step, feeds one fixed random batch, and times each step to the host (the loss is read back, so
the step has finished). The first call (graph compile + first step) is reported apart; the
figure is the median over ``--steps`` later steps. No data pipeline: this is the network's
cost.

``overfit`` trains the real network for ``--overfit_steps`` steps on one fixed batch of the toy
COCO set (``scripts/make_toy_coco.py``; made in a temporary folder unless ``--toy_dir``), once
per train type (``fix_loss_scale`` and ``clip_grad``, the reference's settings otherwise; the VGG
freeze is off so every layer learns), and reports the loss of every step.

The JSON result goes to stdout (and to ``--out``).
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _repo_path import REPO_ROOT as REPO

from src.config_checks import RULES
from src.runtime.atomic_write import write_text

TRAIN_TYPES = RULES["train_type"].allowed  # stated once, in the checks table


def build_parser():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("speed", "overfit", "all"), default="speed")
    parser.add_argument("--insize", type=int, default=368)
    parser.add_argument("--batch_sizes", default="1,2")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per batch size")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps after the first call")
    parser.add_argument("--train_type", choices=TRAIN_TYPES, default="fix_loss_scale")
    parser.add_argument("--overfit_insize", type=int, default=96)
    parser.add_argument("--overfit_steps", type=int, default=30)
    parser.add_argument("--overfit_batch", type=int, default=2)
    parser.add_argument("--overfit_lr", type=float, default=1e-4, help="stage lr (reference: 1e-4)")
    parser.add_argument("--toy_dir", default="", help="toy COCO folder (default: make one)")
    parser.add_argument("--device_target", default="auto")
    parser.add_argument("--amp_level", default="O0")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="")
    return parser


def make_step(train_type, lr, steps, loss_scale, amp_level, vgg_freeze_steps=2000):
    """Real network + Adam (three groups) + train step, reference settings."""
    import mindspore

    from src.model.network_spec import NetworkSpec
    from src.train.lr_schedule import build_lr_schedules
    from src.train.optimizer import build_optimizer
    from src.train.train_step import build_train_step
    network = NetworkSpec().build()          # the reference network
    if amp_level != "O0":
        network = mindspore.amp.auto_mixed_precision(network, amp_level)
    schedules = build_lr_schedules(lr, 0.1, steps_per_epoch=steps, max_epoch=1, lr_steps=[],
                                   vgg_freeze_steps=vgg_freeze_steps)
    optimizer = build_optimizer(network.trainable_params(), schedules, "Adam", group_params=True)
    return build_train_step(network, optimizer, train_type, loss_scale=loss_scale, clip_type=1,
                            clip_value=10.0)


def _tensors(batch):
    import mindspore
    return tuple(mindspore.Tensor(a) for a in batch)


def time_steps(args, batch_size):
    """Seconds of the first call and of each later step for one batch size."""
    step = make_step(args.train_type, 1e-4, 1000, 16384.0, args.amp_level)
    from src.train.data import random_train_batch
    inputs = _tensors(random_train_batch(batch_size, args.insize))
    started = time.perf_counter()
    loss = float(step(*inputs)[0].asnumpy())
    first = time.perf_counter() - started
    for _ in range(args.warmup):
        step(*inputs)[0].asnumpy()
    times = []
    for _ in range(args.steps):
        started = time.perf_counter()
        loss = float(step(*inputs)[0].asnumpy())
        times.append(time.perf_counter() - started)
    return {"batch_size": batch_size, "insize": args.insize, "first_call_s": round(first, 3),
            "step_s_median": round(statistics.median(times), 4),
            "step_s_min": round(min(times), 4), "step_s_all": [round(t, 4) for t in times],
            "images_per_s": round(batch_size / statistics.median(times), 4), "last_loss": loss}


def toy_batch(args):
    """One fixed (augmented) batch of the toy COCO set at ``--overfit_insize``."""
    from src.config import default_config
    from src.train.data import CocoTrainData
    toy_dir = Path(args.toy_dir) if args.toy_dir else Path(tempfile.mkdtemp(prefix="toy_coco_"))
    if not (toy_dir / "annotations" / "person_keypoints_train2017.json").is_file():
        subprocess.run([sys.executable, str(REPO / "scripts" / "make_toy_coco.py"), "--out",
                        str(toy_dir), "--num_train", "16", "--num_val", "1", "--size", "160",
                        "--seed", str(args.seed), "--quiet"], check=True)
    data = CocoTrainData.from_config(default_config(
        jsonpath_train=str(toy_dir / "annotations" / "person_keypoints_train2017.json"),
        imgpath_train=str(toy_dir / "train2017"), maskpath_train=str(toy_dir / "ignore_mask_train"),
        batch_size=args.overfit_batch, insize=args.overfit_insize, num_parallel_workers=1,
        seed=args.seed))
    return next(iter(data.batches(0))), str(toy_dir)


def overfit(args):
    """Loss of every step when training on one fixed toy batch, per train type."""
    import mindspore
    batch, toy_dir = toy_batch(args)
    inputs = _tensors(batch)
    results = {"insize": args.overfit_insize, "batch_size": args.overfit_batch,
               "steps": args.overfit_steps, "lr": args.overfit_lr, "toy_dir": toy_dir,
               "mask_fraction": float(np.mean(batch[3]))}
    for train_type in TRAIN_TYPES:
        mindspore.set_seed(args.seed)
        step = make_step(train_type, args.overfit_lr, args.overfit_steps, 16384.0, args.amp_level,
                         vgg_freeze_steps=0)
        losses = []
        started = time.perf_counter()
        for _ in range(args.overfit_steps):
            losses.append(float(step(*inputs)[0].asnumpy()))
        results[train_type] = {"loss_first": losses[0], "loss_last": losses[-1],
                               "loss_min": min(losses), "last_over_first": losses[-1] / losses[0],
                               "seconds": round(time.perf_counter() - started, 1),
                               "losses": [round(v, 6) for v in losses]}
    return results


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    from src.runtime.context import setup_context
    target = setup_context(args.device_target, mode="graph", seed=args.seed)
    import mindspore
    result = {"device_target": target, "mindspore": mindspore.__version__,
              "train_type": args.train_type, "amp_level": args.amp_level}
    if args.mode in ("speed", "all"):
        result["speed"] = [time_steps(args, int(b)) for b in args.batch_sizes.split(",") if b.strip()]
    if args.mode in ("overfit", "all"):
        result["overfit"] = overfit(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
