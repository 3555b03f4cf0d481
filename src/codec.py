"""The map contract: how images and network maps relate (the one owner of stride, grid and scale).

* **Stride**: the network sees a (3, H, W) image, H and W multiples of :data:`STRIDE`, and
  returns maps of (H / STRIDE, W / STRIDE) cells.
* **Grid**: for training targets, map cell ``(i, j)`` sits at input pixel
  ``STRIDE * (j + GRID_OFFSET), STRIDE * (i + GRID_OFFSET)`` (the reference's offset).
* **Sigmas**: ``heatmap_sigma`` is the Gaussian sigma of a joint and ``paf_sigma`` the half-width
  of a limb band, both in input pixels; on the map grid they are divided by the stride.
* **Normalisation**: the network's input is ``BGR pixel / input_scale - 0.5``:
  :data:`TRAINED_INPUT_SCALE` (255) for networks trained here, 256 for CMU's Caffe model (a
  checkpoint records its own). Training and inference both go through :func:`normalize_image`.
"""
import cv2
import numpy as np

#: Network output stride (input pixels per map cell).
STRIDE = 8
#: Offset of the map cells in stride units, as in the reference.
GRID_OFFSET = 0.4375
#: Input normalisation of networks trained here: ``pixel / 255 - 0.5``.
TRAINED_INPUT_SCALE = 255.0


def is_valid_side(side):
    """True for a positive multiple of :data:`STRIDE` (an input side the network takes)."""
    return isinstance(side, (int, np.integer)) and side > 0 and side % STRIDE == 0


def check_input_side(side, name="insize"):
    """Raise ValueError unless ``side`` (pixels) is a positive multiple of the stride."""
    if not is_valid_side(side):
        raise ValueError(f"{name} must be a positive multiple of {STRIDE}, got {side}")
    return int(side)


def map_side(side):
    """Map cells along an input side of ``side`` pixels (checked: a multiple of the stride)."""
    return check_input_side(side) // STRIDE


def round_up_to_stride(pixels):
    """The smallest multiple of the stride that is >= ``pixels``."""
    return int(pixels) + (-int(pixels) % STRIDE)


def map_grid(map_h, map_w):
    """Map-cell coordinates in stride units.

    Returns:
        (grid_x (map_w,), grid_y (map_h,)) float64: ``index + GRID_OFFSET``.
    """
    return np.arange(map_w) + GRID_OFFSET, np.arange(map_h) + GRID_OFFSET


def in_cells(pixels):
    """A length in input pixels (a sigma, a coordinate) in map cells."""
    return pixels / STRIDE


def normalize_image(image_bgr, input_scale=TRAINED_INPUT_SCALE):
    """The network's input for a BGR uint8 image.

    Args:
        image_bgr: (H, W, 3) uint8, BGR channel order.
        input_scale: ``pixel / input_scale - 0.5``.

    Returns:
        (3, H, W) float32, BGR channel order; in [-0.5, 0.5] for ``input_scale`` 255.
    """
    out = np.empty((image_bgr.shape[2],) + image_bgr.shape[:2], dtype=np.float32)
    for channel, plane in enumerate(cv2.split(image_bgr)):
        out[channel] = plane
    out /= np.float32(input_scale)
    out -= np.float32(0.5)
    return out
