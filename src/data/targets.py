"""Training targets at stride 8: joint heatmaps, part affinity fields and the loss mask.

All functions take poses in input-image pixels (the augmented ``insize`` x ``insize`` image) and
return maps on the ``insize // 8`` grid. Map cell ``(i, j)`` sits at input coordinate
``8 * (j + 0.4375), 8 * (i + 0.4375)`` (the reference's grid offset), joint coordinates and the
widths are divided by the stride. Everything is vectorised over people, joints and limbs; the
values are the reference's ``generate_heatmaps_fast`` / ``generate_pafs_fast`` to float32
precision.
"""
import cv2
import numpy as np

from src.codec import GRID_OFFSET, in_cells, map_grid, map_side
from src.skeleton import LIMB_ARRAY, NUM_JOINTS

#: Side of the square kernel that dilates the ignore mask (input pixels).
IGNORE_DILATE_KERNEL = 16


def _as_poses(poses):
    """Return poses as a float64 (P, 18, 3) array (an empty one when there are none)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.size == 0:
        return np.zeros((0, NUM_JOINTS, 3), dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"poses must have shape (P, {NUM_JOINTS}, 3), got {poses.shape}")
    return poses


def generate_heatmaps(poses, map_h, map_w, heatmap_sigma):
    """Gaussian joint heatmaps plus the background channel.

    Args:
        poses: (P, 18, 3) joints x, y (input pixels) and visibility; joints with
            visibility <= 0 are skipped.
        map_h, map_w: output map size (``insize // 8``).
        heatmap_sigma: Gaussian sigma in input pixels (7 in the reference).

    Returns:
        (19, map_h, map_w) float32: channel j is the max over people of
        ``exp(-d^2 / (2 (sigma/stride)^2))`` for joint j; channel 18 is 1 - max over all joints.
    """
    poses = _as_poses(poses)
    grid_x, grid_y = map_grid(map_h, map_w)
    sigma = in_cells(heatmap_sigma)
    xy = in_cells(poses[:, :, :2])                                  # (P, 18, 2)
    visible = poses[:, :, 2] > 0                                    # (P, 18)
    # The 2-D Gaussian is separable: exp(-(dx^2 + dy^2) / 2s^2) = gx(x) * gy(y).
    gauss_x = np.exp(-0.5 * (grid_x[None, None, :] - xy[:, :, 0:1]) ** 2 / sigma ** 2)
    gauss_y = np.exp(-0.5 * (grid_y[None, None, :] - xy[:, :, 1:2]) ** 2 / sigma ** 2)
    gauss_x *= visible[:, :, None]
    heat = gauss_y[:, :, :, None] * gauss_x[:, :, None, :]          # (P, 18, H, W)
    heatmaps = np.zeros((NUM_JOINTS + 1, map_h, map_w), dtype=np.float64)
    if len(poses):
        heatmaps[:NUM_JOINTS] = heat.max(axis=0)
    heatmaps[NUM_JOINTS] = 1.0 - heatmaps[:NUM_JOINTS].max(axis=0)
    return heatmaps.astype(np.float32)


def generate_pafs(poses, map_h, map_w, paf_sigma, limbs=LIMB_ARRAY):
    """Constant-width part affinity fields, averaged where people overlap.

    For each limb (a -> b) of each person whose two joints are visible (> 0) and distinct, every
    cell whose centre projects onto the segment (0 <= u.(p - a) <= |b - a|) and lies within
    ``paf_sigma / stride`` of its line gets the unit vector u = (b - a) / |b - a|. Where several
    people's limbs cover a cell, the vectors are averaged.

    Args:
        poses: (P, 18, 3) joints x, y (input pixels) and visibility.
        map_h, map_w: output map size.
        paf_sigma: half-width of the limb band in input pixels (8 in the reference).
        limbs: (L, 2) joint index pairs; limb i fills channels 2i (x) and 2i+1 (y).

    Returns:
        (2L, map_h, map_w) float32.
    """
    poses = _as_poses(poses)
    limbs = np.asarray(limbs)
    num_limbs = len(limbs)
    width = in_cells(paf_sigma)
    joint_from = poses[:, limbs[:, 0]].reshape(-1, 3)               # (P*L, 3), limb-minor
    joint_to = poses[:, limbs[:, 1]].reshape(-1, 3)
    limb_index = np.tile(np.arange(num_limbs), len(poses))
    active = (joint_from[:, 2] > 0) & (joint_to[:, 2] > 0) & np.any(
        joint_from[:, :2] != joint_to[:, :2], axis=-1)
    if not active.any():
        return np.zeros((2 * num_limbs, map_h, map_w), dtype=np.float32)
    start = in_cells(joint_from[active, :2])                        # (N, 2) in cells
    end = in_cells(joint_to[active, :2])
    limb_index = limb_index[active]
    delta = end - start
    length = np.sqrt(delta[:, 0] * delta[:, 0] + delta[:, 1] * delta[:, 1])
    unit = delta / length[:, None]
    # The reference rotates u by +90 degrees with a float rotation matrix; keep its rounding.
    rad = np.pi / 2
    cos_r, sin_r = np.cos(rad), np.sin(rad)
    normal = np.stack([cos_r * unit[:, 0] + sin_r * unit[:, 1],
                       -sin_r * unit[:, 0] + cos_r * unit[:, 1]], axis=1)

    # Each limb only touches cells near its segment: evaluate a window around it (a margin of
    # one cell beyond the band), padded to a common size so that all limbs run at once.
    low = np.floor(np.minimum(start, end) - width - GRID_OFFSET) - 1
    high = np.ceil(np.maximum(start, end) + width - GRID_OFFSET) + 1
    low = np.clip(low, 0, [map_w - 1, map_h - 1]).astype(np.int64)
    high = np.clip(high, 0, [map_w - 1, map_h - 1]).astype(np.int64)
    win_w, win_h = (high - low).max(axis=0) + 1
    cols = low[:, 0:1] + np.arange(win_w)                           # (N, win_w)
    rows = low[:, 1:2] + np.arange(win_h)                           # (N, win_h)
    dx = (cols + GRID_OFFSET - start[:, 0:1])[:, None, :]           # (N, 1, win_w)
    dy = (rows + GRID_OFFSET - start[:, 1:2])[:, :, None]           # (N, win_h, 1)
    along = unit[:, 0, None, None] * dx + unit[:, 1, None, None] * dy
    across = normal[:, 0, None, None] * dx + normal[:, 1, None, None] * dy
    band = (along >= 0) & (along <= length[:, None, None]) & (np.abs(across) <= width)
    band &= (cols < map_w)[:, None, :] & (rows < map_h)[:, :, None]

    n_idx, r_idx, c_idx = np.nonzero(band)
    # Scatter into the (L, 2, H, W) layout: x at channel 2i, y at 2i + 1.
    plane = map_h * map_w
    flat_x = (limb_index[n_idx] * 2 * map_h + rows[n_idx, r_idx]) * map_w + cols[n_idx, c_idx]
    size = 2 * num_limbs * plane
    sums = np.bincount(np.concatenate([flat_x, flat_x + plane]),
                       weights=np.concatenate([unit[n_idx, 0], unit[n_idx, 1]]), minlength=size)
    count = np.bincount(flat_x, minlength=size).reshape(num_limbs, 2, plane)[:, :1]
    pafs = sums.reshape(num_limbs, 2, plane) / np.maximum(count, 1)
    return pafs.reshape(2 * num_limbs, map_h, map_w).astype(np.float32)


def loss_mask_from_ignore(ignore_mask, map_h, map_w, kernel_size=IGNORE_DILATE_KERNEL):
    """Loss mask on the map grid from an input-resolution ignore mask.

    The ignore mask is dilated with a ``kernel_size`` square of ones (OpenCV's default centred
    anchor), bilinearly resized to the map size, and inverted.

    Args:
        ignore_mask: (insize, insize) bool/uint8/float, nonzero = ignore.
        map_h, map_w: output size (``insize // 8``).

    Returns:
        (map_h, map_w) float32 in [0, 1]: 1 where the loss counts, 0 where it is ignored.
    """
    ignore = (np.asarray(ignore_mask) != 0).astype(np.uint8)
    if ignore.any():
        kernel = np.ones((kernel_size, kernel_size), dtype=np.uint8)
        ignore = cv2.dilate(ignore, kernel)
        resized = cv2.resize(ignore.astype(np.float32), (map_w, map_h))
    else:
        resized = np.zeros((map_h, map_w), dtype=np.float32)
    return (1.0 - resized).astype(np.float32)


def generate_targets(poses, ignore_mask, insize, heatmap_sigma, paf_sigma):
    """All targets of one training sample.

    Args:
        poses: (P, 18, 3) joints in the ``insize`` x ``insize`` input.
        ignore_mask: (insize, insize) nonzero = ignore.
        insize: input side in pixels.
        heatmap_sigma, paf_sigma: in input pixels.

    Returns:
        pafs (38, s, s), heatmaps (19, s, s), loss_mask (s, s), all float32, s = insize // 8.
    """
    size = map_side(insize)
    heatmaps = generate_heatmaps(poses, size, size, heatmap_sigma)
    pafs = generate_pafs(poses, size, size, paf_sigma)
    loss_mask = loss_mask_from_ignore(ignore_mask, size, size)
    return pafs, heatmaps, loss_mask
