"""The converted CMU checkpoint through eval.py, scripts/infer.py and export.py with no network or
normalisation flags: the record makes them build CMU's network and feed it BGR / 256 - 0.5."""
import json
import subprocess
import sys

import numpy as np
import pytest

from src.evaluate.coco_eval import RESULTS_FILE, poses_to_results
from tests.conftest import REPO_ROOT, default_decode_params

SMALL = ["--inference_img_size", "64", "--device_target", "CPU"]


def _run(script, *args):
    proc = subprocess.run([sys.executable, script, *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_eval_py_uses_the_recorded_normalisation(cmu_model, coco_sample_dir, tmp_path, ms_cpu):
    """eval.py's detections equal an in-process Predictor with input_scale 256, not 255 (a zero
    peak threshold makes the random network's maps produce people)."""
    from src.data.coco import image_path, load_coco, read_image
    from src.evaluate.coco_eval import evaluation_image_ids
    from src.evaluate.inference import Predictor, mindspore_forward
    from src.model.model_files import open_network
    ann = coco_sample_dir / "person_keypoints_sample.json"
    stdout = _run("eval.py", "--model_path", cmu_model.ckpt, "--imgpath_val", str(coco_sample_dir),
                  "--ann", str(ann), "--output_img_path", str(tmp_path), "--eva_num", "2",
                  "--heatmap_peak_thresh", "0.0", *SMALL)
    assert "loaded 184 parameters, missing 0" in stdout
    assert "6 stages, width 1, VGG without BatchNorm, input BGR / 256 - 0.5" in stdout
    written = json.loads((tmp_path / RESULTS_FILE).read_text())
    assert written

    network, _, _ = open_network(cmu_model.ckpt)
    forward = mindspore_forward(network)
    coco = load_coco(ann)
    expected = {}
    for scale in (256.0, 255.0):
        params = default_decode_params().replace(heatmap_peak_thresh=0.0)
        predictor = Predictor(forward, img_size=64, params=params, input_scale=scale)
        records = []
        for image_id in evaluation_image_ids(coco, 2):
            poses, scores = predictor(read_image(image_path(coco, image_id, coco_sample_dir)))
            records += poses_to_results(image_id, poses, scores)
        expected[scale] = sorted(records, key=lambda r: (r["image_id"], -r["score"]))
    assert written == expected[256.0]
    assert written != expected[255.0]


def test_infer_py_on_an_image(cmu_model, coco_sample_dir, tmp_path):
    stdout = _run("scripts/infer.py", "--model_path", cmu_model.ckpt, "--input",
                  str(coco_sample_dir / "000000000785.jpg"), "--output", str(tmp_path), *SMALL)
    assert "input BGR / 256 - 0.5" in stdout
    assert (tmp_path / "people.json").is_file() and (tmp_path / "000000000785_jpg.png").is_file()


@pytest.mark.usefixtures("onnx_any_size")
def test_export_onnx_equals_opencv(cmu_model, tmp_path):
    """export.py on the converted checkpoint; onnxruntime on any size == OpenCV DNN on the
    caffemodel, and the ONNX file records /256."""
    from src.evaluate.inference import preprocess
    from src.model.cmu_synthetic import opencv_forward
    from src.model.onnx_model import onnx_forward
    stdout = _run("export.py", "--ckpt_file", cmu_model.ckpt, "--file_name", str(tmp_path / "cmu"),
                  "--file_format", "ONNX", "--insize", "64", "--device_target", "CPU")
    assert "input BGR / 256 - 0.5" in stdout
    forward, spec, _ = onnx_forward(tmp_path / "cmu.onnx")
    assert spec.input_scale == 256.0 and spec.num_stages == 6
    image = np.random.default_rng(5).integers(0, 256, (72, 96, 3), dtype=np.uint8)
    pafs, heat = forward(preprocess(image, (96, 72), spec.input_scale)[None])
    cv_pafs, cv_heat = opencv_forward(cmu_model.prototxt, cmu_model.caffemodel, image)
    for ours, theirs in ((pafs, cv_pafs), (heat, cv_heat)):
        assert np.abs(ours - theirs).max() < 1e-4 * np.abs(theirs).max()
