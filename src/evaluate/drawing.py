"""Skeleton drawings of decoded people (OpenCV, BGR images)."""
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
