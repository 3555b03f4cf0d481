"""The stick figures of the toy set (:mod:`src.data.toy_coco`): a random articulated pose with
human proportions, and its drawing as tapered limbs with outlines, torso and head.

Keypoints are in COCO's 17-keypoint order (indices from :mod:`src.skeleton`).
"""
import math

import cv2
import numpy as np

from src.skeleton import NUM_COCO_KEYPOINTS, coco_index
from src.skeleton import Joint as J

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
