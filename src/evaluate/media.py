"""Pose inference on arbitrary media: one image, a folder of images, or a video.

Writes a skeleton drawing per image (an annotated video for video input) and one JSON of the
people found: per image or frame, each person's 17 COCO keypoints ``[x, y, v] * 17`` (COCO
order, original pixels, v = 2 found / 0 missing) and score.
"""
import os
import time
from pathlib import Path

import cv2
from tqdm import tqdm

from src.errors import OpenPoseError
from src.evaluate.coco_eval import coco_keypoints
from src.evaluate.drawing import draw_poses
from src.evaluate.input_skips import InputSkips
from src.runtime.output_checks import OutputError, write_json

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


def people_record(poses, scores):
    """JSON-ready list of people: ``{"keypoints": 51 floats (COCO order), "score"}``."""
    keypoints, scores = coco_keypoints(poses, scores)
    return [{"keypoints": [round(float(v), 2) for v in kps], "score": round(float(s), 4)}
            for kps, s in zip(keypoints, scores)]


def infer_images(predictor, files, out_dir, log=print, skips=None):
    """Run ``predictor`` on image files; write ``<stem>.png`` drawings; return the records.

    An unreadable image is reported, counted and skipped by ``skips``
    (:class:`src.evaluate.input_skips.InputSkips`; strict: MediaError at the first one); when none of
    the images can be read, MediaError.
    """
    skips = skips or InputSkips()
    records = []
    for file in tqdm(files, unit="img", dynamic_ncols=True):
        image = cv2.imread(str(file))
        if image is None:
            skips.skip(MediaError(f"{file}: cannot read this image"))
            continue
        poses, scores = predictor(image)
        skips.draw(os.path.join(out_dir, f"{Path(file).stem}.png"), draw_poses(image, poses))
        records.append({"file": str(file), "people": people_record(poses, scores)})
    if not records:
        raise MediaError(f"{files[0] if len(files) == 1 else Path(files[0]).parent}: "
                         f"none of the {len(files)} image(s) could be read")
    log(f"{len(records)} image(s): {sum(len(r['people']) for r in records)} people{skips.summary()}")
    return records


def infer_video(predictor, path, out_dir, max_frames=0, log=print):
    """Run ``predictor`` on every frame of a video; write ``<stem>_pose.mp4``; return records."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise MediaError(f"{path}: cannot open this video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames and total:
        total = min(total, max_frames)
    output = os.path.join(out_dir, f"{Path(path).stem}_pose.mp4")
    writer, records, index = None, [], 0
    try:
        with tqdm(total=total, unit="frame", dynamic_ncols=True) as bar:
            while not max_frames or index < max_frames:
                ok, frame = capture.read()
                if not ok:
                    break
                poses, scores = predictor(frame)
                if writer is None:
                    height, width = frame.shape[:2]
                    writer = cv2.VideoWriter(output, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (width, height))
                    if not writer.isOpened():
                        raise OutputError(f"{output}: cannot write this video (OpenCV's "
                                          "VideoWriter did not open it)")
                writer.write(draw_poses(frame, poses))
                records.append({"file": str(path), "frame": index,
                                "people": people_record(poses, scores)})
                index += 1
                bar.update(1)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if not records:
        raise MediaError(f"{path}: no frames could be read")
    log(f"{index} frame(s) at {fps:.1f} fps -> {output}")
    return records


def run_media_inference(predictor, input_path, out_dir, max_frames=0, log=print, strict=False):
    """Infer on an image, folder or video; write drawings and ``people.json`` into ``out_dir``.

    Unreadable images of a folder are skipped (``strict``: the first one is an error); drawings
    that could not be written are an error after ``people.json`` is written.

    Returns:
        The path of the JSON written.

    Raises:
        MediaError: bad input; src.runtime.output_checks.OutputError: a drawing was not written.
    """
    skips = InputSkips(strict, log=tqdm.write)
    kind, path = classify_input(input_path)
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    if kind == "video":
        records = infer_video(predictor, path, out_dir, max_frames=max_frames, log=log)
    else:
        files = list_images(path) if kind == "folder" else [path]
        records = infer_images(predictor, files, out_dir, log=log, skips=skips)
    result = os.path.join(out_dir, RESULTS_FILE)
    write_json({"input": str(path), "keypoint_order": "COCO-17", "results": records}, result)
    log(f"done in {time.perf_counter() - start:.1f} s: drawings and {result}")
    skips.raise_for_failed_writes()
    return result

