"""``--backend onnx``: export.py's ONNX files take any batch and size, carry the network record,
and give eval.py / scripts/infer.py the same maps and results as the MindSpore backend."""
import json
import subprocess
import sys

import numpy as np
import pytest

from src.evaluate.coco_eval import RESULTS_FILE
from tests.conftest import REPO_ROOT, default_decode_params
from tests.tiny_nets import seed_weights

TINY = {"width_mult": 0.125, "num_stages": 2}
#: Export tolerance (tests/test_export.py): onnxruntime within 1e-4 of MindSpore.
MAP_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def models(ms_cpu, tmp_path_factory):
    """A tiny random network as a checkpoint (with its record) and as export.py's ONNX file.

    The weights come from a seeded numpy generator, so the network (and whether its maps give
    people) does not depend on which tests ran before.
    """

    from src.model.checkpoint import save_checkpoint_atomic
    from src.model.export import export_network
    from src.model.network import OpenPoseNet
    from src.model.network_spec import NetworkSpec
    out = tmp_path_factory.mktemp("onnx")
    network = seed_weights(OpenPoseNet(**TINY), seed=0)
    ckpt = save_checkpoint_atomic(network, out / "tiny.ckpt",
                                  append_dict=NetworkSpec(**TINY).to_record())
    onnx_path, _, _ = export_network(ckpt, out / "tiny", "ONNX", batch_size=1, insize=64, stages="final")
    return {"ckpt": ckpt, "onnx": onnx_path, "dir": out}


def _config(**values):
    from src.config import parse_config
    args = []
    for key, value in values.items():
        args += [f"--{key}", str(value)]
    return parse_config(args)


@pytest.mark.usefixtures("onnx_any_size")
def test_export_records_the_network_and_symbolic_sizes(models):
    from src.model.onnx_model import onnx_forward
    _, spec, session = onnx_forward(models["onnx"])
    assert (spec.width_mult, spec.num_stages, spec.input_scale) == (0.125, 2, 255.0)
    assert session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    assert [o.shape for o in session.get_outputs()] == [["batch", 38, "map_height", "map_width"],
                                                       ["batch", 19, "map_height", "map_width"]]


@pytest.mark.usefixtures("onnx_any_size")
def test_maps_equal_mindspore_at_any_size(models, coco_sample_dir):
    """Predictor maps (two sizes, flip = batch of 2) from both backends, to the export tolerance."""
    from src.data.coco import read_image
    from src.evaluate.backends import open_forward
    from src.evaluate.inference import Predictor
    maps = {}
    for backend in ("mindspore", "onnx"):
        path = models["onnx" if backend == "onnx" else "ckpt"]
        forward, spec, _ = open_forward(_config(backend=backend, model_path=path))
        predictor = Predictor(forward, params=default_decode_params(), img_size=64, flip=True,
                              input_scale=spec.input_scale)
        maps[backend] = [predictor.predict_maps(read_image(coco_sample_dir / name))[:2]
                         for name in ("000000000785.jpg", "000000040083.jpg")]
    for ms_maps, onnx_maps in zip(maps["mindspore"], maps["onnx"]):
        for ms_map, onnx_map in zip(ms_maps, onnx_maps):
            assert ms_map.shape == onnx_map.shape
            assert np.abs(ms_map - onnx_map).max() <= MAP_TOLERANCE * max(1.0, np.abs(ms_map).max())


@pytest.mark.usefixtures("onnx_any_size")
def test_eval_results_equal_mindspore(models, coco_sample_dir):
    """The evaluation loop on both backends: the same detections (a low peak threshold makes
    the random network detect people) and the same metrics."""
    from src.evaluate.coco_eval import run_evaluation
    results, metrics = {}, {}
    for backend in ("mindspore", "onnx"):
        out = models["dir"] / f"eval_{backend}"
        path = models["onnx" if backend == "onnx" else "ckpt"]
        lines = []
        metrics[backend] = run_evaluation(
            _config(backend=backend, model_path=path, imgpath_val=coco_sample_dir,
                    ann=coco_sample_dir / "person_keypoints_sample.json", output_img_path=out,
                    inference_img_size=64, eva_num=3, heatmap_peak_thresh=0.0), log=lines.append)
        results[backend] = json.loads((out / RESULTS_FILE).read_text())
        assert any("onnxruntime" in line for line in lines) == (backend == "onnx")
    assert len(results["onnx"]) == len(results["mindspore"]) > 0
    for a, b in zip(results["mindspore"], results["onnx"]):
        assert a["image_id"] == b["image_id"]
        assert np.abs(np.subtract(a["keypoints"], b["keypoints"])).max() <= 1
        assert a["score"] == pytest.approx(b["score"], rel=1e-3)
    for name, value in metrics["mindspore"].items():
        assert metrics["onnx"][name] == pytest.approx(value, abs=1e-3)


@pytest.mark.usefixtures("onnx_any_size")
def test_infer_py_runs_the_onnx_file(models, coco_sample_dir, tmp_path):
    proc = subprocess.run([sys.executable, "scripts/infer.py", "--backend", "onnx", "--model_path",
                           models["onnx"], "--input", str(coco_sample_dir / "000000000785.jpg"),
                           "--output", str(tmp_path), "--inference_img_size", "64",
                           "--device_target", "CPU"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "onnxruntime" in proc.stdout and "input BGR / 255 - 0.5" in proc.stdout
    assert (tmp_path / "people.json").is_file()


def test_a_fixed_size_file_names_the_problem(models, tmp_path):
    """An ONNX file exported without dynamic sizes (older export.py) runs only at its size."""
    import mindspore as ms

    from src.compat import export_onnx
    from src.model.model_files import open_network
    from src.model.network import FinalStage
    from src.model.onnx_model import OnnxModelError, finalize_onnx, onnx_forward
    network, spec, _ = open_network(models["ckpt"])
    path = str(tmp_path / "fixed.onnx")
    path = export_onnx(FinalStage(network), ms.Tensor(np.zeros((1, 3, 64, 64), np.float32)),
                       path, input_names=["image"], output_names=["pafs", "heatmaps"])
    with pytest.raises(OnnxModelError, match="no OpenPose network record"):
        onnx_forward(path)
    finalize_onnx(path, spec)
    forward, _, _ = onnx_forward(path)
    assert forward(np.zeros((1, 3, 64, 64), np.float32))[0].shape == (1, 38, 8, 8)
    with pytest.raises(OnnxModelError, match="fixed input"):
        forward(np.zeros((1, 3, 64, 72), np.float32))


def test_not_an_onnx_file_is_a_one_line_error(models, coco_sample_dir, tmp_path, capsys):
    import eval as eval_script
    status = eval_script.main(["--backend", "onnx", "--model_path", models["ckpt"],
                               "--imgpath_val", str(coco_sample_dir),
                               "--ann", str(coco_sample_dir / "person_keypoints_sample.json"),
                               "--output_img_path", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1, err
    assert err[0].startswith("eval.py: error:") and "not a readable ONNX model" in err[0], err


def test_contradicting_flag_is_refused(models):
    from src.evaluate.backends import open_forward
    from src.model.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="num_stages"):
        open_forward(_config(backend="onnx", model_path=models["onnx"], num_stages=6))


def test_exported_file_passes_the_onnx_checker_with_symbolic_outputs(models, tmp_path):
    """export.py's file, read back with the onnx package: valid, outputs (batch, C, h, w)
    symbolic, the network record in its metadata; a truncated file is a one-line error."""
    import onnx

    from src.model.network_spec import NetworkSpec
    from src.model.onnx_model import OnnxModelError, finalize_onnx
    model = onnx.load(models["onnx"])
    onnx.checker.check_model(model)
    shapes = {output.name: [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim]
              for output in model.graph.output}
    if set(shapes) == {"pafs", "heatmaps"}:      # MindSpore 2.0 numbers its outputs instead
        assert shapes == {"pafs": ["batch", 38, "map_height", "map_width"],
                          "heatmaps": ["batch", 19, "map_height", "map_width"]}, shapes
    record = {entry.key: entry.value for entry in model.metadata_props}
    assert record == {key: repr(value) for key, value in NetworkSpec(**TINY).to_record().items()}
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(open(models["onnx"], "rb").read()[:1000])
    with pytest.raises(OnnxModelError, match="truncated.onnx: not a readable ONNX model"):
        finalize_onnx(truncated, NetworkSpec(**TINY))


def test_non_finite_onnx_weights_are_refused(models, tmp_path):
    """A NaN in an ONNX file's weights is refused like one in a checkpoint (naming the tensor)."""
    import onnx
    from onnx import numpy_helper

    from src.model.checkpoint import CheckpointError
    from src.model.onnx_model import onnx_forward
    model = onnx.load(str(models["onnx"]))
    first = model.graph.initializer[0]
    values = numpy_helper.to_array(first).copy()
    values.flat[0] = np.nan
    first.CopyFrom(numpy_helper.from_array(values, first.name))
    path = tmp_path / "nan.onnx"
    onnx.save(model, str(path))
    with pytest.raises(CheckpointError, match=f"parameter '{first.name}' holds non-finite values "
                                              r"\(1 NaN, 0 infinite"):
        onnx_forward(path)
