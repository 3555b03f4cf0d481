"""Validation while training: AP in the log and in metrics.jsonl, best.ckpt kept and loadable."""
import math

import numpy as np

from src.config import parse_config
from src.model.model_files import open_network
from src.model.network_spec import NetworkSpec
from src.train.data import ArrayTrainData
from src.train.loop import run_training
from src.train.metrics_log import read_metrics
from src.train.settings import default_settings
from src.train.validation import BEST_NAME, Validator, read_best_ap
from tests.tiny_nets import seed_weights

TOY = NetworkSpec(vgg_with_bn=True, width_mult=0.25, num_stages=1)


def _data(size=64, count=2, seed=0):
    rng = np.random.default_rng(seed)
    grid = size // 8
    return ArrayTrainData(rng.uniform(-0.5, 0.5, (count, 3, size, size)),
                          rng.uniform(-0.5, 0.5, (count, 38, grid, grid)),
                          rng.uniform(0, 1, (count, 19, grid, grid)),
                          np.ones((count, grid, grid)), batch_size=2, shuffle=False)


def test_validation_logs_ap_and_keeps_best_checkpoint(ms_cpu, tmp_path, coco_sample_dir):
    cfg = parse_config(["--imgpath_val", str(coco_sample_dir),
                        "--ann", str(coco_sample_dir / "person_keypoints_sample.json"),
                        "--val_num", "2", "--inference_img_size", "64"])
    settings = default_settings(save_model_path=str(tmp_path), batch_size=2, max_epoch=2, lr=1e-3,
                                lr_steps=(1000,), log_interval=1, ckpt_interval=0, progress=False,
                                vgg_with_bn=TOY.vgg_with_bn, width_mult=TOY.width_mult,
                                num_stages=TOY.num_stages, device_target="CPU")
    validator = Validator(cfg, tmp_path / "ckpt_0", TOY, interval=1)
    assert len(validator.image_ids) == 2 and validator.best_ap == -math.inf
    lines = []
    result = run_training(settings, _data(), log=lines.append, validator=validator)
    assert result.global_step == 2
    val_lines = [line for line in lines if line.startswith("validation in epoch")]
    assert len(val_lines) == 2 and " AP " in val_lines[0], lines
    assert val_lines[0].endswith(f"; first validation, saved {tmp_path / 'ckpt_0' / BEST_NAME}")
    assert "best so far" not in val_lines[0]
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records["val"]] == [1, 2]
    assert [r["step"] for r in records["train"]] == [1, 2]
    assert all(0 <= r["AP"] <= 1 for r in records["val"])
    best = tmp_path / "ckpt_0" / BEST_NAME
    assert best.is_file() and read_best_ap(best) == max(r["AP"] for r in records["val"])
    network, spec, report = open_network(str(best))
    assert spec == TOY and not report.missing
    # the regular checkpoints are untouched by best.ckpt (resume auto ignores it)
    assert sorted(p.name for p in (tmp_path / "ckpt_0").iterdir()) == ["0-2_1.ckpt", BEST_NAME]


def test_eval_and_validation_give_identical_results_through_one_function(
        ms_cpu, tmp_path, coco_sample_dir, monkeypatch):
    """eval.py's run_evaluation and Validator.run on the same checkpoint and images both call
    coco_eval.evaluate_images, and it returns the same detections and metrics to both."""
    from src.evaluate import coco_eval
    from src.model.checkpoint import network_entries, save_checkpoint_atomic
    from src.train import validation
    spec = NetworkSpec(vgg_with_bn=False, width_mult=0.125, num_stages=2)
    network = seed_weights(spec.build(), seed=0)
    ckpt = tmp_path / "toy.ckpt"
    save_checkpoint_atomic(network_entries(network), ckpt, append_dict=spec.to_record())
    cfg = parse_config(["--model_path", str(ckpt), "--imgpath_val", str(coco_sample_dir),
                        "--ann", str(coco_sample_dir / "person_keypoints_sample.json"),
                        "--eva_num", "3", "--val_num", "3", "--inference_img_size", "64",
                        "--heatmap_peak_thresh", "0.0", "--output_img_path", str(tmp_path / "out")])
    summaries = []
    real = coco_eval.evaluate_images

    def spy(*args, **kwargs):
        summaries.append(real(*args, **kwargs))
        return summaries[-1]

    monkeypatch.setattr(coco_eval, "evaluate_images", spy)
    monkeypatch.setattr(validation, "evaluate_images", spy)
    eval_metrics = coco_eval.run_evaluation(cfg, log=lambda line: None)
    opened, opened_spec, _ = open_network(str(ckpt))
    val_metrics = Validator(cfg, tmp_path / "ckpt_0", opened_spec).run(opened, global_step=1, epoch=1,
                                                                log=lambda line: None)
    assert len(summaries) == 2, "eval and validation must both run coco_eval.evaluate_images"
    by_eval, by_validation = summaries
    assert by_eval.num_images == by_validation.num_images == 3
    assert by_eval.results, "no detections: the comparison would prove little"
    assert by_eval.results == by_validation.results
    assert eval_metrics == val_metrics == by_eval.metrics
