"""Reading annotations, images and masks."""
import json

import cv2
import numpy as np
import pytest

from src.data.coco import (
    AnnotationError,
    ImageReadError,
    annotations_to_poses,
    load_coco,
    read_ignore_mask,
    read_image,
    training_image_ids,
    valid_person_annotations,
)
from src.skeleton import Joint


def test_coco_sample_training_people(coco_sample_dir):
    coco = load_coco(coco_sample_dir / "person_keypoints_sample.json")
    ids = training_image_ids(coco)
    assert ids == [785, 40083, 196141, 197388]
    # The golden target files hold exactly these people per image.
    counts = [len(valid_person_annotations(coco, i)) for i in ids]
    assert counts == [1, 2, 4, 5]
    poses = annotations_to_poses(valid_person_annotations(coco, 785))
    assert poses.shape == (1, 18, 3) and poses.dtype == np.float32
    ann = valid_person_annotations(coco, 785)[0]
    coco_kp = np.array(ann["keypoints"]).reshape(17, 3)
    assert tuple(poses[0, Joint.NOSE]) == tuple(coco_kp[0])
    assert tuple(poses[0, Joint.LEFT_ANKLE]) == tuple(coco_kp[15])
    neck = poses[0, Joint.NECK]
    assert neck[2] == 2
    assert neck[0] == int((coco_kp[5, 0] + coco_kp[6, 0]) / 2)


def test_min_keypoints_and_area_filters():
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10},
                       {"id": 2, "file_name": "b.jpg", "width": 10, "height": 10}],
            "categories": [{"id": 1, "name": "person"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "num_keypoints": 4, "area": 5000,
                 "iscrowd": 0, "keypoints": [0] * 51},
                {"id": 2, "image_id": 2, "category_id": 1, "num_keypoints": 5, "area": 1024,
                 "iscrowd": 0, "keypoints": [0] * 51},
                {"id": 3, "image_id": 2, "category_id": 1, "num_keypoints": 5, "area": 1025,
                 "iscrowd": 0, "keypoints": [0] * 51}]}
    from src.data.coco import index_coco
    coco = index_coco(data)
    assert training_image_ids(coco) == [2]
    assert [a["id"] for a in valid_person_annotations(coco, 2)] == [3]
    assert training_image_ids(coco, min_keypoints=4, min_area=0) == [1, 2]


def test_annotation_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(AnnotationError, match="nope.json: annotation file not found"):
        load_coco(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(AnnotationError, match="broken.json: not valid JSON"):
        load_coco(broken)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(AnnotationError, match="other.json: not a COCO annotation file"):
        load_coco(other)


def test_read_image(tmp_path):
    path = tmp_path / "x.png"
    cv2.imwrite(str(path), np.full((5, 7, 3), 9, np.uint8))
    image = read_image(path)
    assert image.shape == (5, 7, 3) and image.dtype == np.uint8
    with pytest.raises(ImageReadError, match="missing.jpg: file not found"):
        read_image(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="bad.jpg: cannot decode"):
        read_image(bad)


def test_read_ignore_mask(tmp_path):
    assert not read_ignore_mask(tmp_path / "none.png", (4, 6)).any()
    assert read_ignore_mask(None, (4, 6)).shape == (4, 6)
    mask = np.zeros((4, 6), np.uint8)
    mask[1, 2] = 255
    path = tmp_path / "m.png"
    cv2.imwrite(str(path), mask)
    read = read_ignore_mask(path, (4, 6, 3))
    assert read.dtype == np.uint8 and read[1, 2] == 1 and read.sum() == 1
    with pytest.raises(ImageReadError, match="m.png: mask size 6x4 differs"):
        read_ignore_mask(path, (5, 6))


def test_people_rule_defaults_equal_the_config():
    from src.config import default_config
    from src.data.coco import DEFAULT_MIN_AREA, DEFAULT_MIN_KEYPOINTS
    cfg = default_config()
    assert (cfg.min_keypoints, cfg.min_area) == (DEFAULT_MIN_KEYPOINTS, DEFAULT_MIN_AREA), \
        "src/data/coco.py's people rule differs from default_config.yaml's min_keypoints/min_area"


# ----------------------------------------------------------------------------------------------
# images read as stored, sizes checked against the annotation (issue 21, point 8)

def test_exif_oriented_image_is_read_as_stored(coco_sample_dir, tmp_path):
    from PIL import Image

    from tests.exif_files import ORIENTATION_TAG, with_exif_orientation
    original = coco_sample_dir / "000000000785.jpg"
    tagged = tmp_path / "000000000785.jpg"
    tagged.write_bytes(with_exif_orientation(original.read_bytes()))
    assert Image.open(tagged).getexif().get(ORIENTATION_TAG) == 6
    assert cv2.imread(str(tagged)).shape == (640, 425, 3), "OpenCV's default turns it (the fixture works)"
    image = read_image(tagged, expected_size=(425, 640))        # annotated 640 x 425
    np.testing.assert_array_equal(image, cv2.imread(str(original)))


def test_image_of_another_size_than_annotated_names_both_sizes(coco_sample_dir, tmp_path):
    from src.data.coco import ImageSizeError, annotated_size
    coco = load_coco(coco_sample_dir / "person_keypoints_sample.json")
    assert annotated_size(coco, 785) == (425, 640)
    turned = tmp_path / "785.png"
    cv2.imwrite(str(turned), cv2.rotate(cv2.imread(str(coco_sample_dir / "000000000785.jpg")),
                                        cv2.ROTATE_90_CLOCKWISE))
    with pytest.raises(ImageSizeError) as info:
        read_image(turned, annotated_size(coco, 785))
    assert str(info.value) == (f"{turned}: image is 425x640 pixels but its annotation says 640x425 "
                               "(width x height): another file, or rotated or resized after it was "
                               "annotated")
    assert isinstance(info.value, ImageReadError) and info.value.skip_reason == "not of the annotated size"
    assert read_image(turned).shape == (640, 425, 3), "no size given: not checked"
    del coco.images[785]["width"]
    assert annotated_size(coco, 785) is None
