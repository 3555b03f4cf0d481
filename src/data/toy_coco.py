"""A seeded synthetic COCO person-keypoints dataset of stick figures.

Each image has 1-3 large articulated figures (40-90% of the image height) facing the camera,
with human proportions and random joint angles, drawn back to front as tapered limbs with dark
outlines, a torso, a head (eyes and nose show the facing), over a textured background (gradient,
smooth noise, random shapes and lines). Some images add small unlabelled figures
(``num_keypoints`` 0), a crowd region (``iscrowd`` 1, RLE) or a figure cut by the border (few
keypoints). Annotations follow COCO: 17 keypoints (x, y, v; v = 2 visible, 1 hidden behind a
later figure, 0 out of the image with x = y = 0), ``num_keypoints``, visible-region polygons
(``cv2.findContours``), ``area`` and ``bbox``.

Everything is a pure function of the seed. Used by ``scripts/make_toy_coco.py``, the
quickstart and the tests. The figures themselves (pose geometry, drawing) are in
:mod:`src.data.toy_figures`.
"""
import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from src.data.toy_figures import draw_figure, random_colors, random_pose
from src.runtime.atomic_write import write_image, write_json
from src.skeleton import COCO_KEYPOINT_NAMES, COCO_SKELETON, NUM_COCO_KEYPOINTS

PERSON_CATEGORY = {"id": 1, "name": "person", "supercategory": "person",
                   "keypoints": list(COCO_KEYPOINT_NAMES), "skeleton": [list(p) for p in COCO_SKELETON]}

@dataclass(frozen=True)
class ToyOptions:
    """Knobs of the generator (defaults keep the task learnable by a small network).

    Attributes:
        size: image side in pixels.
        min_height, max_height: main figures' height as a fraction of the image side.
        max_people: main figures per image (1..max_people).
        small_people_prob: chance of 1-2 small unlabelled figures in an image.
        crowd_prob: chance of a crowd region.
        cut_person_prob: chance of an extra figure cut by the image border.
        jpeg_quality: JPEG quality of the images.
    """

    size: int = 160
    min_height: float = 0.4
    max_height: float = 0.9
    max_people: int = 3
    small_people_prob: float = 0.25
    crowd_prob: float = 0.15
    cut_person_prob: float = 0.15
    jpeg_quality: int = 95


# ---------------------------------------------------------------------------- background
def random_background(rng, size):
    """Textured background: gradient + smooth noise + shapes + lines + grain. BGR uint8."""
    c1 = rng.uniform(40, 215, size=3)
    c2 = np.clip(c1 + rng.normal(0, 45, size=3), 0, 255)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size] / max(1, size - 1)
    t = np.clip((math.cos(angle) * (xs - 0.5) + math.sin(angle) * (ys - 0.5)) + 0.5, 0, 1)
    image = c1 * (1 - t[..., None]) + c2 * t[..., None]
    cells = int(rng.integers(3, 8))
    noise = rng.normal(0, 25, size=(cells, cells, 3)).astype(np.float32)
    image += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * rng.uniform(0.3, 0.8)     # muted colours
    image = np.clip(image, 0, 255).astype(np.uint8)
    base = image.reshape(-1, 3).mean(axis=0)
    for _ in range(int(rng.integers(2, 8))):
        layer = image.copy()
        color = tuple(float(v) for v in np.clip(base + rng.normal(0, 50, size=3), 0, 255))
        kind = rng.integers(3)
        x, y = (int(v) for v in rng.integers(0, size, size=2))
        w, h = (int(v) for v in rng.integers(size // 10, size // 2, size=2))
        if kind == 0:
            cv2.rectangle(layer, (x - w // 2, y - h // 2), (x + w // 2, y + h // 2), color, -1)
        elif kind == 1:
            cv2.ellipse(layer, (x, y), (w // 2, h // 2), float(rng.uniform(0, 180)), 0, 360,
                        color, -1, cv2.LINE_AA)
        else:
            pts = rng.integers(0, size, size=(3, 2)).astype(np.int32)
            cv2.fillConvexPoly(layer, pts, color, cv2.LINE_AA)
        alpha = rng.uniform(0.25, 0.6)
        image = cv2.addWeighted(layer, alpha, image, 1 - alpha, 0)
    for _ in range(int(rng.integers(0, 4))):
        color = tuple(float(v) for v in np.clip(base + rng.normal(0, 40, size=3), 0, 255))
        p1 = tuple(int(v) for v in rng.integers(0, size, size=2))
        p2 = tuple(int(v) for v in rng.integers(0, size, size=2))
        cv2.line(image, p1, p2, color, int(rng.integers(1, 3)), cv2.LINE_AA)
    grain = rng.normal(0, 5, size=image.shape)
    image = np.clip(image + grain, 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(image, (3, 3), 0.6)


# ---------------------------------------------------------------------------- annotations
def mask_polygons(mask):
    """Outer contours of a binary mask as COCO polygons (lists of x, y floats, >= 3 points)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        if len(contour) >= 3 and cv2.contourArea(contour) > 0:
            polygons.append([float(v) for v in contour.reshape(-1)])
    return polygons


def mask_rle(mask):
    """Uncompressed COCO RLE (``counts`` list, column-major) of a binary mask."""
    flat = np.asfortranarray(mask.astype(bool)).reshape(-1, order="F")
    counts = []
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    if flat.size and flat[0]:
        counts.append(0)
    counts.extend(int(v) for v in np.diff(bounds))
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def _box(mask):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]


@dataclass
class _Figure:
    kp: np.ndarray            # (17, 2)
    mask: np.ndarray          # (S, S) bool silhouette
    labelled: bool
    crowd: bool = False


def _annotations(figures, size):
    """COCO annotation dicts (without ids) of the figures drawn, in drawing order: each one's
    visible part (later figures hide it, a crowd hides nothing), its keypoints (1 where a later
    figure covers them, 0 outside the image; only labelled figures have any), polygons (an RLE
    for the crowd); figures with less than 4 visible pixels are left out."""
    annotations = []
    for index, fig in enumerate(figures):
        later = np.zeros((size, size), bool)
        for other in figures[index + 1:]:
            if not other.crowd:
                later |= other.mask
        visible = fig.mask & ~later
        area = float(visible.sum())
        if area < 4:
            continue
        keypoints = np.zeros((NUM_COCO_KEYPOINTS, 3))
        if fig.labelled:
            xs, ys = fig.kp[:, 0], fig.kp[:, 1]
            inside = (xs >= 0) & (ys >= 0) & (xs <= size - 1) & (ys <= size - 1)
            xi = np.clip(np.round(xs).astype(int), 0, size - 1)
            yi = np.clip(np.round(ys).astype(int), 0, size - 1)
            hidden = later[yi, xi]
            keypoints[:, 0] = np.where(inside, np.round(xs, 2), 0)
            keypoints[:, 1] = np.where(inside, np.round(ys, 2), 0)
            keypoints[:, 2] = np.where(inside, np.where(hidden, 1, 2), 0)
        segmentation = mask_rle(visible) if fig.crowd else mask_polygons(visible)
        if not segmentation:
            continue
        annotations.append({
            "category_id": 1, "iscrowd": int(fig.crowd), "segmentation": segmentation,
            "area": area, "bbox": _box(visible),
            "num_keypoints": int((keypoints[:, 2] > 0).sum()),
            "keypoints": [float(v) if i % 3 != 2 else int(v)
                          for i, v in enumerate(keypoints.reshape(-1))]})
    return annotations


def render_image(rng, options=ToyOptions()):
    """One synthetic image and its people.

    Returns:
        (image BGR uint8 (S, S, 3), list of annotation dicts without ids).
    """
    size = options.size
    image = random_background(rng, size)
    background_colors = [tuple(float(v) for v in image.reshape(-1, 3).mean(axis=0))]
    figures = []

    def add_figure(kp_center_x, top, height, labelled, target=None):
        kp, sizes = random_pose(rng, kp_center_x, top, height)
        mask = np.zeros((size, size), np.uint8)
        colors = random_colors(rng, background_colors)
        draw_figure(image if target is None else target, mask, kp, sizes, height, colors)
        figure = _Figure(kp, mask > 0, labelled)
        figures.append(figure)
        return figure

    # Background first: a crowd region and small unlabelled figures.
    if rng.random() < options.crowd_prob:
        region_w = rng.uniform(0.3, 0.55) * size
        x0 = rng.uniform(0, size - region_w)
        y0 = rng.uniform(0, 0.25 * size)
        start = len(figures)
        for _ in range(int(rng.integers(5, 10))):
            height = rng.uniform(0.1, 0.17) * size
            add_figure(x0 + rng.uniform(0.05, 0.95) * region_w, y0 + rng.uniform(0, 0.1 * size),
                       height, labelled=False)
        union = np.zeros((size, size), bool)
        for fig in figures[start:]:
            union |= fig.mask
        del figures[start:]
        figures.append(_Figure(np.zeros((NUM_COCO_KEYPOINTS, 2)), union, labelled=False, crowd=True))
    if rng.random() < options.small_people_prob:
        for _ in range(int(rng.integers(1, 3))):
            height = rng.uniform(0.12, 0.25) * size
            add_figure(rng.uniform(0.1, 0.9) * size, rng.uniform(0, size - height), height,
                       labelled=False)

    # Main figures, smaller (farther) ones first.
    count = int(rng.integers(1, options.max_people + 1))
    heights = np.sort(rng.uniform(options.min_height, options.max_height, size=count) * size)
    if count > 1:
        heights = heights * rng.uniform(0.8, 1.0)
    placed = []
    for height in heights:
        for _ in range(30):
            cx = rng.uniform(0.12, 0.88) * size
            if all(abs(cx - px) > 0.22 * (height + ph) / 2 for px, ph in placed):
                break
        top = rng.uniform(-0.03 * height, max(-0.03 * height, size - 0.97 * height))
        placed.append((cx, height))
        add_figure(cx, top, height, labelled=True)
    if rng.random() < options.cut_person_prob:
        height = rng.uniform(options.min_height, options.max_height) * size
        side = rng.integers(4)
        cx = [rng.uniform(-0.05, 0.05), rng.uniform(0.95, 1.05), rng.uniform(0.2, 0.8),
              rng.uniform(0.2, 0.8)][side] * size
        top = [rng.uniform(0, size - height), rng.uniform(0, size - height),
               size - rng.uniform(0.15, 0.4) * height, -rng.uniform(0.6, 0.85) * height][side]
        add_figure(cx, top, height, labelled=True)

    return image, _annotations(figures, size)


def make_split(out_dir, split, num_images, seed, options=ToyOptions(), first_image_id=1,
               first_ann_id=1):
    """Write one split: images and its annotation file.

    Files: ``out_dir/<split>2017/*.jpg`` and
    ``out_dir/annotations/person_keypoints_<split>2017.json``.

    Every image is generated from ``(seed, split, index)``, so splits are independent and a
    larger ``num_images`` extends a smaller one.

    Returns:
        The COCO dict that was written.
    """
    image_dir = os.path.join(out_dir, f"{split}2017")
    ann_dir = os.path.join(out_dir, "annotations")
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    split_tag = {"train": 0, "val": 1}.get(split, sum(map(ord, split)))
    images, annotations = [], []
    ann_id = first_ann_id
    for index in range(num_images):
        rng = np.random.default_rng([int(seed), split_tag, index])
        image, anns = render_image(rng, options)
        image_id = first_image_id + index
        file_name = f"{image_id:012d}.jpg"
        write_image(os.path.join(image_dir, file_name), image,
                    [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality])
        images.append({"id": image_id, "file_name": file_name, "width": options.size,
                       "height": options.size})
        for ann in anns:
            ann.update({"id": ann_id, "image_id": image_id})
            annotations.append(ann)
            ann_id += 1
    data = {"info": {"description": f"toy COCO person keypoints ({split}, seed {seed})",
                     "version": "1.0"},
            "licenses": [], "images": images, "annotations": annotations,
            "categories": [PERSON_CATEGORY]}
    path = os.path.join(ann_dir, f"person_keypoints_{split}2017.json")
    write_json(data, path)
    return data


def make_toy_coco(out_dir, num_train=1000, num_val=100, seed=0, options=ToyOptions()):
    """Write both splits (train image ids from 1, val ids from 1,000,001).

    Returns:
        dict split -> COCO dict.
    """
    return {"train": make_split(out_dir, "train", num_train, seed, options, 1, 1),
            "val": make_split(out_dir, "val", num_val, seed, options, 1_000_001, 10_000_001)}
