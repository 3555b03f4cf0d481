"""The files of an ignore-mask folder: the people rule it was made with, and complete masks.

``ignore_mask_<split>/`` holds one PNG per image (:func:`src.data.coco.mask_path`) and
:data:`RULE_FILE`, the people rule (``min_keypoints``, ``min_area``) its masks were computed with.
A run with another rule would mix masks of two rules, so it stops (:func:`check_rule`) and says
how to redo them; training with another rule than its masks' would train people whose regions
are ignored (or leave people out without ignoring them), so it stops too
(:func:`check_training_rule`). A mask is kept on a rerun only when :func:`mask_is_complete` (a
whole PNG of the image's size); anything else under a mask's name (a zero-byte file from a full
disk before masks were written atomically, a cut file) is rewritten.
"""
import json
import os

import cv2
import numpy as np

from src.data.annotation_checks import AnnotationError
from src.runtime.atomic_write import write_json

#: The people rule's record, beside the masks.
RULE_FILE = "ignore_mask_rule.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Every complete PNG ends with this IEND chunk (length 0, type, CRC).
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


class MaskRuleError(AnnotationError):
    """A mask folder was made with another people rule (one line saying how to redo it)."""


def rule_record(min_keypoints, min_area):
    """The people rule as recorded (JSON numbers)."""
    return {"min_keypoints": int(min_keypoints), "min_area": float(min_area)}


def read_rule(save_dir):
    """The people rule recorded in ``save_dir`` (:func:`rule_record`), None without a record.

    Raises:
        MaskRuleError: the record is unreadable.
    """
    path = os.path.join(save_dir, RULE_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as stream:
            return rule_record(**json.load(stream))
    except (OSError, ValueError, TypeError) as exc:
        raise MaskRuleError(f"{path}: unreadable people-rule record ({exc}); delete "
                            f"{save_dir} and run gen_ignore_mask again to redo its masks") from None


def check_training_rule(mask_dir, min_keypoints, min_area):
    """Training's check: the masks in ``mask_dir`` were made with this run's people rule.

    A folder without a record (masks of the reference's script, or none) is not checked.

    Raises:
        MaskRuleError: the recorded rule differs (one line: the two rules and both ways out),
        or the record is unreadable.
    """
    recorded = read_rule(mask_dir)
    wanted = rule_record(min_keypoints, min_area)
    if recorded is not None and recorded != wanted:
        raise MaskRuleError(
            f"{mask_dir} holds ignore masks made with --min_keypoints "
            f"{recorded['min_keypoints']} --min_area {recorded['min_area']:g} ({RULE_FILE}); "
            f"this training run uses --min_keypoints {wanted['min_keypoints']} --min_area "
            f"{wanted['min_area']:g}: pass the masks' values, or delete {mask_dir} and redo "
            "the masks with gen_ignore_mask.py and the training values")


def check_rule(save_dir, min_keypoints, min_area, log=print):
    """Compare the rule recorded in ``save_dir`` with this run's and record it when absent.

    A folder with masks but no record (made before the rule was recorded) is adopted with a
    warning: its masks are kept when complete, and this run's rule is recorded.

    Raises:
        MaskRuleError: the recorded rule differs, or the record is unreadable.
    """
    wanted = rule_record(min_keypoints, min_area)
    path = os.path.join(save_dir, RULE_FILE)
    recorded = read_rule(save_dir)
    if recorded is not None:
        if recorded != wanted:
            raise MaskRuleError(
                f"{save_dir} holds masks made with --min_keypoints {recorded['min_keypoints']} "
                f"--min_area {recorded['min_area']:g}; this run asks for --min_keypoints "
                f"{wanted['min_keypoints']} --min_area {wanted['min_area']:g}: delete {save_dir} "
                "and run again to redo them with the new rule, or pass the recorded values")
        return
    existing = sum(1 for name in os.listdir(save_dir) if name.endswith(".png"))
    if existing:
        log(f"warning: {save_dir} has {existing} masks but no people-rule record; keeping the "
            f"complete ones and recording this run's rule (--min_keypoints {wanted['min_keypoints']} "
            f"--min_area {wanted['min_area']:g})")
    write_json(wanted, path)


def mask_is_complete(path, height, width):
    """True when ``path`` is a whole PNG decoding to a (height, width) uint8 mask.

    The end marker is checked before decoding, so a cut file is refused without OpenCV's
    warning on stderr.
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError:
        return False
    if not (data.startswith(PNG_SIGNATURE) and data.endswith(PNG_END)):
        return False
    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return mask is not None and mask.dtype == np.uint8 and mask.shape == (height, width)
