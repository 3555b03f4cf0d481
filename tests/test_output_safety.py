"""Outputs never replace inputs and never write through links (issue 21, points 2 and 6):
the drawing naming scheme shared by eval.py and scripts/infer.py, the refusal of an output
folder that is the input folder, and symlinks placed among the outputs."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from src.evaluate.drawing import drawing_names
from src.evaluate.media import run_media_inference
from src.runtime.output_checks import OutputError, check_not_input
from tests.test_media_inference import FixedPredictor, _image

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "coco_sample"


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_drawing_names_are_derived_from_the_file_name_and_distinct():
    assert drawing_names(["000000000785.jpg", "gray.jpg", "gray.png", "one.jpg", "one.png"]) == \
        ["000000000785_jpg.png", "gray_jpg.png", "gray_png.png", "one_jpg.png", "one_png.png"]
    # the same file name in two sub-folders (COCO file_name with a folder): still distinct
    assert drawing_names(["a/x.jpg", "b/x.jpg", "x_jpg_2.jpg"]) == \
        ["x_jpg.png", "x_jpg_2.png", "x_jpg_2_jpg.png"]


def test_same_stem_images_get_one_drawing_each(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for index, name in enumerate(["gray.jpg", "gray.png", "one.jpg", "one.png"]):
        _image(folder / name, seed=index)
    run_media_inference(FixedPredictor(), folder, tmp_path / "out", log=lambda _: None)
    drawings = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert drawings == ["gray_jpg.png", "gray_png.png", "one_jpg.png", "one_png.png"]
    results = json.loads((tmp_path / "out" / "people.json").read_text())["results"]
    assert len(results) == 4 == len(drawings), "one drawing per result"


def test_drawings_never_write_through_a_symlink(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _image(folder / "a.jpg")
    victim = tmp_path / "precious.png"
    victim.write_bytes(b"keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_jpg.png").symlink_to(victim)
    (out / "people.json").symlink_to(victim)
    run_media_inference(FixedPredictor(), folder, out, log=lambda _: None)
    assert victim.read_bytes() == b"keep me"
    assert not (out / "a_jpg.png").is_symlink() and cv2.imread(str(out / "a_jpg.png")) is not None
    assert not (out / "people.json").is_symlink()


def test_check_not_input_sees_through_links(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "imgs")
    with pytest.raises(OutputError, match=r"link: --output is the --input folder: drawings written "
                                          r"there could replace input files; choose another --output"):
        check_not_input(tmp_path / "link", "output", [(tmp_path / "imgs", "the --input folder")],
                        "drawings written there could replace input files")
    check_not_input(tmp_path / "other", "output", [(tmp_path / "imgs", "the --input folder")], "x")


def _error_lines(stderr, prog):
    lines = [line for line in stderr.splitlines() if line.startswith(f"{prog}: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("single", [False, True])
def test_infer_refuses_the_input_folder_as_output(tmp_path, single):
    folder = tmp_path / "photos"
    folder.mkdir()
    _image(folder / "a.jpg")
    _image(folder / "a_jpg.png", seed=1)         # what the drawing of a.jpg would be called
    before = _hashes(folder)
    target = folder / "a.jpg" if single else folder
    proc = subprocess.run([sys.executable, "scripts/infer.py", "--model_path", "unused.ckpt",
                           "--input", str(target), "--output", str(folder)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    label = "the folder of --input" if single else "the --input folder"
    assert proc.returncode == 1
    assert _error_lines(proc.stderr, "infer.py") == \
        (f"infer.py: error: {folder}: --output is {label}: drawings and people.json written "
         "there could replace input files; choose another --output")
    assert _hashes(folder) == before, "no input changed"


def test_eval_refuses_the_image_folder_for_drawings(tmp_path):
    images = tmp_path / "val"
    images.mkdir()
    for path in sorted(SAMPLE.glob("*.jpg")):
        (images / path.name).write_bytes(path.read_bytes())
    before = _hashes(images)
    proc = subprocess.run([sys.executable, "eval.py", "--model_path", "unused.ckpt", "--vis", "True",
                           "--ann", str(SAMPLE / "person_keypoints_sample.json"),
                           "--imgpath_val", str(images), "--output_img_path", str(images)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert _error_lines(proc.stderr, "eval.py") == \
        (f"eval.py: error: {images}: --output_img_path is the --imgpath_val image folder: drawings "
         "written there could replace input files; choose another --output_img_path")
    assert _hashes(images) == before


@pytest.mark.parametrize("through_link", [False, True])
def test_converter_refuses_out_equal_to_its_source(tmp_path, through_link):
    source = tmp_path / "pose_iter_440000.caffemodel"
    source.write_bytes(b"CMU's weights stand-in")
    out = source
    if through_link:
        out = tmp_path / "link.caffemodel"
        out.symlink_to(source)
    proc = subprocess.run([sys.executable, "scripts/convert_cmu_caffemodel.py", "--caffemodel",
                           str(source), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert _error_lines(proc.stderr, "convert_cmu_caffemodel.py") == (
        f"convert_cmu_caffemodel.py: error: {out}: --out is the --caffemodel file: writing the "
        "checkpoint would replace it (the source is kept); choose another --out")
    assert source.read_bytes() == b"CMU's weights stand-in"
