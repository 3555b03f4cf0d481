"""The one table of joints, limbs and COCO index maps.

Everything that needs to know the skeleton (targets, augmentation, decoding, drawing, COCO
export) reads it from here.

Joint order is the reference OpenPose order (18 joints, neck included); limb order is the
reference ``limbs_point`` order, and limb ``i`` owns PAF channels ``2 * i`` (x) and
``2 * i + 1`` (y). Heatmap channel 18 is the background.
"""
from enum import IntEnum

import numpy as np


class Joint(IntEnum):
    """The 18 body joints, in the reference channel order."""

    NOSE = 0
    NECK = 1
    RIGHT_SHOULDER = 2
    RIGHT_ELBOW = 3
    RIGHT_WRIST = 4
    LEFT_SHOULDER = 5
    LEFT_ELBOW = 6
    LEFT_WRIST = 7
    RIGHT_HIP = 8
    RIGHT_KNEE = 9
    RIGHT_ANKLE = 10
    LEFT_HIP = 11
    LEFT_KNEE = 12
    LEFT_ANKLE = 13
    RIGHT_EYE = 14
    LEFT_EYE = 15
    RIGHT_EAR = 16
    LEFT_EAR = 17


NUM_JOINTS = len(Joint)            # 18
NUM_HEATMAPS = NUM_JOINTS + 1      # 18 joints + background
BACKGROUND_CHANNEL = NUM_JOINTS    # index of the background heatmap

J = Joint
#: The 19 limbs as (from_joint, to_joint), in the reference order.
LIMBS = (
    (J.NECK, J.RIGHT_HIP), (J.RIGHT_HIP, J.RIGHT_KNEE), (J.RIGHT_KNEE, J.RIGHT_ANKLE),       # 0-2
    (J.NECK, J.LEFT_HIP), (J.LEFT_HIP, J.LEFT_KNEE), (J.LEFT_KNEE, J.LEFT_ANKLE),            # 3-5
    (J.NECK, J.RIGHT_SHOULDER), (J.RIGHT_SHOULDER, J.RIGHT_ELBOW),                          # 6-7
    (J.RIGHT_ELBOW, J.RIGHT_WRIST), (J.RIGHT_SHOULDER, J.RIGHT_EAR),                        # 8-9
    (J.NECK, J.LEFT_SHOULDER), (J.LEFT_SHOULDER, J.LEFT_ELBOW),                             # 10-11
    (J.LEFT_ELBOW, J.LEFT_WRIST), (J.LEFT_SHOULDER, J.LEFT_EAR),                            # 12-13
    (J.NECK, J.NOSE), (J.NOSE, J.RIGHT_EYE), (J.NOSE, J.LEFT_EYE),                          # 14-16
    (J.RIGHT_EYE, J.RIGHT_EAR), (J.LEFT_EYE, J.LEFT_EAR),                                   # 17-18
)
NUM_LIMBS = len(LIMBS)             # 19
NUM_PAFS = 2 * NUM_LIMBS           # 38
#: (NUM_LIMBS, 2) int array of joint indices, handy for numpy indexing.
LIMB_ARRAY = np.array([[int(a), int(b)] for a, b in LIMBS], dtype=np.int64)
#: Limbs that never start a new person while grouping (shoulder-ear helper limbs), and that
#: drawings skip.
EAR_SHOULDER_LIMBS = (9, 13)

#: COCO_TO_OURS[k] is our joint index for COCO keypoint k (COCO's 17-keypoint order). It is also
#: the order in which our 18 joints are written back as COCO keypoints (the neck is dropped).
COCO_TO_OURS = (
    J.NOSE, J.LEFT_EYE, J.RIGHT_EYE, J.LEFT_EAR, J.RIGHT_EAR,
    J.LEFT_SHOULDER, J.RIGHT_SHOULDER, J.LEFT_ELBOW, J.RIGHT_ELBOW,
    J.LEFT_WRIST, J.RIGHT_WRIST, J.LEFT_HIP, J.RIGHT_HIP,
    J.LEFT_KNEE, J.RIGHT_KNEE, J.LEFT_ANKLE, J.RIGHT_ANKLE,
)
COCO_TO_OURS_ARRAY = np.array([int(j) for j in COCO_TO_OURS], dtype=np.int64)
NUM_COCO_KEYPOINTS = len(COCO_TO_OURS)  # 17
#: COCO's keypoint names, in its order ("nose", "left_eye", ...): our joint names, lower case.
COCO_KEYPOINT_NAMES = tuple(joint.name.lower() for joint in COCO_TO_OURS)
#: COCO's own skeleton (1-based keypoint pairs) of the person category record; the network's
#: limbs are :data:`LIMBS`.
COCO_SKELETON = ((16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
                 (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7))


def coco_index(joint):
    """COCO's keypoint index (0-16) of one of our joints (not the neck, which COCO lacks)."""
    return COCO_TO_OURS.index(joint)

#: Left/right joint pairs, swapped by a horizontal flip.
FLIP_JOINT_PAIRS = (
    (J.LEFT_EYE, J.RIGHT_EYE), (J.LEFT_EAR, J.RIGHT_EAR),
    (J.LEFT_SHOULDER, J.RIGHT_SHOULDER), (J.LEFT_ELBOW, J.RIGHT_ELBOW), (J.LEFT_WRIST, J.RIGHT_WRIST),
    (J.LEFT_HIP, J.RIGHT_HIP), (J.LEFT_KNEE, J.RIGHT_KNEE), (J.LEFT_ANKLE, J.RIGHT_ANKLE),
)


def _joint_flip_permutation():
    perm = list(range(NUM_JOINTS))
    for left, right in FLIP_JOINT_PAIRS:
        perm[left], perm[right] = int(right), int(left)
    return tuple(perm)


#: FLIP_JOINTS[j] is the joint that j becomes in the mirrored image.
FLIP_JOINTS = _joint_flip_permutation()
#: Same permutation over the 19 heatmap channels (background stays in place).
FLIP_HEATMAP_CHANNELS = FLIP_JOINTS + (BACKGROUND_CHANNEL,)


def _limb_flip_permutation():
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(LIMBS)}
    perm = []
    for a, b in LIMBS:
        mirrored = (FLIP_JOINTS[a], FLIP_JOINTS[b])
        perm.append(index[mirrored])
    return tuple(perm)


#: FLIP_LIMBS[i] is the limb that limb i becomes in the mirrored image (same direction).
FLIP_LIMBS = _limb_flip_permutation()

#: BGR drawing colours, one per limb and one per joint (the classic OpenPose palette).
LIMB_COLORS = (
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255),
    (0, 85, 255), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0),
    (255, 0, 85), (170, 255, 0), (85, 255, 0), (170, 0, 255), (0, 0, 255),
    (0, 0, 255), (255, 0, 255), (170, 0, 255), (255, 0, 170),
)
JOINT_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
    (85, 255, 0), (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255),
    (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255), (170, 0, 255),
    (255, 0, 255), (255, 0, 170), (255, 0, 85),
)


def coco_to_ours(coco_keypoints):
    """Convert COCO keypoints to our 18 joints, adding the neck.

    Args:
        coco_keypoints: (..., 17, 3) array of x, y, visibility in COCO order.

    Returns:
        (..., 18, 3) array in our joint order. The neck is the integer-truncated midpoint of the
        shoulders, visibility 2, where both shoulders are labelled (v > 0), else all zeros.
    """
    coco_keypoints = np.asarray(coco_keypoints)
    out = np.zeros(coco_keypoints.shape[:-2] + (NUM_JOINTS, 3), dtype=coco_keypoints.dtype)
    out[..., COCO_TO_OURS_ARRAY, :] = coco_keypoints
    left = out[..., int(J.LEFT_SHOULDER), :]
    right = out[..., int(J.RIGHT_SHOULDER), :]
    both = (left[..., 2] > 0) & (right[..., 2] > 0)
    neck_xy = ((left[..., :2] + right[..., :2]) / 2).astype(np.int64)  # the reference truncates
    out[..., int(J.NECK), :2] = np.where(both[..., None], neck_xy, 0)
    out[..., int(J.NECK), 2] = np.where(both, 2, 0)
    return out


def ours_to_coco(poses):
    """Drop the neck and reorder (..., 18, C) joints into COCO's 17-keypoint order."""
    return np.asarray(poses)[..., COCO_TO_OURS_ARRAY, :]
