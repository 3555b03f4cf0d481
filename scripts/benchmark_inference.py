"""Time one forward of CMU's COCO network on three engines in one run and print JSON.

    python scripts/benchmark_inference.py [--size 368] [--repeats 3] [--warmup 1] [--seed 0]
        [--workdir DIR] [--out result.json]

No weights are needed: it writes CMU's deploy prototxt and a caffemodel of random weights
(src/model/cmu_synthetic.py), converts it with the repository's converter, exports that checkpoint
to ONNX with export.py's code, and runs the same weights on the same ``size x size`` image
through

* MindSpore (graph mode, CPU): the network eval.py runs;
* OpenCV DNN: ``cv2.dnn.readNetFromCaffe`` on the caffemodel;
* onnxruntime: the exported ONNX file (``--backend onnx`` of eval.py / scripts/infer.py).

Reported per engine: the median wall-clock milliseconds per image over ``--repeats`` timed
forwards (batch 1, after ``--warmup`` untimed ones; MindSpore compiles before), the minimum, the
median CPU milliseconds of the process (all its threads; less sensitive to other load, but
counting threads that spin while they wait), and the largest difference of its maps from
MindSpore's relative to their magnitude. The
engines take turns, repeat by repeat, so that other load on the machine falls on all of them.
Each engine uses its default threads (all cores). The network costs ~272 GFLOP per 368 x 368
forward.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _repo_path  # noqa: F401  (puts the repository root on sys.path)
import numpy as np


def time_forwards(forwards, batch, repeats, warmup):
    """Milliseconds of each ``forwards[name](batch)``, the engines taking turns (so that a change
    in the machine's other load falls on all of them), and each engine's last output.

    Returns:
        ``({name: [(wall ms, process CPU ms), ...]}, {name: output})``.
    """
    times, outputs = {name: [] for name in forwards}, {}
    for repeat in range(warmup + repeats):
        for name, forward in forwards.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            outputs[name] = forward(batch)
            if repeat >= warmup:
                times[name].append((1000 * (time.perf_counter() - start),
                                    1000 * (time.process_time() - cpu_start)))
    return times, outputs


def relative_difference(maps, reference):
    """max |maps - reference| / max |reference| over PAFs and heatmaps."""
    return max(float(np.abs(np.asarray(a) - b).max() / np.abs(b).max())
               for a, b in zip(maps, reference))


def run(size, repeats, warmup, seed, workdir):
    """Build the three engines in ``workdir`` and time them; returns the result dict."""
    import cv2
    import onnxruntime

    from src import compat
    from src.evaluate.inference import mindspore_forward, preprocess
    from src.model.caffe_import import convert_caffemodel
    from src.model.cmu_synthetic import run_opencv, write_cmu_model
    from src.model.export import export_network
    from src.model.model_files import open_network
    from src.model.onnx_model import onnx_forward
    from src.runtime.context import setup_context

    setup_context("CPU", mode="graph", seed=seed)
    prototxt, caffemodel, _ = write_cmu_model(workdir, size, size, seed=seed)
    ckpt = str(Path(workdir) / "cmu_converted.ckpt")
    convert_caffemodel(caffemodel, ckpt)
    onnx_path, _, _ = export_network(ckpt, Path(workdir) / "cmu", "ONNX", batch_size=1, insize=size,
                                     stages="final")
    image = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    network, spec, _ = open_network(ckpt)
    batch = preprocess(image, (size, size), spec.input_scale)[None]

    engines = {}
    ms_forward = mindspore_forward(network)
    start = time.perf_counter()
    ms_forward(batch)
    engines["mindspore"] = {"first_call_ms": round(1000 * (time.perf_counter() - start), 1)}
    ort_forward, _, session = onnx_forward(onnx_path)
    cv_net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
    forwards = {"mindspore": ms_forward, "opencv_dnn": lambda _: run_opencv(cv_net, image),
                "onnxruntime": ort_forward}
    load_before = os.getloadavg()[0]
    times, outputs = time_forwards(forwards, batch, repeats, warmup)
    for name in forwards:
        wall, cpu = zip(*times[name])
        engines.setdefault(name, {}).update({"ms_per_image": round(statistics.median(wall), 1),
                                             "min_ms": round(min(wall), 1),
                                             "cpu_ms_per_image": round(statistics.median(cpu), 1)})
        engines[name]["max_rel_diff_vs_mindspore"] = float(
            f"{relative_difference(outputs[name], outputs['mindspore']):.2e}")
    engines["mindspore"]["version"] = compat.mindspore_version_text()
    engines["opencv_dnn"].update(version=cv2.__version__, threads=cv2.getNumThreads())
    engines["onnxruntime"].update(version=onnxruntime.__version__,
                                  providers=session.get_providers())
    fastest = min(forwards, key=lambda n: engines[n]["ms_per_image"])
    return {"input": f"1x3x{size}x{size}", "network": "CMU COCO body, 6 stages (random weights)",
            "repeats": repeats, "warmup": warmup, "cpu_count": os.cpu_count(),
            # Other work on the machine slows every engine: 1-minute load before and after.
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "engines": engines,
            "fastest": fastest}


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=368,
                        help="input height and width (a multiple of 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per engine")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forwards per engine first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="",
                        help="keep the model files here (default: a temporary folder)")
    parser.add_argument("--out", default="", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.size <= 0 or args.size % 8 or args.repeats <= 0 or args.warmup < 1:
        parser.error("--size must be a positive multiple of 8, --repeats and --warmup at least 1")
    if args.workdir:
        result = run(args.size, args.repeats, args.warmup, args.seed, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="openpose_bench_") as workdir:
            result = run(args.size, args.repeats, args.warmup, args.seed, workdir)
    print(json.dumps(result, indent=2))
    if args.out:
        from src.runtime.atomic_write import write_json
        write_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
