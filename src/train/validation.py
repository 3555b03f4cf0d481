"""Validation while training: COCO keypoint AP of the network being trained, every few epochs.

Every ``val_interval`` epochs (and after the last one) the network is run, in inference mode,
on the first ``val_num`` images of the validation set (``imgpath_val``, ``ann``) by eval.py's
function (:func:`src.evaluate.coco_eval.evaluate_images`). In a distributed run every rank
takes its shard of those images and rank 0 runs the one COCOeval.
The result goes to the log and to the metrics file; when AP is the best so far, rank 0 writes
``<ckpt dir>/best.ckpt`` (atomically): the network weights, their record and
``openpose_val.best_ap`` / ``openpose_val.best_step``, so a resumed run keeps comparing against it.
"""
import math
import time
from pathlib import Path

from src.codec import TRAINED_INPUT_SCALE
from src.data.coco import load_coco
from src.evaluate.coco_eval import evaluate_images, evaluation_image_ids
from src.evaluate.coco_metrics import STAT_NAMES, ground_truth
from src.evaluate.inference import mindspore_forward
from src.model.checkpoint import VALIDATION_PREFIX, network_entries, read_checkpoint, save_checkpoint_atomic

BEST_NAME = "best.ckpt"
BEST_AP_KEY = VALIDATION_PREFIX + "best_ap"
BEST_STEP_KEY = VALIDATION_PREFIX + "best_step"


class Validator:
    """Runs the validation of a training run (see the module docstring).

    Args:
        cfg: configuration (val_num, imgpath_val, ann, inference_img_size and the decoder and
            multi-scale keys, as eval.py reads them).
        checkpoint_dir: folder of the run's checkpoints (``best.ckpt`` goes there).
        spec: :class:`src.model.network_spec.NetworkSpec` of the trained network (recorded in
            best.ckpt; its ``input_scale`` normalises the images), or None.
        rank, group_size: this process's place in the job.
        all_gather: function mapping a picklable value to every rank's values (distributed), or
            None for a single process.
        interval: validate after every ``interval`` epochs.
    """

    def __init__(self, cfg, checkpoint_dir, spec, rank=0, group_size=1, all_gather=None,
                 interval=1):
        self.cfg = cfg
        self.spec = spec
        self.rank, self.group_size = int(rank), int(group_size)
        self.all_gather = all_gather or (lambda value: [value])
        self.interval = int(interval)
        self.coco = load_coco(cfg.ann)
        self.image_ids = evaluation_image_ids(self.coco, int(cfg.val_num))
        self.coco_gt = ground_truth(self.coco) if self.rank == 0 else None  # COCOeval's
        self.best_path = Path(checkpoint_dir) / BEST_NAME
        self.best_ap = read_best_ap(self.best_path)

    def due(self, epochs_done, last_epoch):
        """True when a validation is due after ``epochs_done`` completed epochs."""
        return epochs_done > 0 and (epochs_done % self.interval == 0 or epochs_done == last_epoch)

    def run(self, network, global_step, epoch, log=print):
        """Validate ``network`` and keep best.ckpt; returns the metrics dict (every rank).

        Args:
            epoch: the 1-based epoch the last step belongs to (for the log line).

        The network is put in inference mode for the run; the caller puts its train cell back
        in training mode.
        """
        started = time.perf_counter()
        scale = self.spec.input_scale if self.spec is not None else TRAINED_INPUT_SCALE
        width_mult = self.spec.width_mult if self.spec is not None else 1.0
        summary = evaluate_images(mindspore_forward(network), self.cfg, self.coco, self.image_ids,
                                  input_scale=scale, width_mult=width_mult, rank=self.rank,
                                  group_size=self.group_size, gather=self.all_gather,
                                  coco_gt=self.coco_gt)
        metrics = summary.metrics if summary is not None else None
        metrics = self.all_gather(metrics)[0] if self.group_size > 1 else metrics
        improved = math.isfinite(metrics["AP"]) and metrics["AP"] > self.best_ap
        line = (f"validation in epoch {epoch} (global step {global_step}, "
                f"{len(self.image_ids)} images, {time.perf_counter() - started:.1f} s): "
                + " ".join(f"{name} {metrics[name]:.4f}" for name in STAT_NAMES[:3] + ("AR",)))
        if improved:
            first = self.best_ap == -math.inf      # nothing to be better than yet (AP may be 0)
            self.best_ap = metrics["AP"]
            if self.rank == 0:
                self._save_best(network, global_step)
                line += f"; {'first validation' if first else 'best so far'}, saved {self.best_path}"
        log(line)
        return metrics

    def _save_best(self, network, global_step):
        append = {BEST_AP_KEY: float(self.best_ap), BEST_STEP_KEY: int(global_step)}
        if self.spec is not None:
            append.update(self.spec.to_record())
        save_checkpoint_atomic(network_entries(network), self.best_path, append_dict=append)


def read_best_ap(path):
    """The best AP stored in a best.ckpt, or -inf when there is none (a new run)."""
    if not Path(path).is_file():
        return -math.inf
    entries = read_checkpoint(path)
    return float(entries[BEST_AP_KEY].reshape(-1)[0]) if BEST_AP_KEY in entries else -math.inf
