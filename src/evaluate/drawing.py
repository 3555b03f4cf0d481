"""Skeleton drawings of decoded people (OpenCV, BGR images), and the drawings' file names."""
from pathlib import PurePath

import cv2
import numpy as np

from src.skeleton import EAR_SHOULDER_LIMBS, JOINT_COLORS, LIMB_ARRAY, LIMB_COLORS, NUM_JOINTS


def line_thickness(image_shape):
    """Limb line thickness in pixels for an image: 2 at 480 px on the short side, at least 1."""
    return max(1, int(round(min(image_shape[:2]) / 240)))


def draw_poses(image_bgr, poses, thickness=None, joint_radius=None, copy=True):
    """Draw people's limbs and joints on a BGR image.

    Limbs whose two joints are both found are drawn with ``LIMB_COLORS`` (the ear-shoulder
    helper limbs are skipped), then every found joint as a filled circle of ``JOINT_COLORS``.

    Args:
        image_bgr: (H, W, 3) uint8 BGR image.
        poses: (N, 18, 3) x, y in image pixels and visibility (> 0: found).
        thickness: limb line width in pixels (default: scaled to the image size).
        joint_radius: joint circle radius in pixels (default: thickness + 1).
        copy: draw on a copy (default) instead of in place.

    Returns:
        The drawn (H, W, 3) uint8 image.
    """
    image = np.asarray(image_bgr)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 BGR, got {image.shape} {image.dtype}")
    if copy:
        image = image.copy()
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
    thickness = line_thickness(image.shape) if thickness is None else int(thickness)
    joint_radius = thickness + 1 if joint_radius is None else int(joint_radius)
    points = np.rint(poses[:, :, :2]).astype(np.int64)
    found = poses[:, :, 2] > 0
    for person, visible in zip(points, found):
        for limb, (ja, jb) in enumerate(LIMB_ARRAY.tolist()):
            if limb in EAR_SHOULDER_LIMBS or not (visible[ja] and visible[jb]):
                continue
            cv2.line(image, tuple(int(v) for v in person[ja]), tuple(int(v) for v in person[jb]),
                     LIMB_COLORS[limb], thickness, cv2.LINE_AA)
    for person, visible in zip(points, found):
        for joint in np.flatnonzero(visible):
            cv2.circle(image, tuple(int(v) for v in person[joint]), joint_radius,
                       JOINT_COLORS[joint], -1, cv2.LINE_AA)
    return image


def drawing_names(file_names, suffix=".png"):
    """File names of the drawings of input images, one naming scheme for eval.py and infer.py.

    The drawing of ``<stem>.<ext>`` is ``<stem>_<ext><suffix>`` (``000000000785.jpg`` ->
    ``000000000785_jpg.png``), so ``gray.jpg`` and ``gray.png`` get distinct drawings; the few
    names that still collide within a run (the same file name in two sub-folders of a COCO set)
    get ``_2``, ``_3`` ... in the order given, so every rank of a distributed run that computes
    them over the same list agrees.

    Args:
        file_names: the inputs' names or paths (only the last component is used), in run order.
        suffix: the drawings' suffix (picks the image format).

    Returns:
        list of file names (no folder), one per input, all distinct.
    """
    names, used = [], set()
    for file_name in file_names:
        path = PurePath(str(file_name))
        base = f"{path.stem}_{path.suffix[1:]}" if path.suffix else path.name
        name, count = f"{base}{suffix}", 1
        while name.lower() in used:      # lower: distinct on case-insensitive disks too
            count += 1
            name = f"{base}_{count}{suffix}"
        used.add(name.lower())
        names.append(name)
    return names
