"""gen_ignore_mask under faults (issue 21, points 1, 9, 13): a full disk, damaged masks of an
earlier run, temporaries of a killed run, another people rule, bad segmentations, --vis on a
file, a read-only mask folder, SIGINT and SIGTERM. Each ends in one line with its exit status
and leaves only complete masks under their names."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.data.ignore_mask import compute_ignore_mask, main
from src.data.mask_files import RULE_FILE, mask_is_complete
from src.data.segmentation import compressed_counts
from src.runtime.atomic_write import host_tag
from tests.mounts import fill, read_only, tiny_disk

REPO = Path(__file__).resolve().parents[1]
SAMPLE_ANN = REPO.parent / "shared" / "data" / "coco_sample" / "person_keypoints_sample.json"
SAMPLE_MASKS = ["000000040083.png", "000000196141.png"]


def _cli(*args):
    return subprocess.run([sys.executable, "scripts/gen_ignore_mask.py", "--quiet", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def _error_line(result):
    """The one ``error:`` line of stderr, asserting no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


def _sample_split(root):
    (root / "val2017").mkdir(parents=True)
    return ["--val_ann", SAMPLE_ANN, "--val_dir", root / "val2017", "--workers", "2"]


def _masks(folder):
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".png")


def _expected_sample_masks():
    from src.data.coco import load_coco
    coco = load_coco(str(SAMPLE_ANN))
    masks = {}
    for image_id in coco.image_ids_with_people():
        record = coco.images[image_id]
        ignore = compute_ignore_mask(coco.person_annotations(image_id), record["height"], record["width"])
        if ignore.any():
            masks[f"{image_id:012d}.png"] = ignore
    return masks


def _assert_all_complete(folder):
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporaries left: {leftovers}"
    for path in folder.glob("*.png"):
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert mask is not None and mask.size, f"{path.name} is not a complete mask"


def test_full_disk_is_exit_1_and_a_rerun_completes(tmp_path):
    args = _sample_split(tmp_path)
    with tiny_disk(tmp_path / "ignore_mask_val", "64k") as disk:
        filler = fill(disk)
        os.truncate(filler, filler.stat().st_size - 8192)     # room for the record and one mask
        full = _cli(*args)
        assert full.returncode == 1, full.stderr[-2000:]
        line = _error_line(full)
        assert line.startswith(f"error: {disk}/000000") and \
            ".png: no space left on device while writing (" in line, line
        _assert_all_complete(disk)
        assert len(_masks(disk)) < 2 and all(p.stat().st_size for p in disk.glob("*.png"))
        filler.unlink()
        rerun = _cli(*args)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        expected = _expected_sample_masks()
        assert _masks(disk) == sorted(expected) == SAMPLE_MASKS
        for name, ignore in expected.items():
            assert np.array_equal(cv2.imread(str(disk / name), cv2.IMREAD_UNCHANGED) == 255, ignore)


def test_damaged_masks_are_rewritten_and_killed_runs_temporaries_removed(tmp_path):
    args = _sample_split(tmp_path)
    masks = tmp_path / "ignore_mask_val"
    assert main(list(map(str, args))) == 0
    good = (masks / SAMPLE_MASKS[0]).read_bytes()
    (masks / SAMPLE_MASKS[0]).write_bytes(good[: len(good) // 2])       # cut
    (masks / SAMPLE_MASKS[1]).write_bytes(b"")                           # zero bytes (full disk)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = masks / f".tmp{dead.pid}-{host_tag()}beef.png"
    stale.write_bytes(b"partial")
    rerun = _cli(*args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"removed 1 temporary file(s) of an interrupted run from {masks}" in rerun.stdout
    assert "val: replaced 2 damaged mask file(s)" in rerun.stdout
    assert "val: 2 masks written, 2 in" in rerun.stdout
    assert (masks / SAMPLE_MASKS[0]).read_bytes() == good and not stale.exists()
    for name, ignore in _expected_sample_masks().items():
        assert mask_is_complete(masks / name, *ignore.shape)


def test_people_rule_is_recorded_and_another_rule_refused(tmp_path):
    args = list(map(str, _sample_split(tmp_path)))
    masks = tmp_path / "ignore_mask_val"
    assert main(args) == 0
    assert json.loads((masks / RULE_FILE).read_text()) == {"min_keypoints": 5, "min_area": 1024.0}
    before = {p.name: p.read_bytes() for p in masks.iterdir()}
    other = _cli(*args, "--min_keypoints", "3")
    assert other.returncode == 1
    assert _error_line(other) == (
        f"error: {masks} holds masks made with --min_keypoints 5 --min_area 1024; this run asks "
        f"for --min_keypoints 3 --min_area 1024: delete {masks} and run again to redo them with "
        "the new rule, or pass the recorded values")
    assert {p.name: p.read_bytes() for p in masks.iterdir()} == before, "nothing changed"
    assert main(args + ["--min_area", "1024"]) == 0            # the same rule, spelled out


def test_folder_without_record_is_adopted_with_a_warning(tmp_path, capsys):
    args = list(map(str, _sample_split(tmp_path)))
    assert main(args) == 0
    (tmp_path / "ignore_mask_val" / RULE_FILE).unlink()
    capsys.readouterr()
    assert main(args) == 0
    assert "has 2 masks but no people-rule record; keeping the complete ones" in capsys.readouterr().out
    assert (tmp_path / "ignore_mask_val" / RULE_FILE).is_file()


def _one_image(root, segmentation, width=20, height=10):
    (root / "val2017").mkdir()
    data = {"images": [{"id": 3, "file_name": "c.jpg", "width": width, "height": height}],
            "categories": [{"id": 1, "name": "person"}],
            "annotations": [{"id": 7, "image_id": 3, "category_id": 1, "iscrowd": 1,
                             "num_keypoints": 0, "area": 50, "segmentation": segmentation}]}
    (root / "val.json").write_text(json.dumps(data))
    return ["--val_ann", root / "val.json", "--val_dir", root / "val2017", "--workers", "1"]


@pytest.mark.parametrize("segmentation, message", [
    ({"size": [10, 20], "counts": "garbage!"}, "RLE counts are not valid compressed RLE"),
    ({"size": [10, 20], "counts": ""}, "RLE counts cover 0 pixels"),
    ({"size": [20, 10], "counts": [200]}, "RLE size [20, 10] differs from the image's"),
    ({"counts": [200]}, "RLE needs 'size' as [height, width], got None"),
    ({"size": [10, 20], "counts": [100, 50]}, "RLE counts cover 150 pixels"),
    ({"size": [10, 20], "counts": [-5, 205]}, "with 1 negative runs"),
    ({"size": [10, 20], "counts": "x"}, "RLE counts"),
    (5, "must be polygons (a list) or an RLE (a dict with size and counts), got int 5"),
    ([[1, 2, "a", 4, 5, 6]], "polygon 0 is not a list of finite numbers"),
    ([3, 4, 5, 6, 7, 8], "polygon 0 is not a list of finite numbers"),
])
def test_bad_segmentation_is_one_line_before_any_mask(tmp_path, segmentation, message):
    result = _cli(*_one_image(tmp_path, segmentation))
    assert result.returncode == 1
    line = _error_line(result)
    assert line.startswith(f"error: {tmp_path / 'val.json'}: annotation id 7 (image id 3): segmentation ")
    assert message in line, line
    assert _masks(tmp_path / "ignore_mask_val") == []


def test_compressed_counts_agree_with_pycocotools():
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = np.asfortranarray(rng.random((37, 23)) < rng.random())
        text = mask_utils.encode(mask.astype(np.uint8))["counts"].decode()
        counts = compressed_counts(text)
        runs = np.repeat(np.arange(len(counts)) % 2, counts)     # 0-runs and 1-runs alternate
        assert runs.size == mask.size
        assert np.array_equal(runs.reshape(mask.shape, order="F").astype(bool), mask)


def test_vis_pointing_at_a_file(tmp_path):
    args = _sample_split(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    result = _cli(*args, "--vis", tmp_path / "notes.txt")
    assert result.returncode == 1
    assert _error_line(result) == f"error: {tmp_path / 'notes.txt'}/val: cannot create this folder " \
        "(Not a directory) (--vis)"
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_read_only_mask_folder(tmp_path):
    args = _sample_split(tmp_path)
    masks = tmp_path / "ignore_mask_val"
    masks.mkdir()
    with read_only(masks):
        result = _cli(*args)
    assert result.returncode == 1
    assert _error_line(result) == \
        f"error: {masks}: cannot write into this folder (Read-only file system) (--val_dir)"


def _many_images(root, count=600, side=640):
    """``count`` images of ``side`` px, each with a crowd region: enough work to stop midway."""
    (root / "val2017").mkdir()
    rng = np.random.default_rng(1)
    images, annotations = [], []
    for index in range(count):
        x0, y0 = rng.integers(0, side // 2, 2).tolist()
        images.append({"id": index + 1, "file_name": f"{index}.jpg", "width": side, "height": side})
        annotations.append({"id": index + 1, "image_id": index + 1, "category_id": 1, "iscrowd": 1,
                            "num_keypoints": 0, "area": 1000.0,
                            "segmentation": [[x0, y0, x0 + 300, y0 + 20, x0 + 150, y0 + 290]]})
    (root / "val.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                               "categories": [{"id": 1, "name": "person"}]}))
    return ["--val_ann", root / "val.json", "--val_dir", root / "val2017", "--workers", "2"]


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "SIGINT"),
                                                (signal.SIGTERM, 143, "SIGTERM")])
def test_signal_stops_with_one_line_and_no_partial_file(tmp_path, signum, code, name):
    args = _many_images(tmp_path)
    masks = tmp_path / "ignore_mask_val"
    proc = subprocess.Popen([sys.executable, "scripts/gen_ignore_mask.py", "--quiet", *map(str, args)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)     # its own group: the signal reaches all, as Ctrl-C
    deadline = time.monotonic() + 120
    while not (masks.is_dir() and any(masks.glob("0*.png"))):   # inside the mask phase
        assert proc.poll() is None and time.monotonic() < deadline, "no mask written"
        time.sleep(0.05)
    os.killpg(proc.pid, signum)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err[-3000:]
    if proc.returncode == 0:          # the work ended before the signal arrived: a whole run
        assert "val: 600 masks written" in out
    else:
        assert proc.returncode == code, err[-2000:]
        assert err.strip().splitlines()[-1] == (
            f"gen_ignore_mask: stopped by {name}; the masks written so far are complete and no "
            "partial file is left: run the same command again to finish")
    _assert_all_complete(masks)


def test_training_checks_the_recorded_rule(tmp_path):
    """train.py's check (src.data.pipeline.build_train_records): masks without a record (the
    reference's script) pass, the same rule passes, another rule or a broken record does not."""
    from src.data.mask_files import MaskRuleError, check_training_rule
    check_training_rule(str(tmp_path), 5, 1024)
    (tmp_path / RULE_FILE).write_text(json.dumps({"min_keypoints": 5, "min_area": 1024}))
    check_training_rule(str(tmp_path), 5, 1024.0)
    with pytest.raises(MaskRuleError, match=r"uses --min_keypoints 4 --min_area 1024: pass "):
        check_training_rule(str(tmp_path), 4, 1024)
    with pytest.raises(MaskRuleError, match=r"made with --min_keypoints 5 --min_area 1024 "):
        check_training_rule(str(tmp_path), 5, 256)
    (tmp_path / RULE_FILE).write_text("{broken")
    with pytest.raises(MaskRuleError, match=r"unreadable people-rule record"):
        check_training_rule(str(tmp_path), 5, 1024)
