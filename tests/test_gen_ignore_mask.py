"""Ignore masks: the COCO sample against pycocotools, crowd semantics, resume, CLI."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from src.data.ignore_mask import compute_ignore_mask, generate_split, main, mask_dir_for

REPO = Path(__file__).resolve().parents[1]


def test_coco_sample_masks_match_pycocotools(coco_sample_dir, tmp_path, capsys):
    ann = coco_sample_dir / "person_keypoints_sample.json"
    image_dir = tmp_path / "val2017"
    image_dir.mkdir()
    save_dir, on_disk, written = generate_split(str(ann), str(image_dir), "val", workers=2,
                                                progress=False)
    assert Path(save_dir) == tmp_path / "ignore_mask_val"
    coco = COCO(str(ann))
    capsys.readouterr()
    expected_files = set()
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        direct = np.zeros((info["height"], info["width"]), bool)
        for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
            if a["iscrowd"] or a["num_keypoints"] < 5 or a["area"] <= 1024:
                direct |= coco.annToMask(a).astype(bool)
        path = Path(save_dir) / f"{image_id:012d}.png"
        if direct.any():
            expected_files.add(path.name)
            written_mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            assert set(np.unique(written_mask)) <= {0, 255}
            assert np.array_equal(written_mask == 255, direct)
    assert expected_files == {"000000040083.png", "000000196141.png"}
    assert {p.name for p in Path(save_dir).iterdir()} == expected_files | {"ignore_mask_rule.json"}
    assert (on_disk, written) == (2, 2)
    # Resumable: a second run writes nothing new.
    assert generate_split(str(ann), str(image_dir), "val", progress=False)[1:] == (2, 0)


def _square(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_crowd_minus_people_regardless_of_order():
    height = width = 40
    crowd = np.zeros((height, width), np.uint8, order="F")
    crowd[5:25, 5:25] = 1
    rle = mask_utils.encode(np.asfortranarray(crowd))
    rle["counts"] = rle["counts"].decode()
    anns = [
        {"iscrowd": 1, "segmentation": rle, "num_keypoints": 0, "area": 400},
        # A training person listed after the crowd still carves itself out of it.
        {"iscrowd": 0, "segmentation": _square(15, 15, 30, 30), "num_keypoints": 10,
         "area": 2000},
        # A person with too few keypoints is ignored even over the training person.
        {"iscrowd": 0, "segmentation": _square(28, 28, 36, 36), "num_keypoints": 3,
         "area": 2000},
        # A person that is too small is ignored.
        {"iscrowd": 0, "segmentation": _square(0, 32, 4, 38), "num_keypoints": 10,
         "area": 1024},
    ]
    ignore = compute_ignore_mask(anns, height, width)
    person = mask_utils.decode(mask_utils.frPyObjects(anns[1]["segmentation"], height,
                                                      width)).any(axis=2)
    few = mask_utils.decode(mask_utils.frPyObjects(anns[2]["segmentation"], height,
                                                   width)).any(axis=2)
    small = mask_utils.decode(mask_utils.frPyObjects(anns[3]["segmentation"], height,
                                                     width)).any(axis=2)
    expected = (crowd.astype(bool) & ~person) | few | small
    assert np.array_equal(ignore, expected)
    assert ignore[10, 10] and not ignore[20, 20] and ignore[33, 33]
    assert np.array_equal(compute_ignore_mask(anns[::-1], height, width), expected)
    assert not compute_ignore_mask(anns[1:2], height, width).any()


def _copy_sample_images(coco_sample_dir, image_dir):
    """The sample's images in a new folder ``image_dir`` (masks are written beside it)."""
    image_dir.mkdir(parents=True)
    for path in coco_sample_dir.glob("*.jpg"):
        (image_dir / path.name).write_bytes(path.read_bytes())
    return image_dir


def test_cli_one_split_vis_and_errors(coco_sample_dir, tmp_path):
    image_dir = _copy_sample_images(coco_sample_dir, tmp_path / "images" / "val2017")
    ann = coco_sample_dir / "person_keypoints_sample.json"
    vis = tmp_path / "vis"
    result = subprocess.run(
        [sys.executable, "scripts/gen_ignore_mask.py", "--val_ann", str(ann), "--val_dir",
         str(image_dir) + "/", "--workers", "1", "--vis", str(vis), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "val: 2 masks written" in result.stdout
    assert Path(mask_dir_for(str(image_dir) + "/", "val")) == tmp_path / "images" / \
        "ignore_mask_val"
    overlays = sorted(p.name for p in (vis / "val").iterdir())
    assert len(overlays) == 4
    picture = cv2.imread(str(vis / "val" / overlays[0]))
    assert picture.shape == (425, 1280, 3)

    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2")
    result = subprocess.run(
        [sys.executable, "scripts/gen_ignore_mask.py", "--train_ann", str(broken), "--train_dir",
         str(image_dir)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == \
        f"error: {broken}: not valid JSON (line 1: Expecting ',' delimiter)"
    assert "Traceback" not in result.stderr
    assert main(["--train_ann", str(ann)]) == 2


#: One 20 x 10 image with one person too poor to train on (so one mask).
ONE_IMAGE = {"images": [{"id": 3, "file_name": "c.jpg", "width": 20, "height": 10}],
             "categories": [{"id": 1, "name": "person"}],
             "annotations": [{"id": 1, "image_id": 3, "category_id": 1, "iscrowd": 0,
                              "num_keypoints": 0, "area": 50,
                              "segmentation": _square(2, 2, 8, 6)}]}


def test_train_and_val_together(tmp_path):
    for split in ("train", "val"):
        (tmp_path / f"{split}2017").mkdir()
        (tmp_path / f"{split}.json").write_text(json.dumps(ONE_IMAGE))
    assert main(["--train_ann", str(tmp_path / "train.json"), "--train_dir",
                 str(tmp_path / "train2017"), "--val_ann", str(tmp_path / "val.json"),
                 "--val_dir", str(tmp_path / "val2017"), "--quiet", "--workers", "2"]) == 0
    for split in ("train", "val"):
        mask = cv2.imread(str(tmp_path / f"ignore_mask_{split}" / "000000000003.png"), 0)
        assert mask.shape == (10, 20) and mask[4, 5] == 255 and mask[0, 0] == 0


def _val_split(root):
    """ONE_IMAGE as the val split under ``root`` (with its image); the command-line flags."""
    (root / "val2017").mkdir()
    cv2.imwrite(str(root / "val2017" / "c.jpg"), np.full((10, 20, 3), 128, np.uint8))
    (root / "val.json").write_text(json.dumps(ONE_IMAGE))
    return ["--val_ann", str(root / "val.json"), "--val_dir", str(root / "val2017"), "--quiet",
            "--workers", "1"]


@pytest.mark.parametrize("vis", ["False", "false", "", "none"])
def test_vis_false_or_empty_writes_no_overlays(tmp_path, monkeypatch, vis):
    args = _val_split(tmp_path)
    monkeypatch.chdir(tmp_path)          # a folder named after the value would appear here
    assert main(args + ["--vis", vis]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ignore_mask_val", "val.json", "val2017"]


def test_vis_dir_writes_the_overlays_there(tmp_path):
    assert main(_val_split(tmp_path) + ["--vis", str(tmp_path / "overlays")]) == 0
    assert [p.name for p in (tmp_path / "overlays" / "val").iterdir()] == ["000000000003.png"]
    assert cv2.imread(str(tmp_path / "overlays" / "val" / "000000000003.png")).shape == (10, 40, 3)


def test_vis_true_writes_the_overlays_beside_the_masks(tmp_path, monkeypatch):
    args = _val_split(tmp_path)
    monkeypatch.chdir(tmp_path)          # no folder named "True" may appear
    assert main(args + ["--vis", "True"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ignore_mask_val", "ignore_mask_vis", "val.json", "val2017"]
    assert [p.name for p in (tmp_path / "ignore_mask_vis" / "val").iterdir()] == ["000000000003.png"]


def test_reference_command_in_src_runs_the_script(coco_sample_dir, tmp_path):
    """`python3 ./src/gen_ignore_mask.py ...` (the reference README's command) still works."""
    image_dir = _copy_sample_images(coco_sample_dir, tmp_path / "val2017")
    ann = coco_sample_dir / "person_keypoints_sample.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "src" / "gen_ignore_mask.py"), "--val_ann", str(ann),
         "--val_dir", str(image_dir), "--workers", "1", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"src/gen_ignore_mask.py failed: {result.stderr}"
    assert "val: 2 masks written" in result.stdout, result.stdout
    helps = [subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=60).stdout
             for script in ("src/gen_ignore_mask.py", "scripts/gen_ignore_mask.py")]
    assert helps[0] == helps[1] and "--train_ann" in helps[0], "the two commands' help differs"
