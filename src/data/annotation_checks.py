"""Validation of COCO person-keypoint annotations when they are read.

:func:`validate_coco` checks types, finiteness, lengths and the references between ``images``
and ``annotations`` of a parsed annotation file, and raises :class:`AnnotationError` (defined
here, re-exported by :mod:`src.data.coco`) with one line naming the file, the record (image or
annotation id) and the problem: a NaN keypoint or a string ``num_keypoints`` stops here, not
as a NaN loss thousands of steps later.
"""
import numbers

import numpy as np

from src.config_checks import is_finite_number
from src.errors import OpenPoseError
from src.skeleton import NUM_COCO_KEYPOINTS

KEYPOINT_VALUES = 3 * NUM_COCO_KEYPOINTS


class AnnotationError(OpenPoseError, ValueError):
    """An annotation file is missing, is not JSON, or is not COCO person keypoints."""


def _fail(json_path, where, problem):
    raise AnnotationError(f"{json_path}: {where}: {problem}")


def _is_int(value):
    """An integer that is not a bool (JSON ``true`` is not an id)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _describe(value):
    """Short text of a bad value for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_image_record(record, index, json_path):
    """Check one entry of ``images``: an object with an integer ``id``, a ``file_name`` and,
    when present, positive integer ``width`` / ``height``. Returns the id."""
    if not isinstance(record, dict):
        _fail(json_path, f"images[{index}]", "is not an object")
    image_id = record.get("id")
    if not _is_int(image_id):
        _fail(json_path, f"images[{index}]", f"'id' must be an integer, got {_describe(image_id)}")
    where = f"image id {image_id}"
    name = record.get("file_name")
    if not isinstance(name, str) or not name.strip():
        _fail(json_path, where, f"'file_name' must be a non-empty string, got {_describe(name)}")
    for key in ("width", "height"):
        if key in record and not (_is_int(record[key]) and record[key] > 0):
            _fail(json_path, where, f"'{key}' must be a positive integer, got {_describe(record[key])}")
    return image_id


def check_annotation_record(ann, index, image_ids, json_path):
    """Check one entry of ``annotations``: integer ids, an ``image_id`` listed in ``images``,
    numeric ``num_keypoints`` / ``area`` / ``bbox``, 0/1 ``iscrowd`` and a list of 51
    ``keypoints`` (finiteness is checked for all annotations at once, see
    :func:`check_keypoints_finite`)."""
    if not isinstance(ann, dict):
        _fail(json_path, f"annotations[{index}]", "is not an object")
    ann_id = ann.get("id", f"#{index}")
    where = f"annotation id {ann_id}"
    for key in ("image_id", "category_id"):
        if not _is_int(ann.get(key)):
            _fail(json_path, where, f"'{key}' must be an integer, got {_describe(ann.get(key))}")
    if ann["image_id"] not in image_ids:
        _fail(json_path, where, f"its image_id {ann['image_id']} is not in 'images'")
    if "num_keypoints" in ann and not (_is_int(ann["num_keypoints"])
                                       and 0 <= ann["num_keypoints"] <= NUM_COCO_KEYPOINTS):
        _fail(json_path, where, f"'num_keypoints' must be an integer 0..{NUM_COCO_KEYPOINTS}, "
                                f"got {_describe(ann['num_keypoints'])}")
    if "area" in ann and not (is_finite_number(ann["area"]) and ann["area"] >= 0):
        _fail(json_path, where, f"'area' must be a finite number >= 0, got {_describe(ann['area'])}")
    if "iscrowd" in ann and ann["iscrowd"] not in (0, 1, True, False):
        _fail(json_path, where, f"'iscrowd' must be 0 or 1, got {_describe(ann['iscrowd'])}")
    bbox = ann.get("bbox")
    if bbox is not None and not (isinstance(bbox, list) and len(bbox) == 4
                                 and all(is_finite_number(v) for v in bbox)):
        _fail(json_path, where, f"'bbox' must be 4 finite numbers, got {_describe(bbox)}")
    keypoints = ann.get("keypoints")
    if keypoints is not None and not (isinstance(keypoints, list) and len(keypoints) == KEYPOINT_VALUES):
        count = len(keypoints) if isinstance(keypoints, list) else _describe(keypoints)
        _fail(json_path, where, f"'keypoints' must be a list of {KEYPOINT_VALUES} numbers, got {count}")


def check_keypoints_finite(annotations, json_path):
    """Every keypoint value of every annotation is a finite number (vectorised; the slow
    per-value search runs only to name the first bad annotation)."""
    with_keypoints = [a for a in annotations if a.get("keypoints") is not None]
    if not with_keypoints:
        return
    try:
        # no dtype: numbers written as text ("12") must not pass by numpy's conversion
        values = np.asarray([a["keypoints"] for a in with_keypoints])
        if values.dtype.kind in "iuf" and np.isfinite(values).all():
            return
    except (TypeError, ValueError):
        pass
    for ann in with_keypoints:
        bad = [v for v in ann["keypoints"] if not is_finite_number(v)]
        if bad:
            _fail(json_path, f"annotation id {ann.get('id')}",
                  f"'keypoints' holds a value that is not a finite number ({_describe(bad[0])})")


#: Fields pycocotools' keypoint COCOeval reads from every ground-truth annotation of the images
#: it evaluates (KeyError there otherwise, after the results were written).
EVALUATION_FIELDS = ("iscrowd", "area", "bbox", "num_keypoints", "keypoints")


def check_evaluation_fields(data, image_ids, json_path="<memory>"):
    """Check, before any evaluation work, what pycocotools' COCOeval needs from a ground truth
    that :func:`validate_coco` accepted (which checks these fields' values only when present):
    a ``categories`` list of objects with integer ids, and every annotation of the images
    ``image_ids`` having :data:`EVALUATION_FIELDS`.

    Raises:
        src.data.coco.AnnotationError: one line naming the file, the record and the field.
    """
    categories = data.get("categories")
    if not isinstance(categories, list) or not categories:
        _fail(json_path, "'categories'", "must be a non-empty list (COCOeval needs it; copy it "
                                         "from person_keypoints_val2017.json)")
    for index, category in enumerate(categories):
        if not isinstance(category, dict) or not _is_int(category.get("id")):
            _fail(json_path, f"categories[{index}]", "must be an object with an integer 'id'")
    wanted = set(image_ids)
    for ann in data["annotations"]:
        if ann.get("image_id") not in wanted:
            continue
        missing = [key for key in EVALUATION_FIELDS if ann.get(key) is None]
        if missing:
            _fail(json_path, f"annotation id {ann.get('id')}",
                  f"has no '{missing[0]}' (COCO keypoint evaluation needs "
                  f"{', '.join(EVALUATION_FIELDS)})")


def validate_coco(data, json_path="<memory>"):
    """Check a parsed COCO keypoints dict (``images`` and ``annotations`` lists already there).

    Raises:
        src.data.coco.AnnotationError: one line naming the file, the record and the problem
        (wrong type, NaN/Inf, wrong length, duplicate image id, an annotation whose image is
        not in ``images``).
    """
    image_ids = set()
    for index, record in enumerate(data["images"]):
        image_id = check_image_record(record, index, json_path)
        if image_id in image_ids:
            _fail(json_path, f"image id {image_id}", "appears twice in 'images'")
        image_ids.add(image_id)
    for index, ann in enumerate(data["annotations"]):
        check_annotation_record(ann, index, image_ids, json_path)
    check_keypoints_finite(data["annotations"], json_path)


def image_size(record, json_path):
    """``(height, width)`` of an image record; a missing or bad value is an AnnotationError."""
    values = []
    for key in ("height", "width"):
        value = record.get(key)
        if not (_is_int(value) and value > 0):
            shown = "missing" if value is None else f"got {_describe(value)}"
            _fail(json_path, f"image id {record.get('id')}",
                  f"'{key}' must be a positive integer ({shown})")
        values.append(int(value))
    return tuple(values)
