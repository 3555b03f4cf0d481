"""Checkpoints and resume: a run stopped after k steps and resumed ends where an uninterrupted
run ends; checkpoints are pruned, loadable by load_weights, and bad resumes fail clearly.

Uses a tiny OpenPoseNet-shaped network and in-memory data (same loop, optimizer and
checkpoint code as train.py); tests/test_train_cli.py covers the real network and pipeline.
"""
import numpy as np
import pytest

from src.model.checkpoint import read_checkpoint
from src.model.model_files import load_weights
from src.train.data import ArrayTrainData, epoch_seed
from src.train.errors import NonFiniteLossError, TrainError
from src.train.loop import run_training
from src.train.settings import default_settings
from tests.tiny_nets import tiny_pose_net

INSIZE = 16
SAMPLES, BATCH = 7, 2          # 3 batches per epoch, one sample dropped


def toy_data(seed=0, nan=False):
    rng = np.random.default_rng(seed)
    s = INSIZE // 8
    images = rng.uniform(-0.5, 0.5, (SAMPLES, 3, INSIZE, INSIZE)).astype(np.float32)
    pafs = rng.uniform(-1, 1, (SAMPLES, 38, s, s)) * 0.5
    if nan:
        pafs[:] = np.nan      # (a NaN image would not do: ReLU maps NaN to 0 on the CPU)
    return ArrayTrainData(images, pafs,
                          rng.uniform(0, 1, (SAMPLES, 19, s, s)),
                          (rng.uniform(0, 1, (SAMPLES, s, s)) > 0.25), BATCH, shuffle=True, seed=11)


def settings(tmp_path, **changes):
    values = dict(save_model_path=str(tmp_path), batch_size=BATCH, max_epoch=4, lr=3e-3,
                  lr_steps=(5,), lr_gamma=0.5, optimizer="Adam", group_params=True,
                  train_type="fix_loss_scale", loss_scale=256.0, log_interval=0, ckpt_interval=2,
                  keep_checkpoint_max=2, progress=False, seed=11)
    values.update(changes)
    return default_settings(**values)


def _weights(net):
    return {p.name: p.asnumpy().copy() for p in net.get_parameters()}


def _quiet(_line):
    pass


def test_array_data_order_is_per_epoch_and_skippable():
    data = toy_data()
    assert data.steps_per_epoch == 3
    full = [b[0] for b in data.batches(2)]
    skipped = [b[0] for b in data.batches(2, skip_batches=2)]
    assert len(full) == 3 and len(skipped) == 1
    np.testing.assert_array_equal(skipped[0], full[2])
    assert not np.array_equal(data.order(0), data.order(1))
    assert epoch_seed(1, 3) == epoch_seed(1, 3) != epoch_seed(2, 3)


@pytest.mark.parametrize("train_type, optimizer", [("fix_loss_scale", "Adam"),
                                                   ("clip_grad", "Momentum")])
def test_killed_and_resumed_run_matches_uninterrupted(ms_cpu, tmp_path, train_type, optimizer):
    total, stop_at = 8, 4       # 3 steps per epoch: stop in the middle of epoch 2
    common = dict(train_type=train_type, optimizer=optimizer, group_params=optimizer == "Adam",
                  clip_value=0.5)
    straight_net = tiny_pose_net(seed=1)
    straight = run_training(settings(tmp_path / "a", max_train_steps=total, **common), toy_data(),
                            straight_net, log=_quiet)
    assert straight.global_step == total

    first_net = tiny_pose_net(seed=1)
    first = run_training(settings(tmp_path / "b", max_train_steps=stop_at, **common), toy_data(),
                         first_net, log=_quiet)
    assert first.global_step == stop_at and first.last_checkpoint.endswith("0-2_1.ckpt")
    resumed_net = tiny_pose_net(seed=99)        # different init: everything must come from the file
    resumed = run_training(settings(tmp_path / "b", max_train_steps=total, resume="auto", **common),
                           toy_data(), resumed_net, log=_quiet)
    assert resumed.resumed_from == first.last_checkpoint
    assert resumed.steps_run == total - stop_at and resumed.global_step == total

    expected, got = _weights(straight_net), _weights(resumed_net)
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-5, err_msg=name)
    # and the weights did move
    start = _weights(tiny_pose_net(seed=1))
    assert max(np.abs(expected[n] - start[n]).max() for n in start) > 1e-3


def test_resumed_run_reads_its_checkpoint_once(ms_cpu, tmp_path, monkeypatch):
    """The resume checkpoint is found and read once (plan_start) and handed down: restoring
    the weights and the optimizer state reads nothing again."""
    from src.train import checkpoint_manager
    from src.train.network_setup import plan_start
    run_training(settings(tmp_path, max_train_steps=2), toy_data(), tiny_pose_net(seed=1), log=_quiet)
    reads = []

    def counting_reader(path):
        reads.append(str(path))
        return read_checkpoint(path)

    def no_second_read(path):
        raise AssertionError(f"{path} read a second time")

    resumed_settings = settings(tmp_path, max_train_steps=3, resume="auto")
    net = tiny_pose_net(seed=2)
    start = plan_start(resumed_settings, network=net, log=_quiet, reader=counting_reader)
    monkeypatch.setattr(checkpoint_manager, "read_checkpoint", no_second_read)
    result = run_training(resumed_settings, toy_data(), net, log=_quiet, start=start)
    assert reads == [str(tmp_path / "ckpt_0" / "0-1_2.ckpt")], reads
    assert result.resumed_from == reads[0] and result.global_step == 3


def test_checkpoints_pruned_and_loadable(ms_cpu, tmp_path):
    net = tiny_pose_net(seed=2)
    result = run_training(settings(tmp_path, max_train_steps=7), toy_data(), net, log=_quiet)
    ckpt_dir = tmp_path / "ckpt_0"
    names = sorted(p.name for p in ckpt_dir.iterdir())
    # saved at steps 2, 4, 6 (interval 2) and 7 (end); keep_checkpoint_max 2
    assert names == ["0-2_3.ckpt", "0-3_1.ckpt"], names
    assert result.last_checkpoint == str(ckpt_dir / "0-3_1.ckpt")
    entries = read_checkpoint(result.last_checkpoint)
    assert int(entries["step_num"]) == 7 and int(entries["epoch_num"]) == 2
    assert int(entries["step_num_in_epoch"]) == 1 and int(entries["global_step"].reshape(-1)[0]) == 7
    assert "moment1.stage_2.conv1_L1.weight" in entries
    other = tiny_pose_net(seed=3)
    report = load_weights(other, result.last_checkpoint)
    assert not report.missing and not report.unexpected
    for name, value in _weights(net).items():
        np.testing.assert_array_equal(_weights(other)[name], value)


def test_resume_past_the_end_does_nothing(ms_cpu, tmp_path):
    run_training(settings(tmp_path, max_train_steps=3), toy_data(), tiny_pose_net(seed=1), log=_quiet)
    again = run_training(settings(tmp_path, max_train_steps=3, resume="auto"), toy_data(),
                         tiny_pose_net(seed=1), log=_quiet)
    assert again.steps_run == 0 and again.global_step == 3


def test_a_new_run_refuses_a_folder_with_an_earlier_runs_checkpoints(ms_cpu, tmp_path):
    """Without --resume, a second run would rotate the first run's checkpoints over its own."""
    from src.train.errors import TrainError
    run_training(settings(tmp_path, max_train_steps=3), toy_data(), tiny_pose_net(seed=1), log=_quiet)
    before = sorted(p.name for p in (tmp_path / "ckpt_0").iterdir())
    with pytest.raises(TrainError, match=r"holds checkpoints of an earlier run \(newest 0-1_3\.ckpt\): "
                                         "continue it with --resume auto"):
        run_training(settings(tmp_path, max_train_steps=3), toy_data(), tiny_pose_net(seed=1),
                     log=_quiet)
    assert sorted(p.name for p in (tmp_path / "ckpt_0").iterdir()) == before, "checkpoints changed"


def test_bad_resume_files(ms_cpu, tmp_path):
    with pytest.raises(TrainError, match="resume checkpoint not found"):
        run_training(settings(tmp_path, resume=str(tmp_path / "nope.ckpt")), toy_data(),
                     tiny_pose_net(seed=1), log=_quiet)
    import mindspore as ms
    weights_only = tmp_path / "weights.ckpt"
    ms.save_checkpoint(tiny_pose_net(seed=1), str(weights_only))
    with pytest.raises(TrainError, match="not a training checkpoint"):
        run_training(settings(tmp_path, resume=str(weights_only)), toy_data(), tiny_pose_net(seed=1),
                     log=_quiet)
    adam = run_training(settings(tmp_path / "adam", max_train_steps=1), toy_data(), tiny_pose_net(seed=1),
                        log=_quiet)
    with pytest.raises(TrainError, match="another optimizer"):
        run_training(settings(tmp_path, resume=adam.last_checkpoint, optimizer="Momentum"),
                     toy_data(), tiny_pose_net(seed=1), log=_quiet)


def test_nan_loss_stops_with_a_clear_message(ms_cpu, tmp_path):
    with pytest.raises(NonFiniteLossError, match="loss is nan at epoch 1, step 1"):
        run_training(settings(tmp_path, max_train_steps=3), toy_data(nan=True), tiny_pose_net(seed=1),
                     log=_quiet)


def test_loss_meter_and_report_line():
    from src.train.loss_report import LossMeter, format_report
    meter = LossMeter()
    meter.add(1.0, [0.1, 0.2], [0.3, 0.4])
    meter.add(3.0, [0.3, 0.4], [0.5, 0.6])
    report = meter.report(images_per_step=4)
    assert report["loss"] == 2.0 and report["steps"] == 2
    np.testing.assert_allclose(report["paf"], [0.2, 0.3])
    np.testing.assert_allclose(report["heatmap"], [0.4, 0.5])
    assert report["images_per_s"] > 0
    line = format_report(report, epoch=0, step_in_epoch=2, steps_per_epoch=10, global_step=2, lr=1e-4)
    assert line.startswith("epoch 1 step 2/10 (global 2): mean loss 2.000000")
    assert "paf stages [0.20000 0.30000]" in line and "lr 1.000e-04" in line and "img/s" in line
    assert meter.report(4)["steps"] == 0
