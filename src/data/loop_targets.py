"""Training targets with per-person, per-joint loops in the reference's style.

Slow; the baseline of scripts/benchmark_data.py (so it lives in src/, which a script may import)
and the independent check of :mod:`src.data.targets` in the tests.
"""
import cv2
import numpy as np

from src.codec import GRID_OFFSET, STRIDE
from src.data.targets import IGNORE_DILATE_KERNEL, _as_poses
from src.skeleton import LIMB_ARRAY, NUM_JOINTS


def _loop_grid(map_h, map_w):
    grid_x = np.tile(np.arange(map_w), (map_h, 1)) + GRID_OFFSET
    grid_y = np.tile(np.arange(map_h), (map_w, 1)).transpose() + GRID_OFFSET
    return grid_x, grid_y


def loop_heatmaps(poses, map_h, map_w, heatmap_sigma, stride=STRIDE):
    """Same result as :func:`src.data.targets.generate_heatmaps`, one full-grid Gaussian per person and joint."""
    poses = _as_poses(poses)
    sigma = heatmap_sigma / stride
    heatmaps = np.zeros((0, map_h, map_w))
    overall = np.zeros((map_h, map_w))
    for joint in range(NUM_JOINTS):
        heatmap = np.zeros((map_h, map_w))
        for pose in poses:
            if pose[joint, 2] > 0:
                x, y = pose[joint, :2] / stride
                grid_x, grid_y = _loop_grid(map_h, map_w)
                gaussian = np.exp(-0.5 * ((grid_x - x) ** 2 + (grid_y - y) ** 2) / sigma ** 2)
                higher = gaussian > heatmap
                heatmap[higher] = gaussian[higher]
                higher = gaussian > overall
                overall[higher] = gaussian[higher]
        heatmaps = np.vstack((heatmaps, heatmap[None]))
    heatmaps = np.vstack((heatmaps, (1 - overall)[None]))
    return heatmaps.astype(np.float32)


def _loop_limb_paf(map_h, map_w, joint_from, joint_to, width):
    if np.array_equal(joint_from, joint_to):
        return np.zeros((2, map_h, map_w))
    length = np.linalg.norm(joint_to - joint_from)
    unit = (joint_to - joint_from) / length
    rad = np.pi / 2
    rotation = np.array([[np.cos(rad), np.sin(rad)], [-np.sin(rad), np.cos(rad)]])
    normal = np.dot(rotation, unit)
    grid_x, grid_y = _loop_grid(map_h, map_w)
    along = unit[0] * (grid_x - joint_from[0]) + unit[1] * (grid_y - joint_from[1])
    across = normal[0] * (grid_x - joint_from[0]) + normal[1] * (grid_y - joint_from[1])
    inside = (along >= 0) & (along <= length) & (np.abs(across) <= width)
    return np.stack((inside, inside)) * np.broadcast_to(unit, (map_h, map_w, 2)).transpose(2, 0, 1)


def loop_pafs(poses, map_h, map_w, paf_sigma, stride=STRIDE, limbs=LIMB_ARRAY):
    """Same result as :func:`src.data.targets.generate_pafs`, one full-grid band per person and limb."""
    poses = _as_poses(poses)
    pafs = np.zeros((0, map_h, map_w))
    for limb in np.asarray(limbs):
        paf = np.zeros((2, map_h, map_w))
        counts = np.zeros((2, map_h, map_w))
        for pose in poses:
            joint_from, joint_to = pose[limb]
            if joint_from[2] > 0 and joint_to[2] > 0:
                limb_paf = _loop_limb_paf(map_h, map_w, joint_from[:2] / stride,
                                          joint_to[:2] / stride, paf_sigma / stride)
                nonzero = limb_paf != 0
                counts += np.broadcast_to(nonzero[0] | nonzero[1], limb_paf.shape)
                paf += limb_paf
        covered = counts > 0
        paf[covered] /= counts[covered]
        pafs = np.vstack((pafs, paf))
    return pafs.astype(np.float32)


def loop_loss_mask(ignore_mask, map_h, map_w, kernel_size=IGNORE_DILATE_KERNEL):
    """Same result as :func:`src.data.targets.loss_mask_from_ignore`, the reference's calls (morphologyEx)."""
    dilated = cv2.morphologyEx(np.asarray(ignore_mask).astype(np.uint8), cv2.MORPH_DILATE,
                               np.ones((kernel_size, kernel_size))).astype(bool)
    return 1.0 - cv2.resize(dilated.astype(np.float32), (map_w, map_h))
