"""Inference on an image, a folder and a video with a stand-in predictor, and the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.evaluate.media import MediaError, classify_input, run_media_inference
from src.skeleton import COCO_TO_OURS
from tests.conftest import default_decode_params

REPO = Path(__file__).resolve().parents[1]


class FixedPredictor:
    """Returns one person whose joints sit at fixed fractions of the frame."""

    def __init__(self):
        self.calls = 0

    def __call__(self, image):
        poses, scores, _ = self.people(image)
        return poses, scores

    def people(self, image):
        self.calls += 1
        height, width = image.shape[:2]
        pose = np.zeros((1, 18, 3))
        pose[0, :, 0] = np.linspace(0.2, 0.8, 18) * width
        pose[0, :, 1] = np.linspace(0.1, 0.9, 18) * height
        pose[0, :, 2] = 2
        return pose, np.array([0.9]), np.linspace(0.3, 0.9, 18)[None]


class CrowdPredictor:
    """Three people: strong and whole (score 12, 17 keypoints), weak (score 1.5, 17 keypoints),
    and partial (score 5, 4 keypoints: our joints 0-3, i.e. nose, neck, right shoulder and
    elbow, of which the neck is not a COCO keypoint)."""

    def people(self, image):
        height, width = image.shape[:2]
        poses = np.zeros((3, 18, 3))
        confidences = np.zeros((3, 18))
        for i in range(3):
            poses[i, :, 0] = np.linspace(0.1, 0.9, 18) * width
            poses[i, :, 1] = (0.2 + 0.3 * i) * height
            poses[i, :, 2] = 2
            confidences[i] = np.linspace(0.5, 0.95, 18)
        poses[2, 4:] = 0
        confidences[2, 4:] = 0
        return poses, np.array([12.0, 1.5, 5.0]), confidences


def _image(path, seed=0):
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return path


def test_image_folder_and_video(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        _image(folder / f"im{i}.jpg", i)
    predictor = FixedPredictor()
    result = run_media_inference(predictor, folder, tmp_path / "out", log=lambda _: None)
    data = json.loads(Path(result).read_text())
    assert len(data["results"]) == 3 and predictor.calls == 3
    person = data["results"][0]["people"][0]
    assert len(person["keypoints"]) == 51 and person["score"] == pytest.approx(0.9)
    # COCO order: keypoint 0 is the nose, our joint 0; the third value is its confidence
    assert person["keypoints"][0] == pytest.approx(0.2 * 64, abs=0.01)
    assert person["keypoints"][2] == pytest.approx(0.3)
    assert person["num_keypoints"] == 17
    assert data["keypoint_names"][0] == "nose" and len(data["keypoint_names"]) == 17
    assert "confidence" in data["keypoint_format"] and "sum" in data["score"]
    assert data["filters"] == {"min_person_score": 0.0, "min_joints": 0}
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["im0_jpg.png", "im1_jpg.png", "im2_jpg.png"]

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    result = run_media_inference(FixedPredictor(), video, tmp_path / "vout", log=lambda _: None)
    frames = json.loads(Path(result).read_text())["results"]
    assert [f["frame"] for f in frames] == [0, 1, 2, 3, 4]
    annotated = cv2.VideoCapture(str(tmp_path / "vout" / "clip_pose.mp4"))
    assert annotated.isOpened() and int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_bad_inputs(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        classify_input(tmp_path / "missing.jpg")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MediaError, match="unsupported file type"):
        classify_input(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="no images"):
        run_media_inference(FixedPredictor(), tmp_path / "empty", tmp_path / "o", log=lambda _: None)


def test_infer_cli_on_image(ms_cpu, tmp_path):
    from src.model.checkpoint import save_checkpoint_atomic
    from src.model.network import OpenPoseNet
    ckpt = save_checkpoint_atomic(OpenPoseNet(width_mult=0.125, num_stages=1), tmp_path / "t.ckpt")
    image = _image(tmp_path / "person.jpg")
    args = [sys.executable, "scripts/infer.py", "--device_target", "CPU", "--model_path", str(ckpt),
            "--input", str(image), "--output", str(tmp_path / "out"), "--inference_img_size", "64",
            "--width_mult", "0.125", "--num_stages", "1", "--flip", "true"]
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "person_jpg.png").is_file()
    data = json.loads((tmp_path / "out" / "people.json").read_text())
    assert data["results"][0]["file"] == str(image)
    assert data["filters"] == {"min_person_score": 0.0, "min_joints": 0}
    for person in data["results"][0]["people"]:   # a random network may find no one
        kps = np.array(person["keypoints"]).reshape(17, 3)
        assert ((kps[:, 2] > 0) | (kps == 0).all(axis=1)).all()
    bad = subprocess.run(args[:-2] + ["--input", str(tmp_path / "nope.jpg")], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "nope.jpg: no such file" in bad.stderr


def _drawn_people(monkeypatch):
    """Record how many people each drawing gets."""
    from src.evaluate import media
    counts = []
    real = media.draw_poses

    def counting(image, poses, **kwargs):
        counts.append(len(poses))
        return real(image, poses, **kwargs)
    monkeypatch.setattr(media, "draw_poses", counting)
    return counts


@pytest.mark.parametrize("min_score, min_joints, kept_scores", [
    (0.0, 0, [12.0, 1.5, 5.0]),      # the defaults keep everyone the decoder returned
    (2.0, 0, [12.0, 5.0]),           # the weak person goes
    (0.0, 4, [12.0, 1.5]),           # the partial person has 3 COCO keypoints (no neck in COCO)
    (0.0, 3, [12.0, 1.5, 5.0]),
    (2.0, 4, [12.0]),
    (20.0, 0, []),
])
def test_filters_drop_people_from_json_and_drawings(tmp_path, monkeypatch, min_score, min_joints,
                                                    kept_scores):
    drawn = _drawn_people(monkeypatch)
    image = _image(tmp_path / "crowd.jpg")
    lines = []
    result = run_media_inference(CrowdPredictor(), image, tmp_path / "out", log=lines.append,
                                 min_person_score=min_score, min_joints=min_joints)
    data = json.loads(Path(result).read_text())
    people = data["results"][0]["people"]
    assert [p["score"] for p in people] == kept_scores
    assert drawn == [len(kept_scores)], "the drawing shows exactly the people written"
    assert data["filters"] == {"min_person_score": min_score, "min_joints": min_joints}
    dropped = 3 - len(kept_scores)
    assert any((f"({dropped} more below" in line) == bool(dropped) for line in lines), lines
    partial = [p for p in people if p["score"] == 5.0]
    if partial:
        kps = np.array(partial[0]["keypoints"]).reshape(17, 3)
        assert partial[0]["num_keypoints"] == 3
        present = np.array([int(j) < 4 for j in COCO_TO_OURS])
        assert present.sum() == 3
        assert (kps[~present] == 0).all(), "missing keypoints are exactly 0, 0, 0"
        assert (kps[present, 2] > 0).all()


def test_video_json_has_confidences_and_filters(tmp_path, monkeypatch):
    drawn = _drawn_people(monkeypatch)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    result = run_media_inference(CrowdPredictor(), video, tmp_path / "out", log=lambda _: None,
                                 min_person_score=2.0)
    frames = json.loads(Path(result).read_text())["results"]
    assert [len(f["people"]) for f in frames] == [2, 2, 2] and drawn == [2, 2, 2]
    conf = np.array(frames[0]["people"][0]["keypoints"]).reshape(17, 3)[:, 2]
    assert conf.min() > 0 and len(set(conf.tolist())) > 10, "confidences vary across joints"


def test_bad_filter_values_are_one_line_config_errors(tmp_path):
    for flag, value in (("--min_person_score", "-1"), ("--min_joints", "18")):
        proc = subprocess.run([sys.executable, "scripts/infer.py", "--model_path", "x.ckpt",
                               "--input", "y.jpg", flag, value], cwd=REPO, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 2 and flag.lstrip("-") in proc.stderr, proc.stderr[-500:]


def _oracle_predictor(coco, image_id, amplitudes):
    """A Predictor whose network returns maps rendered from the annotated people of one COCO
    image, joint j's heatmap scaled by ``amplitudes[j]`` (so confidences differ by joint)."""
    from src.data.coco import annotations_to_poses
    from src.data.targets import generate_heatmaps, generate_pafs
    from src.evaluate.inference import Predictor
    info = coco.images[image_id]
    orig_w, orig_h = int(info["width"]), int(info["height"])
    people = [a for a in coco.person_annotations(image_id)
              if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0]
    gt = annotations_to_poses(people).astype(np.float64)

    def forward(batch):
        input_h, input_w = batch.shape[2:]
        poses = gt.copy()
        poses[:, :, 0] *= input_w / orig_w
        poses[:, :, 1] *= input_h / orig_h
        poses[:, :, :2] += 0.05  # off the exact cell centres (see tests/test_coco_eval.py)
        heatmaps = generate_heatmaps(poses, input_h // 8, input_w // 8, 7)
        heatmaps[:18] *= amplitudes[:, None, None]
        pafs = generate_pafs(poses, input_h // 8, input_w // 8, 8)
        return pafs[None], heatmaps[None]
    return Predictor(forward, params=default_decode_params(), img_size=368), gt


def test_confidences_on_the_coco_sample(coco_sample_dir, tmp_path):
    from src.data.coco import load_coco
    coco = load_coco(coco_sample_dir / "person_keypoints_sample.json")
    amplitudes = np.linspace(0.55, 1.0, 18).astype(np.float32)
    for image_id in coco.image_ids_with_people():
        predictor, gt = _oracle_predictor(coco, image_id, amplitudes)
        image = coco_sample_dir / coco.images[image_id]["file_name"]
        result = run_media_inference(predictor, image, tmp_path / str(image_id),
                                     log=lambda _: None)
        people = json.loads(Path(result).read_text())["results"][0]["people"]
        assert people, f"image {image_id}: no one found on maps rendered from its people"
        kps = np.array([p["keypoints"] for p in people]).reshape(len(people), 17, 3)
        found = kps[:, :, 2] > 0
        assert (kps[:, :, 2] <= 1.05).all() and (kps[:, :, 2] >= 0).all()
        assert (kps[~found] == 0).all(), "a missing keypoint is exactly 0, 0, 0"
        assert (kps[found][:, :2] != 0).any(axis=1).all(), "found keypoints have positions"
        assert [p["num_keypoints"] for p in people] == found.sum(axis=1).tolist()
        # each found joint's confidence is its heatmap peak: it follows the joint's amplitude
        conf = kps[:, :, 2]
        ours = np.array([int(j) for j in COCO_TO_OURS])
        nose_conf = conf[:, 0][found[:, 0]]
        ankle_conf = conf[:, 16][found[:, 16]]
        if nose_conf.size and ankle_conf.size:
            assert nose_conf.max() < ankle_conf.min(), (nose_conf, ankle_conf, amplitudes[ours])
        for person in conf:
            values = person[person > 0]
            assert values.size < 3 or np.ptp(values) > 0.05, "confidences vary across joints"
        assert (conf[found] > 0.3).all() and (conf[found] <= amplitudes.max() + 1e-6).all()
        # people with fewer annotated joints than found ones would mean invented joints
        assert found.sum() <= (gt[:, :, 2] > 0).sum()


def test_people_json_on_a_full_disk_is_one_line(tmp_path):
    """No space for people.json (or the drawings): one WriteError line, no partial file (issue
    21, point 10)."""
    from src.runtime.atomic_write import WriteError
    from tests.mounts import fill, tiny_disk
    image = _image(tmp_path / "one.jpg")
    with tiny_disk(tmp_path / "disk", size="64k") as disk:
        out = disk / "out"
        out.mkdir()
        fill(disk)
        lines = []
        with pytest.raises(WriteError) as info:
            run_media_inference(FixedPredictor(), image, out, log=lines.append)
        assert str(info.value).startswith(f"{out / 'people.json'}: no space left on device while "
                                          "writing (")
        assert "\n" not in str(info.value)
        assert list(out.iterdir()) == [], "no drawing, no JSON, no temporary left"
