"""The synthetic COCO dataset: valid COCO, keypoints on the drawn bodies, seeded, usable."""
import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from src.config import default_config, parse_config
from src.data.augment import AugmentParams
from src.data.ignore_mask import ann_to_mask
from src.data.pipeline import TrainSource, build_train_records
from src.data.toy_coco import ToyOptions, make_toy_coco, mask_rle, render_image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    from scripts.make_toy_coco import main
    with redirect_stdout(io.StringIO()):
        assert main(["--out", str(out), "--num_train", "10", "--num_val", "4", "--size", "128",
                     "--seed", "3"]) == 0
    return out


def _load(path):
    with redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_layout_and_pycocotools(toy):
    for split, count in (("train", 10), ("val", 4)):
        coco = _load(toy / "annotations" / f"person_keypoints_{split}2017.json")
        assert len(coco.getImgIds()) == count
        assert coco.loadCats(coco.getCatIds())[0]["name"] == "person"
        for image_id in coco.getImgIds():
            info = coco.loadImgs(image_id)[0]
            image = cv2.imread(str(toy / f"{split}2017" / info["file_name"]))
            assert image.shape == (128, 128, 3)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
                kp = np.array(ann["keypoints"]).reshape(17, 3)
                assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum())
                assert set(kp[:, 2]) <= {0, 1, 2}
                assert np.all(kp[kp[:, 2] == 0, :2] == 0)
                mask = coco.annToMask(ann)
                # area counts the drawn pixels; polygons through boundary pixel centres
                # cover a little less (more where an outer contour encloses a hole).
                assert 0 < 0.8 * mask.sum() <= ann["area"] <= 2 * mask.sum() + 40
                x, y, w, h = ann["bbox"]
                assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128
    assert (toy / "ignore_mask_train").is_dir()
    assert (toy / "val2017" / "000001000001.jpg").is_file()


def test_visible_keypoints_lie_on_the_body(toy):
    coco = _load(toy / "annotations" / "person_keypoints_train2017.json")
    checked = 0
    kernel = np.ones((3, 3), np.uint8)
    for ann in coco.loadAnns(coco.getAnnIds()):
        if ann["iscrowd"] or ann["num_keypoints"] == 0:
            continue
        mask = cv2.dilate(coco.annToMask(ann), kernel)
        kp = np.array(ann["keypoints"]).reshape(17, 3)
        for x, y, v in kp:
            if v == 2:
                assert mask[int(round(y)), int(round(x))], (ann["id"], x, y)
                checked += 1
    assert checked > 100


def test_all_kinds_of_people_appear():
    options = ToyOptions(size=128, crowd_prob=1.0, small_people_prob=1.0, cut_person_prob=1.0)
    anns = []
    for index in range(4):
        _, image_anns = render_image(np.random.default_rng([9, index]), options)
        anns += image_anns
    assert any(a["iscrowd"] == 1 and isinstance(a["segmentation"], dict) for a in anns)
    assert any(a["iscrowd"] == 0 and a["num_keypoints"] == 0 for a in anns)
    assert any(0 < a["num_keypoints"] < 5 or 0 < a["num_keypoints"] < 17 for a in anns)
    assert sum(a["num_keypoints"] >= 5 for a in anns) >= 4
    crowd = next(a for a in anns if a["iscrowd"])
    assert ann_to_mask(crowd, 128, 128).sum() == crowd["area"]


def test_people_are_large_and_visible(toy):
    data = json.loads((toy / "annotations" / "person_keypoints_train2017.json").read_text())
    heights = []
    for ann in data["annotations"]:
        kp = np.array(ann["keypoints"]).reshape(17, 3)
        if ann["num_keypoints"] == 17:
            heights.append(kp[:, 1].max() - kp[:, 1].min())
    assert heights and np.median(heights) > 0.3 * 128


def test_seeded(tmp_path):
    first = make_toy_coco(tmp_path / "a", num_train=2, num_val=1, seed=5,
                          options=ToyOptions(size=96))
    second = make_toy_coco(tmp_path / "b", num_train=2, num_val=1, seed=5,
                           options=ToyOptions(size=96))
    assert json.dumps(first) .replace("seed 5", "") == json.dumps(second).replace("seed 5", "")
    assert (tmp_path / "a/train2017/000000000001.jpg").read_bytes() == \
        (tmp_path / "b/train2017/000000000001.jpg").read_bytes()
    other = make_toy_coco(tmp_path / "c", num_train=2, num_val=0, seed=6,
                          options=ToyOptions(size=96))
    assert other["train"]["annotations"] != first["train"]["annotations"]


def test_rle_round_trip():
    from pycocotools import mask as mask_utils
    mask = np.zeros((7, 5), bool)
    mask[0, 0] = mask[3:6, 1:4] = True
    rle = mask_rle(mask)
    decoded = mask_utils.decode(mask_utils.frPyObjects(rle, 7, 5)).astype(bool)
    assert np.array_equal(decoded, mask)


def test_feeds_the_pipeline(toy):
    records = build_train_records(toy / "annotations" / "person_keypoints_train2017.json",
                                  toy / "train2017", toy / "ignore_mask_train")
    assert len(records) >= 8
    cfg = default_config(insize=64)
    source = TrainSource(records, AugmentParams.from_config(cfg), cfg.heatmap_sigma, cfg.paf_sigma, seed=0)
    image, pafs, heatmaps, loss = source[0]
    assert image.shape == (3, 64, 64) and pafs.shape == (38, 8, 8)
    assert heatmaps.shape == (19, 8, 8) and loss.shape == (8, 8)
    assert heatmaps[:18].max() > 0.5 and np.abs(pafs).max() > 0.5


def test_masks_follow_the_people_rule_asked_for(toy, tmp_path, capsys):
    """Default: default_config.yaml's rule; --config_path: a training configuration's (the
    quickstart's configs/toy.yaml); the flags win; a bad value is exit 2 and nothing written."""
    from scripts.make_toy_coco import main

    def rule(folder):
        return json.loads((folder / "ignore_mask_train" / "ignore_mask_rule.json").read_text())

    cfg = default_config()
    assert rule(toy) == {"min_keypoints": cfg.min_keypoints, "min_area": cfg.min_area}
    toy_cfg = parse_config([], config_path=REPO / "configs" / "toy.yaml")
    base = ["--num_train", "2", "--num_val", "0", "--size", "64", "--quiet"]
    toy_yaml = str(REPO / "configs" / "toy.yaml")
    assert main(["--out", str(tmp_path / "a"), *base, "--config_path", toy_yaml]) == 0
    assert rule(tmp_path / "a") == {"min_keypoints": toy_cfg.min_keypoints,
                                    "min_area": toy_cfg.min_area}
    assert toy_cfg.min_area != cfg.min_area, "configs/toy.yaml no longer changes the rule"
    assert main(["--out", str(tmp_path / "b"), *base, "--config_path", toy_yaml,
                 "--min_keypoints", "2"]) == 0
    assert rule(tmp_path / "b") == {"min_keypoints": 2, "min_area": toy_cfg.min_area}
    capsys.readouterr()
    assert main(["--out", str(tmp_path / "c"), *base, "--min_area", "-1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: command line: bad value -1 for 'min_area': expected a finite number >= 0")
    assert not (tmp_path / "c").exists()
