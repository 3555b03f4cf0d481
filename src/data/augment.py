"""Training augmentation, as the reference: random scale, rotation, crop, colour and flip.

The reference applies resize -> rotate -> crop -> (colour) -> (flip) -> resize to ``insize`` as
separate image operations. Every geometric step is an affine map, so :func:`augment` draws the
same random numbers in the same order, composes the maps and warps image and mask once, straight
into the ``insize`` x ``insize`` output. Joints are transformed with the same matrix in float
(the reference truncated them to integers), so image, mask and joints stay aligned to
sub-pixel accuracy. Coordinates are pixel indices (pixel centres at integers), the convention of
``cv2.warpAffine``.

The random state is explicit: pass a ``numpy.random.Generator`` (or a ``RandomState``); nothing
touches the global generators.

Each step is also available on its own (``random_resize``, ``random_rotate``, ``random_crop``,
``distort_color``, ``flip``) for testing and visualisation.
"""
import math
from dataclasses import dataclass

import cv2
import numpy as np

from src.skeleton import FLIP_JOINTS

#: Grey used for the border of rotated / cropped images (the reference's 127.5).
BORDER_GREY = 127.5


#: AugmentParams fields that are configuration keys (default_config.yaml holds their defaults).
CONFIG_FIELDS = ("insize", "min_box_size", "max_box_size", "min_scale", "max_scale",
                 "max_rotate_degree", "center_perterb_max")


@dataclass(frozen=True)
class AugmentParams:
    """Augmentation settings; the first seven are configuration keys of the reference.

    Build it with :meth:`from_config` (the values of the configuration keys come from there
    only); the last three are not configuration keys and keep their defaults here.

    Attributes:
        insize: output side in pixels.
        min_box_size, max_box_size: people's joint-box diagonals after scaling are pushed
            towards [min_box_size, max_box_size] pixels.
        min_scale, max_scale: limits of the random scale factor.
        max_rotate_degree: the rotation angle is N(0, 1) * max_rotate_degree / 3 degrees.
        center_perterb_max: crop-centre jitter, uniform in +-this many pixels per axis.
        color_prob: probability of the HSV colour distortion.
        flip_prob: probability of the horizontal flip.
        interpolation: OpenCV interpolation of the single composed image warp. Bilinear by
            default: the reference resized bilinearly and rotated bicubically, but one bicubic
            warp costs about 3x a bilinear one and the image is interpolated only once here.
    """

    insize: int
    min_box_size: float
    max_box_size: float
    min_scale: float
    max_scale: float
    max_rotate_degree: float
    center_perterb_max: float
    color_prob: float = 0.5
    flip_prob: float = 0.5
    interpolation: int = cv2.INTER_LINEAR

    @classmethod
    def from_config(cls, cfg, **overrides):
        """The configuration's values of :data:`CONFIG_FIELDS`, then ``overrides`` (any field).

        Args:
            cfg: a :class:`src.config.Config` (e.g. :func:`src.config.default_config`).
        """
        values = {name: getattr(cfg, name) for name in CONFIG_FIELDS}
        values.update(overrides)
        return cls(**values)


# ----------------------------------------------------------------------------- random helpers
def _uniform(rng):
    return float(rng.random())


def _normal(rng):
    return float(rng.standard_normal())


def _integer(rng, high):
    """Uniform integer in [0, high)."""
    if hasattr(rng, "integers"):
        return int(rng.integers(high))
    return int(rng.randint(high))


def _uniform2(rng):
    return np.asarray(rng.random(2), dtype=np.float64)


# ----------------------------------------------------------------------------- geometry helpers
def pose_bboxes(poses):
    """Boxes of the labelled (visibility > 0) joints of each person.

    Args:
        poses: (P, 18, 3).

    Returns:
        (P, 4) float64 x1, y1, x2, y2; NaN for a person with no labelled joint.
    """
    poses = np.asarray(poses, dtype=np.float64)
    labelled = poses[:, :, 2] > 0
    xs = np.where(labelled, poses[:, :, 0], np.nan)
    ys = np.where(labelled, poses[:, :, 1], np.nan)
    boxes = np.full((len(poses), 4), np.nan)
    has = labelled.any(axis=1)
    if has.any():
        boxes[has] = np.stack([np.nanmin(xs[has], 1), np.nanmin(ys[has], 1),
                               np.nanmax(xs[has], 1), np.nanmax(ys[has], 1)], axis=1)
    return boxes


def transform_poses(poses, matrix):
    """Apply a 2x3 or 3x3 affine matrix to the joints' x, y (visibility is kept).

    Returns:
        (P, 18, 3) float64.
    """
    out = np.array(poses, dtype=np.float64, copy=True)
    matrix = np.asarray(matrix, dtype=np.float64)[:2]
    out[..., :2] = out[..., :2] @ matrix[:, :2].T + matrix[:, 2]
    return out


def _to3(matrix):
    full = np.eye(3)
    full[:2] = matrix[:2]
    return full


def warp(image, mask, matrix, size, interpolation=cv2.INTER_LINEAR):
    """Warp an image and its ignore mask with one affine map.

    Args:
        image: (H, W, 3) uint8 BGR.
        mask: (H, W) uint8/bool, nonzero = ignore, or None.
        matrix: 2x3 or 3x3 map from source to destination pixel coordinates.
        size: (width, height) of the output.

    Returns:
        image (h, w, 3) uint8 with grey borders, mask (h, w) uint8 0/1 (any overlap with an
        ignored source pixel counts as ignored) or None.
    """
    m = np.asarray(matrix, dtype=np.float64)[:2]
    size = (int(size[0]), int(size[1]))
    out = cv2.warpAffine(image, m, size, flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(BORDER_GREY,) * 3)
    if mask is None:
        return out, None
    mask = np.asarray(mask)
    if not mask.any():
        return out, np.zeros(size[::-1], dtype=np.uint8)
    warped = cv2.warpAffine((mask != 0).astype(np.uint8) * 255, m, size, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out, (warped > 0).astype(np.uint8)


# ----------------------------------------------------------------------------- step matrices
def scale_matrix(poses, width, height, params, rng):
    """Draw the random scale (one uniform number).

    The scale is uniform in [lo, hi] with lo = clip(min_box_size / smallest box diagonal,
    min_scale, 1) and hi = clip(max_box_size / largest box diagonal, 1, max_scale); box
    diagonals are those of the labelled joints, ``+1`` pixel per side as in the reference.

    Returns:
        (3x3 matrix, (new_width, new_height)); the per-axis factors are
        ``round(width * scale) / width`` and ``round(height * scale) / height``.
    """
    boxes = pose_bboxes(poses)
    boxes = boxes[~np.isnan(boxes[:, 0])]
    u = _uniform(rng)
    if len(boxes):
        sizes = np.sqrt(((boxes[:, 2:] - boxes[:, :2] + 1) ** 2).sum(axis=1))
        low = params.min_box_size / sizes.min()
        high = params.max_box_size / sizes.max()
    else:
        low, high = params.min_scale, params.max_scale
    low = min(max(low, params.min_scale), 1)
    high = min(max(high, 1), params.max_scale)
    scale = (high - low) * u + low
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    return np.diag([new_w / width, new_h / height, 1.0]), (new_w, new_h)


def rotation_matrix(width, height, max_rotate_degree, rng):
    """Draw the random rotation (one normal number) about the image centre.

    The canvas grows to hold the whole rotated image, as in the reference.

    Returns:
        (3x3 matrix, (canvas_width, canvas_height)).
    """
    degree = _normal(rng) / 3 * max_rotate_degree
    rad = math.radians(degree)
    center = (width / 2, height / 2)
    matrix = _to3(cv2.getRotationMatrix2D(center, degree, 1))
    box_w = width * abs(math.cos(rad)) + height * abs(math.sin(rad))
    box_h = width * abs(math.sin(rad)) + height * abs(math.cos(rad))
    matrix[0, 2] += box_w / 2 - center[0]
    matrix[1, 2] += box_h / 2 - center[1]
    return matrix, (int(box_w + 0.5), int(box_h + 0.5))


def crop_matrix(poses, width, height, insize, center_perterb_max, rng):
    """Draw the random crop (a person index and two uniform numbers).

    The crop of side ``insize`` is centred on a random person's joint-box centre jittered by
    up to ``center_perterb_max`` pixels per axis (integer pixel offsets, as in the reference).

    Returns:
        (3x3 translation matrix, (insize, insize)).
    """
    boxes = pose_bboxes(poses)
    boxes = boxes[~np.isnan(boxes[:, 0])]
    if len(boxes):
        box = boxes[_integer(rng, len(boxes))]
        box_center = box[:2] + (box[2:] - box[:2]) / 2
    else:
        box_center = np.array([width / 2, height / 2])
    perturb = (_uniform2(rng) - 0.5) * 2 * center_perterb_max
    center = np.trunc(box_center + perturb + 0.5)
    offset = np.trunc(center - (insize - 1) / 2 + 0.5)
    matrix = np.eye(3)
    matrix[:2, 2] = -offset
    return matrix, (insize, insize)


def flip_matrix(width):
    """Horizontal mirror of an image ``width`` pixels wide: x -> width - 1 - x."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def flip_joints(poses):
    """Swap left and right joints (after mirroring the coordinates)."""
    return np.asarray(poses)[:, list(FLIP_JOINTS)]


# ----------------------------------------------------------------------------- colour
def color_luts(rng):
    """Draw the HSV shifts (hue +-10, saturation +-40, value +-30) as lookup tables.

    Hue wraps around OpenCV's 0..179 range (the reference clipped it at 255, which made
    invalid hues); saturation and value are clipped to 0..255.

    Returns:
        (1, 256, 3) uint8 table for ``cv2.LUT`` on an HSV image.
    """
    hue = _integer(rng, 21) - 10
    sat = _integer(rng, 81) - 40
    val = _integer(rng, 61) - 30
    levels = np.arange(256)
    lut = np.stack([(levels + hue) % 180, np.clip(levels + sat, 0, 255),
                    np.clip(levels + val, 0, 255)], axis=1).astype(np.uint8)
    return lut[None]


def distort_color(image, rng):
    """Random HSV shift of a BGR uint8 image (always applied; :func:`augment` flips a coin)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hsv = cv2.LUT(hsv, color_luts(rng))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


# ----------------------------------------------------------------------------- single steps
def random_resize(image, mask, poses, params, rng):
    """Random scale step alone. Returns (image, mask, poses)."""
    height, width = image.shape[:2]
    matrix, size = scale_matrix(poses, width, height, params, rng)
    image, mask = warp(image, mask, matrix, size, cv2.INTER_LINEAR)
    return image, mask, transform_poses(poses, matrix)


def random_rotate(image, mask, poses, params, rng):
    """Random rotation step alone (canvas grows). Returns (image, mask, poses)."""
    height, width = image.shape[:2]
    matrix, size = rotation_matrix(width, height, params.max_rotate_degree, rng)
    image, mask = warp(image, mask, matrix, size, params.interpolation)
    return image, mask, transform_poses(poses, matrix)


def random_crop(image, mask, poses, params, rng):
    """Random ``insize`` crop step alone (grey outside the image). Returns (image, mask, poses)."""
    height, width = image.shape[:2]
    matrix, size = crop_matrix(poses, width, height, params.insize, params.center_perterb_max,
                               rng)
    image, mask = warp(image, mask, matrix, size, cv2.INTER_NEAREST)
    return image, mask, transform_poses(poses, matrix)


def flip(image, mask, poses):
    """Horizontal flip with the left/right joint swap. Returns (image, mask, poses)."""
    matrix = flip_matrix(image.shape[1])
    image = cv2.flip(image, 1)
    if mask is not None:
        mask = cv2.flip(np.ascontiguousarray(mask), 1)
    return image, mask, flip_joints(transform_poses(poses, matrix))


# ----------------------------------------------------------------------------- whole chain
def augment_matrix(poses, width, height, params, rng):
    """Draw all geometric randomness of one sample, in the reference's order.

    Returns:
        (3x3 matrix from source pixels to output pixels, flipped, hsv_lut or None); draws
        scale, rotation, crop, colour coin (+ shifts), flip coin.
    """
    scale, (w, h) = scale_matrix(poses, width, height, params, rng)
    matrix = scale
    rotate, (w, h) = rotation_matrix(w, h, params.max_rotate_degree, rng)
    matrix = rotate @ matrix
    crop, _ = crop_matrix(transform_poses(poses, matrix), w, h, params.insize,
                          params.center_perterb_max, rng)
    matrix = crop @ matrix
    lut = None
    if _uniform(rng) < params.color_prob:
        lut = color_luts(rng)
    flipped = _uniform(rng) < params.flip_prob
    if flipped:
        matrix = flip_matrix(params.insize) @ matrix
    return matrix, flipped, lut


def augment(image, mask, poses, params, rng):
    """The full training augmentation of one sample.

    Args:
        image: (H, W, 3) uint8 BGR.
        mask: (H, W) nonzero = ignore (or None for nothing ignored).
        poses: (P, 18, 3) joints x, y (pixels) and visibility.
        params: :class:`AugmentParams`.
        rng: ``numpy.random.Generator`` or ``RandomState``.

    Returns:
        image (insize, insize, 3) uint8, mask (insize, insize) uint8 0/1,
        poses (P, 18, 3) float64 in output pixels (left/right swapped when flipped).
    """
    height, width = image.shape[:2]
    if mask is None:
        mask = np.zeros((height, width), dtype=np.uint8)
    matrix, flipped, lut = augment_matrix(poses, width, height, params, rng)
    out, out_mask = warp(image, mask, matrix, (params.insize, params.insize),
                         params.interpolation)
    if lut is not None:
        out = cv2.cvtColor(cv2.LUT(cv2.cvtColor(out, cv2.COLOR_BGR2HSV), lut),
                           cv2.COLOR_HSV2BGR)
    out_poses = transform_poses(poses, matrix)
    if flipped:
        out_poses = flip_joints(out_poses)
    return out, out_mask, out_poses
