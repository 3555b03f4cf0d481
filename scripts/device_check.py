"""One pass over everything a device run needs, printed as one JSON object.

    bash scripts/device_check.sh            # on a GPU (or Ascend) machine: full size, < 8 min
    bash scripts/device_check.sh --smoke    # the same path on the CPU with tiny sizes (tests)

What it does, in order:

1. MindSpore's version, the device target it resolves (``auto``) and whether a GPU is seen.
2. Training through train.py's loop (:func:`src.train.loop.run_training`) on one fixed random
   batch: the full network at 368 x 368, batch 10, ``--steps`` steps with ``amp_level`` O0 and
   then O2 (``fix_loss_scale`` + Adam): first-step time (graph compile), images/s over the other
   steps, whether every loss is finite and whether the loss fell.
3. eval.py on the COCO sample of ``../shared`` with the O0 checkpoint: network and decoding
   milliseconds per image (eval_metrics.json).
4. export.py to ONNX, then an onnxruntime session on the file: output shapes and ms per run.

``--smoke`` runs the same steps on the CPU with a 1-stage quarter-width network at 64 x 64,
batch 2, 3 steps, O0 only (mixed precision needs a GPU or Ascend). Exit status 0 when every
check passed, 1 otherwise; the JSON says which failed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _repo_path import REPO_ROOT

FULL = dict(insize=368, batch=10, steps=30, width_mult=1.0, num_stages=6, vgg_with_bn=False,
            amp_levels=("O0", "O2"), eval_size=368)
SMOKE = dict(insize=64, batch=2, steps=3, width_mult=0.25, num_stages=1, vgg_with_bn=True,
             amp_levels=("O0",), eval_size=64)


def train_check(sizes, amp_level, target, out_dir):
    """Train ``sizes['steps']`` steps on one fixed batch; returns figures and the checkpoint."""
    from src.train.data import ArrayTrainData, random_train_batch
    from src.train.loop import run_training
    from src.train.settings import default_settings
    data = ArrayTrainData(*random_train_batch(sizes["batch"], sizes["insize"]), batch_size=sizes["batch"],
                          shuffle=False)
    settings = default_settings(save_model_path=str(out_dir / f"train_{amp_level}"),
                                batch_size=sizes["batch"], max_epoch=sizes["steps"], lr=1e-4,
                                lr_steps=(10 ** 9,), optimizer="Adam", group_params=False,
                                train_type="fix_loss_scale", loss_scale=1024.0, log_interval=0,
                                ckpt_interval=0, keep_checkpoint_max=1, progress=False,
                                vgg_with_bn=sizes["vgg_with_bn"], width_mult=sizes["width_mult"],
                                num_stages=sizes["num_stages"], amp_level=amp_level,
                                device_target=target, seed=1)
    losses, stamps = [], []
    start = time.perf_counter()
    result = run_training(settings, data, log=lambda line: None,
                          step_callback=lambda step, loss: (losses.append(loss),
                                                            stamps.append(time.perf_counter())))
    timed = len(stamps) - 1
    rate = timed * sizes["batch"] / (stamps[-1] - stamps[0]) if timed > 0 else float("nan")
    finite = bool(np.all(np.isfinite(losses)))
    return {"steps": len(losses), "first_step_s": round(stamps[0] - start, 2),
            "images_per_s": round(rate, 2), "loss_first": losses[0], "loss_last": losses[-1],
            "finite": finite, "falling": finite and losses[-1] < losses[0],
            "ok": finite and losses[-1] < losses[0]}, result.last_checkpoint


def run_script(args, timeout):
    """Run a repository script with this interpreter; returns (rc, last output line)."""
    proc = subprocess.run([sys.executable] + [str(a) for a in args], cwd=REPO_ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                          check=False)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, (lines[-1] if lines else "")


def eval_check(checkpoint, sample_dir, sizes, out_dir, target):
    """eval.py on the COCO sample; returns its timing figures."""
    ann = sample_dir / "person_keypoints_sample.json"
    if not ann.is_file():
        return {"skipped": f"no COCO sample at {sample_dir}", "ok": True}
    eval_dir = out_dir / "eval"
    rc, last = run_script(["eval.py", "--model_path", checkpoint, "--imgpath_val", sample_dir,
                           "--ann", ann, "--output_img_path", eval_dir, "--device_target", target,
                           "--inference_img_size", sizes["eval_size"]], timeout=600)
    if rc != 0:
        return {"ok": False, "rc": rc, "error": last}
    summary = json.loads((eval_dir / "eval_metrics.json").read_text())
    return {"ok": True, "images": summary["num_images"],
            "network_ms_per_image": round(summary["network_ms_per_image"], 1),
            "decode_and_io_ms_per_image": round(summary["host_ms_per_image"], 1),
            "AP": summary["metrics"]["AP"]}


def export_check(checkpoint, sizes, out_dir, target):
    """export.py to ONNX, then an onnxruntime session on the file."""
    stem = out_dir / "openpose"
    rc, last = run_script(["export.py", "--ckpt_file", checkpoint, "--file_name", stem,
                           "--file_format", "ONNX", "--insize", sizes["insize"],
                           "--device_target", target], timeout=600)
    path = Path(f"{stem}.onnx")
    if rc != 0 or not path.is_file():
        return {"ok": False, "rc": rc, "error": last}
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    from src.train.data import random_train_batch
    image = random_train_batch(1, sizes["insize"])[0]
    session.run(None, {session.get_inputs()[0].name: image})
    start = time.perf_counter()
    pafs, heatmaps = session.run(None, {session.get_inputs()[0].name: image})
    grid = sizes["insize"] // 8
    ok = pafs.shape == (1, 38, grid, grid) and heatmaps.shape == (1, 19, grid, grid)
    return {"ok": ok, "bytes": path.stat().st_size, "pafs": list(pafs.shape),
            "heatmaps": list(heatmaps.shape),
            "onnxruntime_cpu_ms": round(1000 * (time.perf_counter() - start), 1)}


def main(argv=None):
    """Run the checks and print one JSON object; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes (for the tests)")
    parser.add_argument("--steps", type=int, default=None, help="train steps per amp level")
    parser.add_argument("--out", default="", help="work folder (default: a temporary one)")
    parser.add_argument("--shared", default=os.environ.get("OPENPOSE_SHARED", str(REPO_ROOT.parent / "shared")))
    args = parser.parse_args(argv)
    sizes = dict(SMOKE if args.smoke else FULL)
    if args.steps:
        sizes["steps"] = args.steps
    import mindspore

    from src.runtime.context import gpu_available, setup_context
    target = setup_context("CPU" if args.smoke else "auto", mode="graph", seed=1)
    report = {"mindspore": mindspore.__version__, "python": sys.version.split()[0],
              "device_target": target, "gpu_seen": gpu_available(), "smoke": args.smoke,
              "sizes": {k: v for k, v in sizes.items() if k != "amp_levels"}}
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="device_check_"))
    checkpoint = None
    for amp_level in ("O0", "O2"):
        if amp_level not in sizes["amp_levels"] or (amp_level != "O0" and target == "CPU"):
            report[f"train_{amp_level}"] = {"skipped": "mixed precision needs a GPU or Ascend", "ok": True}
            continue
        try:
            report[f"train_{amp_level}"], ckpt = train_check(sizes, amp_level, target, out_dir)
            checkpoint = checkpoint or ckpt
        except Exception as exc:  # report every failure in the JSON
            report[f"train_{amp_level}"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    if checkpoint:
        report["eval"] = eval_check(checkpoint, Path(args.shared) / "data" / "coco_sample", sizes,
                                    out_dir, target)
        report["onnx_export"] = export_check(checkpoint, sizes, out_dir, target)
    else:
        report["eval"] = report["onnx_export"] = {"ok": False, "error": "no checkpoint (training failed)"}
    report["ok"] = all(part.get("ok", False) for part in report.values() if isinstance(part, dict)
                       and "ok" in part)
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
