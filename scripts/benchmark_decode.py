"""Time the pose decoder per image and print JSON.

    python scripts/benchmark_decode.py [--golden decode.npz] [--repeats 20] [--noisy_repeats 5]
        [--profile] [--ckpt CKPT [--images DIR --ann FILE] [--inference_img_size 368]
        [--device_target CPU]]   (the network is the one the checkpoint records)

Decodes the clean and the noisy maps of ``tests/data/golden/decode.npz`` (the reference's
inputs) and reports the median time of ``--repeats`` runs per image, their median over the
images, and the speed-up over the reference figures measured on the project machine. With
``--profile`` it adds the median time per decoder stage. With ``--ckpt`` it also runs the
network of a checkpoint on the sample images and times the decoding of its maps.
Times are wall-clock medians; ``cpu_ms`` is this process's CPU time (less sensitive to other
load on the machine). OpenBLAS runs single-threaded unless OPENBLAS_NUM_THREADS is set.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# One BLAS thread, as eval.py uses: the decoder's matrix products are small, and idle OpenBLAS
# threads spinning on the other core only add CPU time (set the variable to override).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from _repo_path import REPO_ROOT as REPO

from src.config import default_config
from src.evaluate.decoder import DecodeParams, decode_poses
from src.evaluate.decoding.reference import decode_poses_reference

#: The reference decoder's time per image on decode.npz, measured on the project machine (ms).
REFERENCE_MS = {"clean": 120.0, "noisy": 21000.0}
GOLDEN_IMAGES = (785, 40083, 196141, 197388)


def shared_dir():
    return Path(os.environ.get("OPENPOSE_SHARED", REPO.parent / "shared"))


def time_decode(heatmaps, pafs, input_size, orig_size, repeats, params, profile):
    """Median wall seconds of ``repeats`` decodes (after one warm-up), median CPU seconds of
    this process (less sensitive to other load), number of people, and the median seconds per
    stage when ``profile``."""
    poses, _ = decode_poses(heatmaps, pafs, input_size, orig_size, params)
    times, cpu_times, stages = [], [], {}
    for _ in range(repeats):
        timings = {} if profile else None
        start, cpu_start = time.perf_counter(), time.process_time()
        decode_poses(heatmaps, pafs, input_size, orig_size, params, timings=timings)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        for name, seconds in (timings or {}).items():
            stages.setdefault(name, []).append(seconds)
    stage_ms = {name: round(1000 * statistics.median(v), 3) for name, v in stages.items()}
    return statistics.median(times), statistics.median(cpu_times), len(poses), stage_ms


def benchmark_golden(path, repeats, noisy_repeats, params, profile):
    data = np.load(path)
    report = {}
    for kind, count in (("clean", repeats), ("noisy", noisy_repeats)):
        per_image = {}
        for image_id in GOLDEN_IMAGES:
            key = f"img{image_id}_"
            seconds, cpu_seconds, people, stages = time_decode(
                data[f"{key}{kind}_heatmaps"], data[f"{key}{kind}_pafs"],
                data[f"{key}input_wh"], data[f"{key}orig_wh"], count, params, profile)
            entry = {"ms": round(1000 * seconds, 3), "cpu_ms": round(1000 * cpu_seconds, 3),
                     "people": people}
            if profile:
                entry["stages_ms"] = stages
            per_image[str(image_id)] = entry
        median_ms = statistics.median(v["ms"] for v in per_image.values())
        median_cpu = statistics.median(v["cpu_ms"] for v in per_image.values())
        report[kind] = {"median_ms_per_image": round(median_ms, 3),
                        "median_cpu_ms_per_image": round(median_cpu, 3), "repeats": count,
                        "reference_ms_per_image": REFERENCE_MS[kind],
                        "speedup_vs_reference": round(REFERENCE_MS[kind] / median_ms, 1),
                        "per_image": per_image}
    return report


def benchmark_baseline(path, params, ours):
    """Time the plain loop decoder (the reference's algorithm, the specification in
    src/evaluate/decoding/reference.py) once per clean image and on the first noisy image, and
    the speed-up of ours measured in this run."""
    data = np.load(path)
    report = {}
    for kind, images in (("clean", GOLDEN_IMAGES), ("noisy", GOLDEN_IMAGES[:1])):
        per_image = {}
        for image_id in images:
            key = f"img{image_id}_"
            start = time.perf_counter()
            decode_poses_reference(data[f"{key}{kind}_heatmaps"], data[f"{key}{kind}_pafs"],
                                   tuple(data[f"{key}input_wh"]), tuple(data[f"{key}orig_wh"]),
                                   params)
            loop_ms = 1000 * (time.perf_counter() - start)
            ours_ms = ours[kind]["per_image"][str(image_id)]["ms"]
            per_image[str(image_id)] = {"loop_ms": round(loop_ms, 1), "ours_ms": ours_ms,
                                        "speedup": round(loop_ms / ours_ms, 1)}
        report[kind] = {"median_speedup": round(statistics.median(
            v["speedup"] for v in per_image.values()), 1), "per_image": per_image}
    return report


def benchmark_checkpoint(args, params):
    """Network maps of the sample images from a checkpoint, then decode timings on them."""
    from src.data.coco import image_path, load_coco, read_image
    from src.evaluate.inference import Predictor, mindspore_forward
    from src.model.model_files import open_network
    from src.runtime.context import setup_context

    setup_context(args.device_target)
    network, spec, _ = open_network(args.ckpt)
    forward = mindspore_forward(network)
    predictor = Predictor(forward, img_size=args.inference_img_size, params=params,
                          input_scale=spec.input_scale)
    coco = load_coco(args.ann)
    per_image = {}
    for image_id in coco.image_ids_with_people():
        image = read_image(image_path(coco, image_id, args.images))
        predictor.predict_maps(image)  # compiles the graph for this shape
        start = time.perf_counter()
        heatmaps, pafs, input_size = predictor.predict_maps(image)
        network_s = time.perf_counter() - start
        orig_size = (image.shape[1], image.shape[0])
        seconds, _, people, stages = time_decode(heatmaps, pafs, input_size, orig_size,
                                                 args.repeats, params, args.profile)
        entry = {"decode_ms": round(1000 * seconds, 3), "network_ms": round(1000 * network_s, 1),
                 "people": people}
        if args.profile:
            entry["stages_ms"] = stages
        per_image[str(image_id)] = entry
    return {"checkpoint": str(args.ckpt),
            "median_decode_ms_per_image": round(statistics.median(
                v["decode_ms"] for v in per_image.values()), 3),
            "per_image": per_image}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--golden", default=str(REPO / "tests" / "data" / "golden" / "decode.npz"))
    parser.add_argument("--repeats", type=int, default=20, help="decodes per clean image")
    parser.add_argument("--noisy_repeats", type=int, default=5, help="decodes per noisy image")
    parser.add_argument("--profile", action="store_true", help="median time per stage")
    parser.add_argument("--baseline", action="store_true",
                        help="also time, in this run, the plain per-pair loop decoder of "
                             "src/evaluate/decoding/reference.py (the reference's algorithm; "
                             "every clean image and one noisy image, once: about a minute)")
    parser.add_argument("--ckpt", help="also decode the maps of this checkpoint's network")
    parser.add_argument("--images", default=str(shared_dir() / "data" / "coco_sample"))
    parser.add_argument("--ann", default=str(shared_dir() / "data" / "coco_sample" /
                                             "person_keypoints_sample.json"))
    parser.add_argument("--inference_img_size", type=int, default=368)
    parser.add_argument("--device_target", default="auto")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.noisy_repeats < 1:
        parser.error("--repeats and --noisy_repeats must be >= 1")
    for path, what in ((args.golden, "--golden"),) + (((args.ckpt, "--ckpt"), (args.ann, "--ann"))
                                                     if args.ckpt else ()):
        if not os.path.isfile(path):
            print(f"benchmark_decode.py: error: {path}: file not found ({what})", file=sys.stderr)
            return 1
    params = DecodeParams.from_config(default_config())
    report = {"golden": benchmark_golden(args.golden, args.repeats, args.noisy_repeats, params,
                                         args.profile)}
    if args.baseline:
        report["in_run_baseline"] = benchmark_baseline(args.golden, params, report["golden"])
    if args.ckpt:
        report["checkpoint"] = benchmark_checkpoint(args, params)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
