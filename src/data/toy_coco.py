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
quickstart and the tests.
"""
import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from src.runtime.output_checks import write_image, write_json
from src.skeleton import COCO_KEYPOINT_NAMES, COCO_SKELETON, NUM_COCO_KEYPOINTS, Joint as J, coco_index

PERSON_CATEGORY = {"id": 1, "name": "person", "supercategory": "person",
                   "keypoints": list(COCO_KEYPOINT_NAMES), "skeleton": [list(p) for p in COCO_SKELETON]}

# COCO keypoint indices of the joints drawn here.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = (coco_index(j) for j in (
    J.NOSE, J.LEFT_EYE, J.RIGHT_EYE, J.LEFT_EAR, J.RIGHT_EAR))
L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI = (coco_index(j) for j in (
    J.LEFT_SHOULDER, J.RIGHT_SHOULDER, J.LEFT_ELBOW, J.RIGHT_ELBOW, J.LEFT_WRIST, J.RIGHT_WRIST))
L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK = (coco_index(j) for j in (
    J.LEFT_HIP, J.RIGHT_HIP, J.LEFT_KNEE, J.RIGHT_KNEE, J.LEFT_ANKLE, J.RIGHT_ANKLE))

_SHIFT = 4                     # sub-pixel bits for OpenCV drawing
_SCALE = 1 << _SHIFT
_SKIN_TONES = ((205, 225, 250), (160, 195, 235), (120, 160, 210), (80, 120, 175),
               (60, 90, 140), (40, 60, 100))


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


# ---------------------------------------------------------------------------- geometry
def _direction(angle_deg):
    """Unit vector of an angle measured from straight down (+y), positive towards +x."""
    rad = math.radians(angle_deg)
    return np.array([math.sin(rad), math.cos(rad)])


def random_pose(rng, center_x, top_y, height):
    """Joint positions of one front-facing figure.

    Args:
        rng: numpy Generator.
        center_x: x of the hip centre (pixels).
        top_y: y of the top of the head (pixels).
        height: figure height (pixels), head top to ankles when standing straight.

    Returns:
        (17, 2) float64 COCO-order keypoints, and a dict of drawing sizes (pixels).
    """
    h = height
    lean = rng.normal(0, 6)                      # torso lean (degrees)
    up = -_direction(lean)                       # hip centre -> neck
    side = np.array([-up[1], up[0]])             # +x when upright: the figure's left
    head_top_to_neck = 0.195 * h
    neck = np.array([center_x, top_y + head_top_to_neck])
    hip_center = neck - up * 0.30 * h
    kp = np.zeros((NUM_COCO_KEYPOINTS, 2))
    shoulder_half = rng.uniform(0.095, 0.12) * h
    hip_half = rng.uniform(0.065, 0.085) * h
    kp[L_SHO] = neck + side * shoulder_half
    kp[R_SHO] = neck - side * shoulder_half
    kp[L_HIP] = hip_center + side * hip_half
    kp[R_HIP] = hip_center - side * hip_half
    # Head: tilt and a little yaw (the face stays towards the camera).
    tilt = lean + rng.normal(0, 8)
    head_up = -_direction(tilt)
    head_side = np.array([-head_up[1], head_up[0]])
    head_radius = 0.075 * h
    head_center = neck + head_up * 0.12 * h
    yaw = rng.uniform(-0.25, 0.25)
    kp[NOSE] = head_center + head_side * yaw * head_radius - head_up * 0.01 * h
    eye_center = head_center + head_side * yaw * head_radius + head_up * 0.022 * h
    kp[L_EYE] = eye_center + head_side * 0.028 * h
    kp[R_EYE] = eye_center - head_side * 0.028 * h
    kp[L_EAR] = head_center + head_side * (0.062 - 0.012 * yaw) * h + head_up * 0.01 * h
    kp[R_EAR] = head_center - head_side * (0.062 + 0.012 * yaw) * h + head_up * 0.01 * h
    # Arms: angle from hanging down, outwards positive; elbow bend either way.
    for sho, elb, wri, sign in ((L_SHO, L_ELB, L_WRI, 1), (R_SHO, R_ELB, R_WRI, -1)):
        upper = rng.uniform(-10, 165)
        bend = rng.uniform(-110, 110) if rng.random() < 0.7 else rng.uniform(-15, 15)
        fore = upper + bend
        shorten = rng.uniform(0.8, 1.0, size=2)
        kp[elb] = kp[sho] + _signed(upper, sign, lean) * 0.16 * h * shorten[0]
        kp[wri] = kp[elb] + _signed(fore, sign, lean) * 0.14 * h * shorten[1]
    # Legs: thigh outwards, knee bend.
    for hip, kne, ank, sign in ((L_HIP, L_KNE, L_ANK, 1), (R_HIP, R_KNE, R_ANK, -1)):
        thigh = rng.uniform(-8, 40) if rng.random() < 0.85 else rng.uniform(40, 80)
        shin = thigh + rng.uniform(-35, 25)
        shorten = rng.uniform(0.85, 1.0, size=2)
        kp[kne] = kp[hip] + _signed(thigh, sign, lean) * 0.24 * h * shorten[0]
        kp[ank] = kp[kne] + _signed(shin, sign, lean) * 0.23 * h * shorten[1]
    sizes = {"head_radius": head_radius, "head_center": head_center, "head_up": head_up,
             "head_side": head_side, "neck": neck}
    return kp, sizes


def _signed(angle, sign, lean):
    """Direction of a limb ``angle`` degrees out from hanging down on side ``sign``."""
    return _direction(sign * angle + lean)


# ---------------------------------------------------------------------------- drawing
def _pt(p):
    return (int(round(p[0] * _SCALE)), int(round(p[1] * _SCALE)))


def _tapered_polygon(a, b, width_a, width_b):
    d = np.asarray(b, float) - np.asarray(a, float)
    length = np.hypot(*d)
    n = np.array([-d[1], d[0]]) / length if length > 1e-6 else np.array([1.0, 0.0])
    return np.array([a + n * width_a / 2, b + n * width_b / 2, b - n * width_b / 2,
                     a - n * width_a / 2])


def _draw_limb(canvas, a, b, width_a, width_b, color, line_type):
    a, b = np.asarray(a, float), np.asarray(b, float)
    poly = np.array([_pt(p) for p in _tapered_polygon(a, b, width_a, width_b)], np.int32)
    cv2.fillConvexPoly(canvas, poly, color, line_type, _SHIFT)
    cv2.circle(canvas, _pt(a), int(round(width_a / 2 * _SCALE)), color, -1, line_type, _SHIFT)
    cv2.circle(canvas, _pt(b), int(round(width_b / 2 * _SCALE)), color, -1, line_type, _SHIFT)


def _draw_polygon(canvas, points, color, line_type):
    poly = np.array([_pt(p) for p in points], np.int32)
    cv2.fillConvexPoly(canvas, poly, color, line_type, _SHIFT)


def _contrasting_color(rng, avoid, min_distance=110):
    """A saturated BGR colour at least ``min_distance`` away from every colour in ``avoid``."""
    best, best_distance = None, -1.0
    for _ in range(20):
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(150, 256), rng.integers(110, 256)]]])
        color = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(float)
        distance = min((np.linalg.norm(color - np.asarray(c, float)) for c in avoid),
                       default=1e9)
        if distance >= min_distance:
            return tuple(int(v) for v in color)
        if distance > best_distance:
            best, best_distance = color, distance
    return tuple(int(v) for v in best)


def draw_figure(image, mask, kp, sizes, height, colors):
    """Draw one figure on ``image`` (BGR uint8, in place) and its silhouette on ``mask``.

    Args:
        kp: (17, 2) COCO keypoints.
        sizes: from :func:`random_pose`.
        height: figure height in pixels (sets the thicknesses).
        colors: dict with ``shirt``, ``pants``, ``skin``, ``shoes``, ``hair``, ``outline``
            BGR tuples and ``sleeves`` (bool: long sleeves).
    """
    h = height
    outline = max(1.0, 0.012 * h)
    widths = {"upper_arm": (0.065 * h, 0.05 * h), "forearm": (0.048 * h, 0.038 * h),
              "thigh": (0.085 * h, 0.065 * h), "shin": (0.06 * h, 0.045 * h)}
    head_c = sizes["head_center"]
    head_r = sizes["head_radius"]

    def part_limb(a, b, wa, wb, color):
        for canvas, col, extra, lt in ((image, colors["outline"], 2 * outline, cv2.LINE_AA),
                                       (image, color, 0.0, cv2.LINE_AA),
                                       (mask, 255, 2 * outline, cv2.LINE_8)):
            _draw_limb(canvas, a, b, wa + extra, wb + extra, col, lt)

    def part_polygon(points, color):
        center = points.mean(axis=0)
        grown = center + (points - center) * (1 + 2 * outline / max(1.0, 0.2 * h))
        _draw_polygon(image, grown, colors["outline"], cv2.LINE_AA)
        _draw_polygon(image, points, color, cv2.LINE_AA)
        _draw_polygon(mask, grown, 255, cv2.LINE_8)

    # Legs (behind the torso), then the torso, the neck, the arms, the head.
    for hip, kne, ank in ((L_HIP, L_KNE, L_ANK), (R_HIP, R_KNE, R_ANK)):
        part_limb(kp[hip], kp[kne], *widths["thigh"], colors["pants"])
        part_limb(kp[kne], kp[ank], *widths["shin"], colors["pants"])
        foot = kp[ank] + np.array([0.0, 0.015 * h])
        part_limb(kp[ank], foot, 0.05 * h, 0.05 * h, colors["shoes"])
    torso = np.array([kp[L_SHO], kp[R_SHO], kp[R_HIP], kp[L_HIP]])
    center = torso.mean(axis=0)
    torso = center + (torso - center) * np.array([1.12, 1.05])
    part_polygon(torso, colors["shirt"])
    part_limb(sizes["neck"], head_c, 0.05 * h, 0.05 * h, colors["skin"])
    for sho, elb, wri in ((L_SHO, L_ELB, L_WRI), (R_SHO, R_ELB, R_WRI)):
        part_limb(kp[sho], kp[elb], *widths["upper_arm"], colors["shirt"])
        fore_color = colors["shirt"] if colors["sleeves"] else colors["skin"]
        part_limb(kp[elb], kp[wri], *widths["forearm"], fore_color)
        part_limb(kp[wri], kp[wri], 0.05 * h, 0.05 * h, colors["skin"])
    # Head: outline, skin, hair cap, eyes and nose.
    cv2.circle(image, _pt(head_c), int(round((head_r + outline) * _SCALE)), colors["outline"],
               -1, cv2.LINE_AA, _SHIFT)
    cv2.circle(image, _pt(head_c), int(round(head_r * _SCALE)), colors["skin"], -1,
               cv2.LINE_AA, _SHIFT)
    cv2.circle(mask, _pt(head_c), int(round((head_r + outline) * _SCALE)), 255, -1,
               cv2.LINE_8, _SHIFT)
    angle = math.degrees(math.atan2(sizes["head_up"][1], sizes["head_up"][0]))
    cv2.ellipse(image, _pt(head_c), (int(round(head_r * _SCALE)), int(round(head_r * _SCALE))),
                angle, -75, 75, colors["hair"], -1, cv2.LINE_AA, _SHIFT)
    face_c = head_c - sizes["head_up"] * 0.2 * head_r
    cv2.circle(image, _pt(face_c), int(round(0.8 * head_r * _SCALE)), colors["skin"], -1,
               cv2.LINE_AA, _SHIFT)
    dot = max(1.0, 0.012 * h)
    for eye in (kp[L_EYE], kp[R_EYE]):
        cv2.circle(image, _pt(eye), int(round(dot * _SCALE)), (30, 30, 30), -1, cv2.LINE_AA,
                   _SHIFT)
    nose_color = tuple(int(c * 0.6) for c in colors["skin"])
    cv2.circle(image, _pt(kp[NOSE]), int(round(dot * _SCALE)), nose_color, -1, cv2.LINE_AA,
               _SHIFT)


def random_colors(rng, background_colors):
    """Clothes and skin colours of one figure, contrasting with the background."""
    shirt = _contrasting_color(rng, background_colors)
    pants = _contrasting_color(rng, list(background_colors) + [shirt], 90)
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))]
    hair = tuple(int(v) for v in rng.integers(10, 90, size=3))
    shoes = tuple(int(v) for v in rng.integers(0, 70, size=3))
    return {"shirt": shirt, "pants": pants, "skin": skin, "hair": hair, "shoes": shoes,
            "outline": (20, 20, 20), "sleeves": bool(rng.random() < 0.4)}


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
    return image, annotations


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
