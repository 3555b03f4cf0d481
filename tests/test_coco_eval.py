"""Tests of src.evaluate.coco_eval, including the oracle round trip: maps rendered from the ground truth
decode back to the ground truth (COCO AP >= 0.9)."""
import json

import numpy as np
import pytest

from src.data.coco import annotations_to_poses, load_coco
from src.data.targets import generate_heatmaps, generate_pafs
from src.data.toy_coco import ToyOptions, make_split
from src.evaluate.coco_metrics import (
    STAT_NAMES,
    EvaluationError,
    evaluate_keypoints,
    format_metrics,
    poses_to_results,
)
from src.evaluate.decoder import decode_poses
from src.evaluate.inference import compute_input_size
from src.runtime.atomic_write import write_json
from src.skeleton import COCO_TO_OURS_ARRAY, NUM_JOINTS
from tests.conftest import default_decode_params


def render_ours(poses, map_h, map_w):
    """Heatmaps and PAFs of ``poses`` (N, 18, 3 input pixels) in this repository's order."""
    return generate_heatmaps(poses, map_h, map_w, 7), generate_pafs(poses, map_h, map_w, 8)


def oracle_results(ann_path, img_size=368, shift=0.05, render=render_ours):
    """Render stride-8 maps from each image's annotated people (``render(poses, map_h, map_w)``
    -> heatmaps, pafs), decode them, return results.

    The joints are moved by ``shift`` input pixels before rendering: a joint exactly between
    two map cells renders a perfectly symmetric blob whose two centre pixels tie, and the
    reference's strict peak test then (faithfully) drops it, which real network maps never do.
    """
    coco = load_coco(ann_path)
    results = []
    for image_id in coco.image_ids_with_people():
        info = coco.images[image_id]
        orig_w, orig_h = int(info["width"]), int(info["height"])
        input_w, input_h = compute_input_size(orig_w, orig_h, img_size)
        people = [a for a in coco.person_annotations(image_id)
                  if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0]
        poses = annotations_to_poses(people).astype(np.float64)
        poses[:, :, 0] *= input_w / orig_w
        poses[:, :, 1] *= input_h / orig_h
        poses[:, :, :2] += shift
        heatmaps, pafs = render(poses, input_h // 8, input_w // 8)
        found, scores = decode_poses(heatmaps, pafs, (input_w, input_h), (orig_w, orig_h),
                                     default_decode_params())
        results += poses_to_results(image_id, found, scores)
    return results


def test_results_are_in_coco_order_and_rounded():
    poses = np.zeros((2, NUM_JOINTS, 3))
    poses[0, :, 0] = np.arange(NUM_JOINTS) + 0.4
    poses[0, :, 1] = 100 + np.arange(NUM_JOINTS)
    poses[0, :, 2] = 2
    poses[0, 3] = 0  # a missing joint (right elbow)
    results = poses_to_results(42, poses, [3.5, 1.0])
    assert len(results) == 2
    first = results[0]
    assert first["image_id"] == 42 and first["category_id"] == 1 and first["score"] == 3.5
    kps = np.array(first["keypoints"]).reshape(17, 3)
    np.testing.assert_array_equal(kps[:, 0], np.where(COCO_TO_OURS_ARRAY == 3, 0,
                                                      COCO_TO_OURS_ARRAY))
    assert kps[8].tolist() == [0, 0, 0]  # COCO right elbow
    assert kps[0].tolist() == [0, 100, 2]  # nose
    json.dumps(results)  # plain Python types only


def test_no_detections_gives_zero_metrics(capsys, coco_sample_dir):
    metrics = evaluate_keypoints(coco_sample_dir / "person_keypoints_sample.json", [])
    assert metrics == {name: 0.0 for name in STAT_NAMES}
    assert "no detections" in capsys.readouterr().out


def test_unknown_image_is_a_clear_error(coco_sample_dir):
    results = poses_to_results(123456789, np.zeros((1, NUM_JOINTS, 3)), [1.0])
    with pytest.raises(EvaluationError, match="not in the annotations"):
        evaluate_keypoints(coco_sample_dir / "person_keypoints_sample.json", results)


def test_ground_truth_as_results_scores_one(coco_sample_dir, tmp_path):
    ann = coco_sample_dir / "person_keypoints_sample.json"
    data = json.loads(ann.read_text())
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
                "score": 1.0} for a in data["annotations"] if a["num_keypoints"] > 0]
    path = write_json(results, tmp_path / "sub" / "results.json")
    metrics = evaluate_keypoints(ann, path)
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AR"] == pytest.approx(1.0)
    table = format_metrics(metrics)
    assert "AP(M)" in table and "1.0000" in table


def test_subset_of_images(coco_sample_dir):
    ann = coco_sample_dir / "person_keypoints_sample.json"
    data = json.loads(ann.read_text())
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
                "score": 1.0} for a in data["annotations"]
               if a["num_keypoints"] > 0 and a["image_id"] == 785]
    assert evaluate_keypoints(ann, results)["AR"] < 0.5
    assert evaluate_keypoints(ann, results, image_ids=[785])["AP"] == pytest.approx(1.0)


def test_oracle_round_trip_coco_sample(coco_sample_dir):
    ann = coco_sample_dir / "person_keypoints_sample.json"
    results = oracle_results(ann)
    metrics = evaluate_keypoints(ann, results)
    assert metrics["AP"] >= 0.9, metrics


def test_oracle_round_trip_toy_val(tmp_path):
    make_split(str(tmp_path), "val", 24, seed=0)  # the start of the default toy val split
    ann = tmp_path / "annotations" / "person_keypoints_val2017.json"
    results = oracle_results(ann)
    metrics = evaluate_keypoints(ann, results)
    assert metrics["AP"] >= 0.9, metrics


def test_no_people_gives_no_records():
    from src.evaluate.coco_eval import poses_to_results
    assert poses_to_results(7, np.zeros((0, 18, 3)), np.zeros(0)) == []
    assert poses_to_results(7, np.empty((0, 18, 3)), []) == []


# ----------------------------------------------------------------------------------------------
# images read as stored; a size that contradicts the annotation is skipped and counted (issue 21, 8)

class _ShapeRecorder:
    """A predictor that finds nobody and records the shapes of the images it was given."""

    def __init__(self):
        self.shapes = []
        self.forward = lambda batch: None

    def __call__(self, image):
        self.shapes.append(image.shape)
        return np.zeros((0, NUM_JOINTS, 3)), np.zeros(0)


def test_eval_reads_exif_images_as_stored_and_skips_other_sizes(coco_sample_dir, tmp_path):
    import shutil

    import cv2

    from src.data.coco import ImageReadError, ImageSizeError
    from src.evaluate.coco_eval import evaluate_shard
    from src.evaluate.input_skips import InputSkips
    from tests.exif_files import with_exif_orientation
    images = tmp_path / "images"
    shutil.copytree(coco_sample_dir, images)
    (images / "000000000785.jpg").chmod(0o644)
    (images / "000000000785.jpg").write_bytes(
        with_exif_orientation((coco_sample_dir / "000000000785.jpg").read_bytes()))
    turned = cv2.rotate(cv2.imread(str(coco_sample_dir / "000000040083.jpg")), cv2.ROTATE_90_CLOCKWISE)
    (images / "000000040083.jpg").chmod(0o644)
    cv2.imwrite(str(images / "000000040083.jpg"), turned)
    coco = load_coco(coco_sample_dir / "person_keypoints_sample.json")
    lines, predictor = [], _ShapeRecorder()
    ids = coco.image_ids_with_people()
    out = evaluate_shard(predictor, coco, ids, str(images), progress=False)
    assert ids[0] == 785 and predictor.shapes[0] == (425, 640, 3), "785 read as stored, as annotated"
    assert out["images"] == len(ids) - 1 and out["skip_reasons"] == {"not of the annotated size": 1}
    assert len(out["skipped"]) == 1 and out["skipped"][0].startswith(
        f"{images / '000000040083.jpg'}: image is 333x500 pixels but its annotation says 500x333")
    skips = InputSkips(log=lines.append)
    skips.skip(ImageReadError("a.jpg: cannot decode image"))
    assert skips.summary() == ", 1 skipped (unreadable)"
    skips.skip(ImageSizeError("b.jpg: image is 1x2 pixels but ..."))
    skips.skip(ImageSizeError("c.jpg: image is 1x2 pixels but ..."))
    assert skips.summary() == ", 3 skipped (2 not of the annotated size, 1 unreadable)"
    assert lines == ["warning: skipped: a.jpg: cannot decode image",
                     "warning: skipped: b.jpg: image is 1x2 pixels but ...",
                     "warning: skipped: c.jpg: image is 1x2 pixels but ..."]


# ----------------------------------------------------------------------------------------------
# ground truth checked up front; a full disk; never new results beside old metrics (issue 21, 10)

@pytest.mark.parametrize("field", ["iscrowd", "area", "bbox", "num_keypoints", "keypoints", "categories"])
def test_ground_truth_lacking_what_cocoeval_needs_is_refused_before_any_work(tmp_path, field):
    from src.config import default_config
    from src.data.coco import AnnotationError
    from src.evaluate.coco_eval import run_evaluation
    ann = tmp_path / "gt" / "annotations" / "person_keypoints_val2017.json"
    make_split(tmp_path / "gt", "val", num_images=2, seed=1, options=ToyOptions(size=64))
    data = json.loads(ann.read_text())
    if field == "categories":
        del data["categories"]
    else:
        del data["annotations"][-1][field]
    ann.write_text(json.dumps(data))
    out = tmp_path / "out"
    out.mkdir()
    (out / "eval_metrics.json").write_text("old")
    cfg = default_config(ann=str(ann), imgpath_val=str(tmp_path / "gt" / "val2017"),
                         model_path=str(tmp_path / "never_read.ckpt"), output_img_path=str(out))
    with pytest.raises(AnnotationError) as info:
        run_evaluation(cfg)          # before the (missing) checkpoint is even opened
    message = str(info.value)
    assert message.startswith(f"{ann}: ") and f"'{field}'" in message and "\n" not in message
    assert sorted(p.name for p in out.iterdir()) == ["eval_metrics.json"], "nothing written"


def test_keypoints_written_as_text_are_refused_at_load(tmp_path):
    from src.data.coco import AnnotationError
    ann = tmp_path / "gt" / "annotations" / "person_keypoints_val2017.json"
    make_split(tmp_path / "gt", "val", num_images=1, seed=1, options=ToyOptions(size=64))
    data = json.loads(ann.read_text())
    data["annotations"][0]["keypoints"] = [str(v) for v in data["annotations"][0]["keypoints"]]
    ann.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match="'keypoints' holds a value that is not a finite number"):
        load_coco(ann)


def test_pycocotools_failures_are_one_line_evaluation_errors(tmp_path):
    ann = tmp_path / "gt" / "annotations" / "person_keypoints_val2017.json"
    make_split(tmp_path / "gt", "val", num_images=1, seed=1, options=ToyOptions(size=64))
    data = json.loads(ann.read_text())
    del data["annotations"][0]["area"]
    from src.data.coco import index_coco
    from src.evaluate.coco_eval import ground_truth
    results = [{"image_id": data["images"][0]["id"], "category_id": 1, "keypoints": [5, 5, 2] * 17,
                "score": 0.5}]
    with pytest.raises(EvaluationError, match=r"^pycocotools cannot evaluate these results against "
                                              r"the ground truth \(KeyError: 'area'\)$"):
        evaluate_keypoints(ground_truth(index_coco(data)), results)


def test_results_never_beside_old_metrics_and_a_full_disk_is_one_line(tmp_path):
    from src.evaluate.coco_eval import METRICS_FILE, RESULTS_FILE, write_evaluation
    from src.runtime.atomic_write import WriteError
    from tests.mounts import fill, tiny_disk
    with tiny_disk(tmp_path / "disk", size="64k") as disk:
        (disk / RESULTS_FILE).write_text("[]")
        (disk / METRICS_FILE).write_text('{"metrics": "old"}')
        filler = fill(disk)
        results = [{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 2] * 17, "score": 0.5}] * 100
        with pytest.raises(WriteError) as info:
            write_evaluation(str(disk), results, {"metrics": "new"})
        message = str(info.value)
        assert message.startswith(f"{disk / RESULTS_FILE}: no space left on device while writing (")
        assert "\n" not in message
        names = sorted(p.name for p in disk.iterdir())
        assert names == [RESULTS_FILE, "filler"], f"old metrics removed, no temporaries: {names}"
        assert (disk / RESULTS_FILE).read_text() == "[]", "the old results are intact"
        filler.unlink()
        write_evaluation(str(disk), results, {"metrics": "new"})
        assert json.loads((disk / METRICS_FILE).read_text()) == {"metrics": "new"}
        assert len(json.loads((disk / RESULTS_FILE).read_text())) == 100
