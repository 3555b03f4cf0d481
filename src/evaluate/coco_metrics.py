"""COCO keypoint results and metrics: our people as COCO result records, pycocotools' COCOeval
on them, and the metrics table. The evaluation loop that produces the people is
:mod:`src.evaluate.coco_eval`.
"""
import contextlib
import io
import json
import os

import numpy as np

from src.errors import OpenPoseError
from src.runtime.messages import first_line
from src.skeleton import NUM_COCO_KEYPOINTS, ours_to_coco

#: COCOeval keypoint summary, in ``stats`` order.
STAT_NAMES = ("AP", "AP.5", "AP.75", "AP(M)", "AP(L)", "AR", "AR.5", "AR.75", "AR(M)", "AR(L)")
PERSON_CATEGORY_ID = 1


class EvaluationError(OpenPoseError, ValueError):
    """An evaluation input is missing, or results and annotations do not fit together
    (one-line message)."""


def coco_keypoints(poses, scores):
    """People in COCO's keypoint layout.

    Args:
        poses: (N, 18, 3) x, y (image pixels), visibility, our joint order.
        scores: (N,) person scores.

    Returns:
        (keypoints (N, 51) float64: x, y, v per COCO keypoint, neck dropped; scores (N,) float64).
    """
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 18, 3)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(poses) != len(scores):
        raise ValueError(f"{len(poses)} poses but {len(scores)} scores")
    return ours_to_coco(poses).reshape(len(poses), 3 * NUM_COCO_KEYPOINTS), scores


def poses_to_results(image_id, poses, scores):
    """COCO keypoint result records of one image.

    Args:
        image_id: COCO image id.
        poses: (N, 18, 3) x, y (image pixels), visibility (2 found, 0 missing), our joint order.
        scores: (N,) person scores.

    Returns:
        list of ``{"image_id", "category_id": 1, "keypoints": 51 numbers, "score"}`` with the
        keypoints in COCO order (neck dropped), rounded to whole pixels like the reference.
    """
    keypoints, scores = coco_keypoints(poses, scores)
    keypoints = np.rint(keypoints).astype(np.int64)
    return [{"image_id": int(image_id), "category_id": PERSON_CATEGORY_ID,
             "keypoints": kps.tolist(), "score": float(score)}
            for kps, score in zip(keypoints, scores)]


def zero_metrics():
    """All ten metrics at 0."""
    return {name: 0.0 for name in STAT_NAMES}


def evaluate_keypoints(ann_file, results, image_ids=None, verbose=False):
    """COCO keypoint AP/AR of results against an annotation file.

    Args:
        ann_file: person keypoints annotation JSON (path), or a loaded ``pycocotools`` COCO.
        results: list of result records (:func:`poses_to_results`) or a results JSON path.
        image_ids: evaluate only these images (default: every image of the annotation file).
        verbose: let pycocotools print its progress and summary.

    Returns:
        dict ``STAT_NAMES`` -> float. With no detections at all every metric is 0 (and a line
        says so) instead of a pycocotools error.

    Raises:
        EvaluationError: the results name images the annotations do not have.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if isinstance(results, (str, os.PathLike)):
        with open(results, encoding="utf-8") as stream:
            results = json.load(stream)
    if not results:
        print("no detections: every COCO keypoint metric is 0", flush=True)
        return zero_metrics()
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        coco_gt = ann_file if isinstance(ann_file, COCO) else COCO(os.fspath(ann_file))
        known = set(coco_gt.getImgIds())
        unknown = sorted({int(r["image_id"]) for r in results} - known)
        if unknown:
            raise EvaluationError(f"results name {len(unknown)} image ids that are not in the "
                                  f"annotations (e.g. {unknown[0]})")
        for record in results:
            if len(record["keypoints"]) != 3 * NUM_COCO_KEYPOINTS:
                raise EvaluationError(f"a result has {len(record['keypoints'])} keypoint "
                                      f"values, expected {3 * NUM_COCO_KEYPOINTS}")
        try:
            # copies: loadRes adds area, bbox and id to the records it is given
            coco_dt = coco_gt.loadRes([dict(record) for record in results])
            evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
            if image_ids is not None:
                evaluator.params.imgIds = sorted(int(i) for i in image_ids)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            # check_evaluation_fields refuses the known causes up front; this names the rest
            raise EvaluationError(f"pycocotools cannot evaluate these results against the ground "
                                  f"truth ({type(exc).__name__}: {first_line(exc, 100)})") from None
    # COCOeval reports -1 where a metric is undefined (e.g. no ground truth of that size).
    return {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats)}


def merge_results(parts):
    """One result list from per-process lists (an iterable of lists of COCO result dicts),
    sorted by image id and, within an image, by descending score."""
    return sorted((r for part in parts for r in part), key=lambda r: (r["image_id"], -r["score"]))


def ground_truth(coco):
    """pycocotools' COCO of an indexed annotation file, built from the JSON parsed once by
    :func:`src.data.coco.load_coco` (without pycocotools' progress lines)."""
    from pycocotools.coco import COCO  # pycocotools is imported only where COCOeval runs
    gt = COCO()
    gt.dataset = coco.dataset
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def format_metrics(metrics):
    """The metrics as a two-line table."""
    header = " ".join(f"{name:>7}" for name in STAT_NAMES)
    values = " ".join(f"{metrics[name]:7.4f}" for name in STAT_NAMES)
    return f"{header}\n{values}"
