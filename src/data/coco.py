"""Reading COCO person-keypoint annotations, images and ignore masks.

Nothing here depends on pycocotools' ``COCO`` class (which prints while loading); the index is
built directly from the JSON. Poses are returned in our 18-joint order (``src.skeleton``) with
the neck added the way the reference does it.
"""
import json
import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from src.data.annotation_checks import AnnotationError, validate_coco
from src.errors import OpenPoseError
from src.skeleton import NUM_COCO_KEYPOINTS, NUM_JOINTS, coco_to_ours

#: The reference's rule for which people are trained on, used by these functions when called
#: without values; the commands take min_keypoints / min_area from default_config.yaml (a test
#: keeps the two equal).
DEFAULT_MIN_KEYPOINTS = 5
DEFAULT_MIN_AREA = 1024


class ImageReadError(OpenPoseError, IOError):
    """An image or mask file could not be read."""


class ImageSizeError(ImageReadError):
    """An image whose pixel size contradicts the ``width`` / ``height`` of its annotation record
    (another file under that name, or one rotated or resized after it was annotated)."""

    #: how eval.py counts it when it skips such an image
    skip_reason = "not of the annotated size"


#: How images are decoded: colour BGR, *as stored*. COCO's keypoints, boxes, ``width`` and
#: ``height`` are in the stored pixel orientation; OpenCV's default would apply an EXIF
#: Orientation tag and hand back a rotated image that no annotation fits.
IMREAD_STORED = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


@dataclass
class CocoKeypoints:
    """An indexed COCO person-keypoints annotation file.

    Attributes:
        path: the JSON file.
        images: image id -> the image record (``file_name``, ``width``, ``height``, ...).
        annotations: image id -> list of its annotation records (file order).
        person_category_ids: ids of the ``person`` category (all categories if none is named so).
        dataset: the parsed JSON (for pycocotools, so the file is parsed once).
    """

    path: str
    images: dict
    annotations: dict = field(default_factory=dict)
    person_category_ids: tuple = ()
    dataset: dict = field(default=None, repr=False)

    def image_ids_with_people(self):
        """Sorted ids of images that have at least one person annotation (crowds included)."""
        return sorted(image_id for image_id, anns in self.annotations.items()
                      if image_id in self.images and any(
                          a.get("category_id") in self.person_category_ids for a in anns))

    def person_annotations(self, image_id):
        """Person annotations of one image (crowds included), in file order."""
        return [a for a in self.annotations.get(image_id, [])
                if a.get("category_id") in self.person_category_ids]


def load_coco(json_path):
    """Load and index a COCO person-keypoints annotation file.

    Raises:
        AnnotationError: one line naming the file when it is missing, unreadable, not JSON or
            lacks the COCO ``images`` / ``annotations`` lists.
    """
    json_path = os.fspath(json_path)
    try:
        with open(json_path, encoding="utf-8") as stream:
            data = json.load(stream)
    except FileNotFoundError:
        raise AnnotationError(f"{json_path}: annotation file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{json_path}: cannot read annotation file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"{json_path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return index_coco(data, json_path)


def index_coco(data, json_path="<memory>"):
    """Index an already-parsed COCO dict (see :func:`load_coco`); its records are validated
    first (:func:`src.data.annotation_checks.validate_coco`)."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or \
            not isinstance(data.get("annotations"), list):
        raise AnnotationError(f"{json_path}: not a COCO annotation file "
                              "(expected an object with 'images' and 'annotations' lists)")
    validate_coco(data, json_path)
    try:
        images = {int(img["id"]): img for img in data["images"]}
        categories = data.get("categories") or []
        person_ids = tuple(int(c["id"]) for c in categories if c.get("name") == "person")
        if not person_ids:
            person_ids = tuple(int(c["id"]) for c in categories) or \
                tuple(sorted({int(a["category_id"]) for a in data["annotations"]}))
        annotations = {}
        for ann in data["annotations"]:
            annotations.setdefault(int(ann["image_id"]), []).append(ann)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationError(
            f"{json_path}: malformed COCO record (missing or bad {exc})") from None
    return CocoKeypoints(json_path, images, annotations, person_ids, dataset=data)


def is_valid_person(ann, min_keypoints=DEFAULT_MIN_KEYPOINTS, min_area=DEFAULT_MIN_AREA):
    """True for a non-crowd person used for training: enough keypoints and large enough."""
    return (not ann.get("iscrowd", 0) and ann.get("num_keypoints", 0) >= min_keypoints
            and ann.get("area", 0) > min_area)


def valid_person_annotations(coco, image_id, min_keypoints=DEFAULT_MIN_KEYPOINTS,
                             min_area=DEFAULT_MIN_AREA):
    """The training people of one image (file order)."""
    return [a for a in coco.person_annotations(image_id)
            if is_valid_person(a, min_keypoints, min_area)]


def training_image_ids(coco, min_keypoints=DEFAULT_MIN_KEYPOINTS, min_area=DEFAULT_MIN_AREA):
    """Sorted ids of images with at least one training person."""
    return [i for i in coco.image_ids_with_people()
            if valid_person_annotations(coco, i, min_keypoints, min_area)]


def annotations_to_poses(annotations, json_path="<annotations>"):
    """COCO keypoints of several people as our 18 joints.

    Args:
        annotations: list of COCO annotation dicts with 51-value ``keypoints``.

    Returns:
        (P, 18, 3) float32 x, y, visibility; the neck is the truncated shoulder midpoint with
        visibility 2 when both shoulders are labelled.
    """
    if not annotations:
        return np.zeros((0, NUM_JOINTS, 3), dtype=np.float32)
    try:
        coco = np.array([a["keypoints"] for a in annotations], dtype=np.float64)
        coco = coco.reshape(len(annotations), NUM_COCO_KEYPOINTS, 3)
    except (KeyError, ValueError) as exc:
        raise AnnotationError(f"{json_path}: bad 'keypoints' in an annotation ({exc})") from None
    return coco_to_ours(coco).astype(np.float32)


def image_path(coco, image_id, image_dir):
    """Path of an image file: ``image_dir / file_name``."""
    return os.path.join(image_dir, coco.images[image_id]["file_name"])


def mask_path(mask_dir, image_id):
    """Path of an ignore mask: ``mask_dir / {image_id:012d}.png``."""
    return os.path.join(mask_dir, f"{int(image_id):012d}.png")


def read_image(path, expected_size=None):
    """Read a colour image as stored (:data:`IMREAD_STORED`: EXIF orientation ignored) as BGR
    uint8 (H, W, 3).

    Args:
        path: the image file.
        expected_size: ``(height, width)`` its annotation record gives, or None (not checked).

    Raises:
        ImageReadError: naming the file when it is missing or cannot be decoded;
        ImageSizeError: its size is not ``expected_size``.
    """
    path = os.fspath(path)
    image = cv2.imread(path, IMREAD_STORED)
    if image is None:
        reason = "file not found" if not os.path.exists(path) else "cannot decode image"
        raise ImageReadError(f"{path}: {reason}")
    if expected_size is not None and tuple(image.shape[:2]) != tuple(expected_size):
        height, width = image.shape[:2]
        raise ImageSizeError(f"{path}: image is {width}x{height} pixels but its annotation says "
                             f"{expected_size[1]}x{expected_size[0]} (width x height): another "
                             "file, or rotated or resized after it was annotated")
    return image


def annotated_size(coco, image_id):
    """``(height, width)`` of an image from its annotation record, None when it gives none
    (both are optional in COCO files; they are positive integers when present)."""
    record = coco.images.get(image_id, {})
    if "height" in record and "width" in record:
        return int(record["height"]), int(record["width"])
    return None


def read_ignore_mask(path, shape):
    """Read an ignore mask (255 = ignore); a missing file means nothing is ignored.

    Args:
        path: PNG path (may be None or missing).
        shape: (H, W) of the image the mask belongs to.

    Returns:
        (H, W) uint8, 1 = ignore, 0 = use.

    Raises:
        ImageReadError: the file exists but cannot be decoded or its size differs from ``shape``.
    """
    if path is None or not os.path.exists(path):
        return np.zeros(tuple(shape[:2]), dtype=np.uint8)
    mask = cv2.imread(os.fspath(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ImageReadError(f"{path}: cannot decode mask image")
    if mask.shape != tuple(shape[:2]):
        raise ImageReadError(f"{path}: mask size {mask.shape[1]}x{mask.shape[0]} differs from "
                             f"the image's {shape[1]}x{shape[0]}")
    return (mask > 0).astype(np.uint8)
