"""Pose inference on arbitrary media: one image, a folder of images, or a video.

Writes a skeleton drawing per image (an annotated video for video input) and one JSON of the
people found (``people.json``): per image or frame, each person's 17 COCO keypoints
``[x, y, confidence] * 17`` (COCO order, original pixels; confidence the smoothed heatmap value
at the joint's peak, about 0 to 1; ``0, 0, 0`` for a joint not found, like CMU OpenPose's
JSON), the number of keypoints found and the person score (the sum of its joints' confidences
and its limbs' PAF scores: it grows with the number of joints found, up to about 2 per joint).
``min_person_score`` and ``min_joints`` leave weak people out of the JSON and the drawings; the
JSON's header states the format, the score's meaning and the filters used.
"""
import itertools
import os
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from src.data.coco import IMREAD_STORED
from src.errors import OpenPoseError
from src.evaluate.drawing import draw_poses, drawing_names
from src.evaluate.input_skips import InputSkips
from src.runtime.atomic_write import atomic_write, write_json
from src.runtime.output_checks import OutputError
from src.runtime.stop_signals import until_interrupted
from src.skeleton import COCO_KEYPOINT_NAMES, COCO_TO_OURS_ARRAY, NUM_JOINTS, ours_to_coco

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
RESULTS_FILE = "people.json"


class MediaError(OpenPoseError, ValueError):
    """An input path is missing, empty or unreadable (one-line message naming it)."""


def classify_input(path):
    """Return ``("image" | "folder" | "video", Path)`` for an input path.

    Raises:
        MediaError: the path does not exist or has no supported image/video suffix.
    """
    path = Path(path)
    if path.is_dir():
        return "folder", path
    if not path.is_file():
        raise MediaError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image", path
    if suffix in VIDEO_SUFFIXES:
        return "video", path
    raise MediaError(f"{path}: unsupported file type '{suffix}' (images: "
                     f"{sorted(IMAGE_SUFFIXES)}, videos: {sorted(VIDEO_SUFFIXES)})")


def list_images(folder):
    """Sorted image files directly inside ``folder``; an empty folder is an error."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MediaError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return files


#: people.json's description of its own fields (written into its header).
KEYPOINT_FORMAT = ("keypoints: x, y, confidence for each of the 17 COCO keypoints, in "
                   "keypoint_names order; x, y in pixels of the original image; confidence: the "
                   "smoothed heatmap value at the joint's peak (about 0 to 1); a keypoint not "
                   "found is 0, 0, 0")
SCORE_MEANING = ("score: the sum of the person's joint confidences and of the scores of the "
                 "limbs joining them (a limb's score is the mean alignment of the part affinity "
                 "field along it, at most 1, minus a penalty for a limb longer than the "
                 "network input's width); it grows with the number of joints found, up to about 2 per joint "
                 "(the neck, not written here, counts too); num_keypoints: keypoints found")


class PeopleFilter:
    """Which decoded people are written and drawn: a person is kept when its score is at least
    ``min_person_score`` and it has at least ``min_joints`` of the 17 COCO keypoints (the
    defaults, 0 and 0, keep everyone the decoder returns)."""

    def __init__(self, min_person_score=0.0, min_joints=0):
        self.min_person_score = float(min_person_score)
        self.min_joints = int(min_joints)
        self.dropped = 0

    def keep(self, scores, confidences):
        """Boolean (N,) mask of the people to keep; counts the others in ``dropped``."""
        confidences = np.asarray(confidences, dtype=np.float64).reshape(len(scores), NUM_JOINTS)
        found = (confidences[:, COCO_TO_OURS_ARRAY] > 0).sum(axis=1)
        mask = (np.asarray(scores) >= self.min_person_score) & (found >= self.min_joints)
        self.dropped += int((~mask).sum())
        return mask

    def header(self):
        """The filters, as people.json records them."""
        return {"min_person_score": self.min_person_score, "min_joints": self.min_joints}


def people_record(poses, scores, confidences):
    """JSON-ready list of people: ``{"keypoints": 51 floats, "num_keypoints", "score"}``.

    Args:
        poses: (N, 18, 3) x, y in image pixels and visibility (> 0: found), our joint order.
        scores: (N,) person scores; confidences: (N, 18) per-joint peak values (0: missing).

    Returns:
        One dict per person; keypoints ``[x, y, confidence] * 17`` in COCO order, exactly
        ``0, 0, 0`` for a keypoint not found.
    """
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
    xy = ours_to_coco(poses)[..., :2]
    conf = np.asarray(confidences, dtype=np.float64)[:, COCO_TO_OURS_ARRAY]
    found = ours_to_coco(poses)[..., 2] > 0
    people = []
    for person_xy, person_conf, person_found, score in zip(xy, conf, found, scores):
        keypoints = []
        for (x, y), c, ok in zip(person_xy, person_conf, person_found):
            # a found joint keeps a non-zero confidence after rounding (peaks exceed a threshold)
            keypoints += ([round(float(x), 2), round(float(y), 2), max(round(float(c), 4), 1e-4)]
                          if ok else [0.0, 0.0, 0.0])
        people.append({"keypoints": keypoints, "num_keypoints": int(person_found.sum()),
                       "score": round(float(score), 4)})
    return people


def _detect(predictor, image, people_filter):
    """Poses to draw and the people records to write for one image, after the filter."""
    poses, scores, confidences = predictor.people(image)
    kept = people_filter.keep(scores, confidences)
    return poses[kept], people_record(poses[kept], scores[kept], confidences[kept])


def infer_images(predictor, files, out_dir, log=print, skips=None, people_filter=None):
    """Run ``predictor`` on image files; write their drawings
    (:func:`src.evaluate.drawing.drawing_names`: ``<stem>_<ext>.png``); return the records.

    ``predictor.people(image)`` gives (poses, scores, confidences) (see
    :meth:`src.evaluate.inference.Predictor.people`); ``people_filter`` (a :class:`PeopleFilter`,
    default: keep all) decides who is written and drawn.

    An unreadable image is reported, counted and skipped by ``skips``
    (:class:`src.evaluate.input_skips.InputSkips`; strict: MediaError at the first one); when none of
    the images can be read, MediaError.
    """
    skips = skips or InputSkips()
    people_filter = people_filter or PeopleFilter()
    records = []
    names = dict(zip(files, drawing_names(files)))
    for file in until_interrupted(tqdm(files, unit="img", dynamic_ncols=True)):
        image = cv2.imread(str(file), IMREAD_STORED)    # as stored: EXIF orientation ignored
        if image is None:
            skips.skip(MediaError(f"{file}: cannot read this image"))
            continue
        poses, people = _detect(predictor, image, people_filter)
        skips.draw(os.path.join(out_dir, names[file]), draw_poses(image, poses))
        records.append({"file": str(file), "people": people})
    if not records:
        raise MediaError(f"{files[0] if len(files) == 1 else Path(files[0]).parent}: "
                         f"none of the {len(files)} image(s) could be read")
    log(f"{len(records)} image(s): {sum(len(r['people']) for r in records)} people"
        f"{_dropped_note(people_filter)}{skips.summary()}")
    return records


def _dropped_note(people_filter):
    if not people_filter.dropped:
        return ""
    return (f" ({people_filter.dropped} more below --min_person_score "
            f"{people_filter.min_person_score:g} or --min_joints {people_filter.min_joints}: "
            "not written or drawn)")


def infer_video(predictor, path, out_dir, max_frames=0, log=print, people_filter=None):
    """Run ``predictor`` on every frame of a video; write ``<stem>_pose.mp4``; return records
    (``predictor`` and ``people_filter`` as in :func:`infer_images`).

    The video is written under a temporary name and renamed when complete
    (:func:`src.runtime.atomic_write.atomic_write`): a failure or Ctrl-C leaves no partial file.
    """
    people_filter = people_filter or PeopleFilter()
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise MediaError(f"{path}: cannot open this video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames and total:
        total = min(total, max_frames)
    output = os.path.join(out_dir, f"{Path(path).stem}_pose.mp4")
    writer, records, index = None, [], 0
    with atomic_write(output) as tmp:
        try:
            with tqdm(total=total, unit="frame", dynamic_ncols=True) as bar:
                for _ in until_interrupted(itertools.count()):   # Ctrl-C: between frames
                    if max_frames and index >= max_frames:
                        break
                    ok, frame = capture.read()
                    if not ok:
                        break
                    poses, people = _detect(predictor, frame, people_filter)
                    if writer is None:
                        height, width = frame.shape[:2]
                        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                                 (width, height))
                        if not writer.isOpened():
                            raise OutputError(f"{output}: cannot write this video (OpenCV's "
                                              "VideoWriter did not open it)")
                    writer.write(draw_poses(frame, poses))
                    records.append({"file": str(path), "frame": index, "people": people})
                    index += 1
                    bar.update(1)
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if not records:
            raise MediaError(f"{path}: no frames could be read")
    log(f"{index} frame(s) at {fps:.1f} fps: {sum(len(r['people']) for r in records)} "
        f"people{_dropped_note(people_filter)} -> {output}")
    return records


def run_media_inference(predictor, input_path, out_dir, max_frames=0, log=print, strict=False,
                        min_person_score=0.0, min_joints=0):
    """Infer on an image, folder or video; write drawings and ``people.json`` into ``out_dir``.

    Unreadable images of a folder are skipped (``strict``: the first one is an error); drawings
    that could not be written are an error after ``people.json`` is written. People with a
    score below ``min_person_score`` or fewer than ``min_joints`` COCO keypoints are neither
    written nor drawn.

    Returns:
        The path of the JSON written.

    Raises:
        MediaError: bad input; src.runtime.output_checks.OutputError: a drawing was not written.
    """
    skips = InputSkips(strict, log=tqdm.write)
    kind, path = classify_input(input_path)
    os.makedirs(out_dir, exist_ok=True)
    people_filter = PeopleFilter(min_person_score, min_joints)
    start = time.perf_counter()
    if kind == "video":
        records = infer_video(predictor, path, out_dir, max_frames=max_frames, log=log,
                              people_filter=people_filter)
    else:
        files = list_images(path) if kind == "folder" else [path]
        records = infer_images(predictor, files, out_dir, log=log, skips=skips,
                               people_filter=people_filter)
    result = os.path.join(out_dir, RESULTS_FILE)
    write_json({"input": str(path), "keypoint_order": "COCO-17",
                "keypoint_names": list(COCO_KEYPOINT_NAMES), "keypoint_format": KEYPOINT_FORMAT,
                "score": SCORE_MEANING, "filters": people_filter.header(), "results": records},
               result)
    log(f"done in {time.perf_counter() - start:.1f} s: drawings and {result}")
    skips.raise_for_failed_writes()
    return result

