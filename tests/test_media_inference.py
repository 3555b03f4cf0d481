"""Inference on an image, a folder and a video with a stand-in predictor, and the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.evaluate.media import MediaError, classify_input, run_media_inference

REPO = Path(__file__).resolve().parents[1]


class FixedPredictor:
    """Returns one person whose joints sit at fixed fractions of the frame."""

    def __init__(self):
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        height, width = image.shape[:2]
        pose = np.zeros((1, 18, 3))
        pose[0, :, 0] = np.linspace(0.2, 0.8, 18) * width
        pose[0, :, 1] = np.linspace(0.1, 0.9, 18) * height
        pose[0, :, 2] = 2
        return pose, np.array([0.9])


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
    # COCO order: keypoint 0 is the nose, our joint 0
    assert person["keypoints"][0] == pytest.approx(0.2 * 64, abs=0.01)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["im0.png", "im1.png", "im2.png"]

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
    assert (tmp_path / "out" / "person.png").is_file()
    assert json.loads((tmp_path / "out" / "people.json").read_text())["results"][0]["file"] == str(image)
    bad = subprocess.run(args[:-2] + ["--input", str(tmp_path / "nope.jpg")], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "nope.jpg: no such file" in bad.stderr
