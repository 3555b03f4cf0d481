"""COCO keypoint evaluation: the one evaluation loop (:func:`evaluate_images`, shardable over
ranks) that eval.py (:func:`run_evaluation`) and validation while training
(:mod:`src.train.validation`) both run. The records and metrics it uses are in
:mod:`src.evaluate.coco_metrics` (imported here, so both can be named from this module)."""
import os
import time
from dataclasses import dataclass, field

from tqdm import tqdm

from src.data.annotation_checks import check_evaluation_fields
from src.data.coco import ImageReadError, annotated_size, image_path, load_coco, read_image
from src.evaluate.coco_metrics import (
    EvaluationError,
    evaluate_keypoints,
    format_metrics,
    ground_truth,
    merge_results,
    poses_to_results,
    zero_metrics,
)
from src.evaluate.drawing import draw_poses, drawing_names
from src.evaluate.inference import ForwardTimer, predictor_from_config
from src.evaluate.input_skips import InputSkips, describe_reasons, merge_reasons, raise_for_failed_writes
from src.parallel.sharding import rank_shard
from src.runtime.atomic_write import WriteError, describe_write_error, write_json
from src.runtime.stop_signals import until_interrupted

# ---------------------------------------------------------------------------------------------
# The evaluation loop (eval.py)
# ---------------------------------------------------------------------------------------------
RESULTS_FILE = "eval_result.json"
METRICS_FILE = "eval_metrics.json"


def evaluation_image_ids(coco, eva_num=0):
    """Images to evaluate: sorted ids of images with person annotations (the reference's
    validation set), the first ``eva_num`` of them when ``eva_num > 0``."""
    image_ids = coco.image_ids_with_people()
    return image_ids[:int(eva_num)] if int(eva_num) > 0 else image_ids


def check_eval_inputs(cfg):
    """Raise EvaluationError (one line) when model_path, ann or imgpath_val is missing."""
    checks = (("model_path", os.path.isfile, "checkpoint file"),
              ("ann", os.path.isfile, "annotation file"),
              ("imgpath_val", os.path.isdir, "image folder"))
    for key, exists, what in checks:
        value = str(getattr(cfg, key))
        if not value:
            raise EvaluationError(f"--{key} is required ({what})")
        if not exists(value):
            raise EvaluationError(f"{value}: {what} not found (--{key})")


def eval_drawing_names(coco):
    """``{image_id: drawing file name}`` over every image of ``coco`` (the same on every rank):
    :func:`src.evaluate.drawing.drawing_names` of the images' file names, in id order."""
    ids = sorted(coco.images)
    return dict(zip(ids, drawing_names(coco.images[i].get("file_name", f"{i}.jpg") for i in ids)))


@dataclass
class EvaluationSummary:
    """What one evaluation found, on rank 0 (see :func:`evaluate_images`).

    ``metrics``: ``STAT_NAMES`` -> float (all 0 when no image could be read); ``results``: the
    COCO keypoint records of every rank, merged; ``num_images``: images asked for;
    ``evaluated``: images read and run; ``skipped`` / ``failed_writes``: messages of the
    skipped images (unreadable or not of the annotated size; ``skip_reasons`` counts them by
    reason) and of the drawings not written; ``network_s``: seconds in the network
    (every rank, summed); ``host_s``: seconds reading, preprocessing, decoding and drawing
    (summed); ``wall_s``: the slowest rank's seconds.
    """

    metrics: dict
    results: list
    num_images: int
    evaluated: int
    skipped: list = field(default_factory=list)
    skip_reasons: dict = field(default_factory=dict)
    failed_writes: list = field(default_factory=list)
    network_s: float = 0.0
    host_s: float = 0.0
    wall_s: float = 0.0


def evaluate_shard(predictor, coco, image_ids, image_dir, vis_dir=None, progress=True,
                   strict=False):
    """Run ``predictor`` on the images ``image_ids`` of ``coco``.

    Args:
        predictor: :class:`src.evaluate.inference.Predictor`; when its ``forward`` is a
            :class:`src.evaluate.inference.ForwardTimer`, the network's seconds are reported.
        coco: :class:`src.data.coco.CocoKeypoints` of the annotations.
        image_ids: the ids to run (this rank's shard).
        image_dir: folder of the images.
        vis_dir: when given, a skeleton drawing per image goes there, named from the image's
            file name (:func:`eval_drawing_names`).
        progress: show a progress bar.
        strict: stop at the first unreadable image (ImageReadError) instead of skipping it.

    Returns:
        ``{"results": COCO keypoint records, "images": count evaluated, "skipped": messages of
        the skipped images (unreadable, or not of the size their annotation gives),
        "skip_reasons": {reason: count}, "failed_writes": messages of drawings not written, "timing":
        {"network": s, "total": s}}`` (picklable, for gathering over ranks).
    """
    timer = predictor.forward if isinstance(predictor.forward, ForwardTimer) else None
    network_before = timer.seconds if timer else 0.0
    results = []
    names = eval_drawing_names(coco) if vis_dir is not None else {}
    skips = InputSkips(strict, log=tqdm.write)
    start_all = time.perf_counter()
    for image_id in until_interrupted(tqdm(image_ids, total=len(image_ids), unit="img",
                                           disable=not progress, dynamic_ncols=True, leave=False)):
        try:
            image = read_image(image_path(coco, image_id, image_dir),
                               annotated_size(coco, image_id))
        except ImageReadError as exc:
            skips.skip(exc)
            continue
        poses, scores = predictor(image)
        results += poses_to_results(image_id, poses, scores)
        if vis_dir is not None:
            skips.draw(os.path.join(vis_dir, names[image_id]), draw_poses(image, poses))
    timing = {"network": (timer.seconds - network_before) if timer else 0.0,
              "total": time.perf_counter() - start_all}
    return {"results": results, "images": len(image_ids) - len(skips.skipped),
            "skipped": skips.skipped, "skip_reasons": skips.reasons,
            "failed_writes": skips.failed_writes, "timing": timing}


def evaluate_images(forward, cfg, coco, image_ids, *, input_scale, width_mult=1.0, rank=0,
                    group_size=1, gather=None, coco_gt=None, vis_dir=None, progress=False,
                    strict=False):
    """The one evaluation of a network on COCO images, for eval.py and validation in training.

    Every rank runs its shard ``image_ids[rank::group_size]`` through a Predictor built from
    ``cfg`` (:func:`src.evaluate.inference.predictor_from_config`) on ``forward``, timed by a
    :class:`src.evaluate.inference.ForwardTimer`; ``gather`` brings the shards to rank 0, which
    merges the results and runs the one COCOeval.

    Args:
        forward: the opened model as a numpy forward function (a checkpoint's network, the
            network in training, or an ONNX session).
        cfg: configuration with ``inference_img_size``, ``multi_scale`` / ``inference_scales``,
            ``flip`` and the decoder keys.
        coco: :class:`src.data.coco.CocoKeypoints` of the annotations; ``image_ids`` its ids to
            evaluate (:func:`evaluation_image_ids`).
        input_scale, width_mult: the network's input normalisation and width (its record;
            the width sizes the memory check of :func:`src.evaluate.inference.predictor_from_config`).
        rank, group_size: this process's shard.
        gather: callable(obj) -> list of every rank's obj (on rank 0; None or a list elsewhere);
            default: a single process.
        coco_gt: pycocotools' COCO of ``coco`` when the caller keeps one (built here if None).
        vis_dir, progress, strict: as :func:`evaluate_shard`.

    Returns:
        an :class:`EvaluationSummary` on rank 0, None on the other ranks.
    """
    gather = gather or (lambda obj: [obj])
    predictor = predictor_from_config(ForwardTimer(forward), cfg, input_scale=input_scale,
                                      width_mult=width_mult)
    shard = rank_shard(image_ids, rank, group_size)
    part = evaluate_shard(predictor, coco, shard, cfg.imgpath_val, vis_dir=vis_dir,
                          progress=progress, strict=strict)
    gathered = gather(part)
    if rank != 0 or gathered is None:
        return None
    evaluated = sum(p["images"] for p in gathered)
    results = merge_results(p["results"] for p in gathered)
    metrics = zero_metrics()
    if evaluated:
        metrics = evaluate_keypoints(coco_gt if coco_gt is not None else ground_truth(coco),
                                     results, image_ids=image_ids)
    return EvaluationSummary(
        metrics=metrics, results=results, num_images=len(image_ids), evaluated=evaluated,
        skipped=[m for p in gathered for m in p["skipped"]],
        skip_reasons=merge_reasons(p["skip_reasons"] for p in gathered),
        failed_writes=[m for p in gathered for m in p["failed_writes"]],
        network_s=sum(p["timing"]["network"] for p in gathered),
        host_s=sum(p["timing"]["total"] - p["timing"]["network"] for p in gathered),
        wall_s=max(p["timing"]["total"] for p in gathered))


def run_evaluation(cfg, rank=0, group_size=1, gather=None, log=print):
    """Evaluate a checkpoint on a COCO person-keypoints set (eval.py).

    Opens the model once and runs :func:`evaluate_images`; rank 0 writes ``eval_result.json``
    (COCO keypoint results) and ``eval_metrics.json`` into ``cfg.output_img_path`` and prints
    the metrics table. With ``cfg.vis`` every image's skeleton drawing is written there
    (``<stem>_<ext>.png``). The inputs are checked by the caller first (:func:`check_eval_inputs`,
    as eval.py does).

    Args:
        cfg: Config with model_path, ann, imgpath_val, output_img_path, eva_num, vis,
            inference_img_size, multi_scale, inference_scales, flip and the decoder keys; the
            network is the one the checkpoint holds (explicit network keys must agree with
            it, see :func:`src.model.model_files.open_network`). The MindSpore context
            must already be set.
        rank, group_size: this process's shard of the images.
        gather: callable(obj) -> list of every rank's obj on rank 0, None elsewhere (e.g.
            ``src.parallel.collectives.gather_objects``); default: a single process.
        log: line printer.

    Returns:
        On rank 0 the metrics dict (``STAT_NAMES``), else None.

    Raises:
        EvaluationError, src.model.checkpoint.CheckpointError, src.data.coco.AnnotationError,
        src.data.coco.ImageReadError: one-line messages naming the file.
    """
    from src.evaluate.backends import open_forward

    coco = load_coco(cfg.ann)
    image_ids = evaluation_image_ids(coco, cfg.eva_num)
    if not image_ids:
        raise EvaluationError(f"{cfg.ann}: no image to evaluate (no image with a person "
                              "annotation; check --ann and --eva_num)")
    check_evaluation_fields(coco.dataset, image_ids, coco.path)   # COCOeval fails late otherwise
    out_dir = str(cfg.output_img_path)
    os.makedirs(out_dir, exist_ok=True)

    forward, spec, lines = open_forward(cfg)
    if rank == 0:
        for line in lines:
            log(line)
        scales = list(cfg.inference_scales) if cfg.multi_scale else [1.0]
        log(f"evaluating {len(image_ids)} images on {group_size} process(es): input short side "
            f"{int(cfg.inference_img_size)}, scales {[float(s) for s in scales]}, "
            f"flip {bool(cfg.flip)}")
    summary = evaluate_images(forward, cfg, coco, image_ids, input_scale=spec.input_scale,
                              width_mult=spec.width_mult, rank=rank, group_size=group_size, gather=gather,
                              vis_dir=out_dir if cfg.vis else None, progress=rank == 0,
                              strict=cfg.strict)
    if summary is None:
        return None
    if summary.evaluated == 0:
        raise EvaluationError(f"{cfg.imgpath_val}: none of the {len(image_ids)} images could be "
                              "read; nothing evaluated")
    _write_and_report(summary, cfg, group_size, out_dir, log)
    raise_for_failed_writes(summary.failed_writes)
    return summary.metrics


def write_evaluation(out_dir, results, summary):
    """Write ``eval_result.json`` and ``eval_metrics.json`` into ``out_dir`` so that the folder
    never holds results beside the metrics of another run: an old metrics file is removed
    first, then the results and the metrics are written (each atomically). The metrics were
    computed before (:func:`evaluate_images`), so pycocotools cannot fail after this.

    Raises:
        src.runtime.atomic_write.WriteError: one line (a full disk names the free space); the
        folder then holds the old results (or the new ones) and no metrics.
    """
    metrics_path = os.path.join(out_dir, METRICS_FILE)
    try:
        os.remove(metrics_path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise WriteError(describe_write_error(metrics_path, exc)) from None
    write_json(results, os.path.join(out_dir, RESULTS_FILE))
    write_json(summary, metrics_path)


def _write_and_report(summary, cfg, group_size, out_dir, log):
    """eval.py's outputs of a summary: the two JSON files (:func:`write_evaluation`) and the
    closing lines."""
    scales = list(cfg.inference_scales) if cfg.multi_scale else [1.0]
    record = {
        "metrics": summary.metrics, "num_images": summary.num_images,
        "num_detections": len(summary.results), "num_skipped": len(summary.skipped),
        "skipped_by_reason": summary.skip_reasons,
        "model_path": str(cfg.model_path), "ann": str(cfg.ann),
        "inference_img_size": int(cfg.inference_img_size), "scales": [float(s) for s in scales],
        "flip": bool(cfg.flip), "group_size": group_size,
        "images_per_second": summary.num_images / summary.wall_s if summary.wall_s > 0 else 0.0,
        "network_ms_per_image": 1000 * summary.network_s / summary.evaluated,
        # Reading, preprocessing, map resizing, decoding and drawing.
        "host_ms_per_image": 1000 * summary.host_s / summary.evaluated,
    }
    write_evaluation(out_dir, summary.results, record)
    skipped = len(summary.skipped)
    log(f"{len(summary.results)} detections on {summary.evaluated} images"
        + (f" ({skipped} of {summary.num_images} skipped: "
           f"{describe_reasons(summary.skip_reasons)}; they count as missed)" if skipped else "")
        + " "
        f"({record['images_per_second']:.2f} images/s; network "
        f"{record['network_ms_per_image']:.1f} ms, decoding and I/O "
        f"{record['host_ms_per_image']:.1f} ms per image)")
    log(format_metrics(summary.metrics))
    log(f"results: {os.path.join(out_dir, RESULTS_FILE)}; metrics: "
        f"{os.path.join(out_dir, METRICS_FILE)}")
