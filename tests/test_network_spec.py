"""Checkpoints say which network they hold: record round trip, inference from shapes, strict
loading, flags that contradict the checkpoint, and the reference's loading rule."""
import numpy as np
import pytest

from src.config import parse_config
from src.model.checkpoint import SPEC_PREFIX, CheckpointError, read_checkpoint
from src.model.model_files import open_network
from src.model.network import OpenPoseNet
from src.model.network_spec import NetworkSpec, checkpoint_spec, infer_spec
from src.train.checkpoint_manager import CheckpointManager

TOY = NetworkSpec(vgg_with_bn=True, width_mult=0.25, num_stages=1)


def _save(entries, path, append=None):
    import mindspore as ms
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in entries.items()], str(path),
                       append_dict=append)
    return str(path)


def _weights(spec, seed=0, prefix=""):
    rng = np.random.default_rng(seed)
    return {prefix + p.name: rng.standard_normal(p.shape).astype(np.float32)
            for p in spec.build().get_parameters()}


def _adam_checkpoint(spec, tmp_path):
    """A checkpoint as train.py writes it (CheckpointManager, Adam state)."""
    import mindspore as ms
    net = spec.build()
    optimizer = ms.nn.Adam(net.trainable_params(), learning_rate=1e-4)
    manager = CheckpointManager(tmp_path / "run", keep_checkpoint_max=1, spec=spec)
    return str(manager.save(net, optimizer, global_step=3, steps_per_epoch=2, loss_scale=16384)), net


def reference_load_model_rule(entries):
    """The reference's load_model / eval.py rule, as data: drop 'moment*', keep 'network.*'
    with its first 8 characters removed, drop everything else."""
    kept = {}
    for key, value in entries.items():
        if key.startswith("moment"):
            continue
        if key.startswith("network."):
            kept[key[8:]] = value
    return kept


@pytest.mark.parametrize("spec", [NetworkSpec(), TOY,
                                  NetworkSpec(vgg_with_bn=False, width_mult=0.5, num_stages=3,
                                              input_scale=256.0)])
def test_record_round_trip_and_inference(ms_cpu, tmp_path, spec):
    path = _save(_weights(spec), tmp_path / "w.ckpt", append=spec.to_record())
    entries = read_checkpoint(path)
    assert NetworkSpec.from_record(entries) == spec
    inferred = infer_spec({k: v for k, v in entries.items() if not k.startswith(SPEC_PREFIX)})
    assert inferred == NetworkSpec(spec.vgg_with_bn, spec.width_mult, spec.num_stages), \
        "shapes alone should give the same network (with the trained normalisation)"


def test_train_checkpoint_records_network_and_loads_strictly(ms_cpu, tmp_path):
    path, net = _adam_checkpoint(TOY, tmp_path)
    entries = read_checkpoint(path)
    assert all(("network." + p.name) in entries for p in net.get_parameters()), "network. prefix"
    loaded, spec, report = open_network(path)
    assert spec == TOY and len(report.loaded) == len(list(net.get_parameters()))
    for p, q in zip(net.get_parameters(), loaded.get_parameters()):
        np.testing.assert_array_equal(p.asnumpy(), q.asnumpy(), err_msg=p.name)


def test_explicit_flag_that_contradicts_checkpoint_is_an_error(ms_cpu, tmp_path):
    path, _ = _adam_checkpoint(TOY, tmp_path)
    entries = read_checkpoint(path)
    # defaults (6 stages, width 1) give way to the record
    assert checkpoint_spec(entries, path, parse_config([])) == TOY
    # the same values given explicitly are fine
    same = parse_config(["--num_stages", "1", "--width_mult", "0.25", "--vgg_with_bn", "True"])
    assert checkpoint_spec(entries, path, same) == TOY
    for flag, value in (("num_stages", "6"), ("width_mult", "1.0"), ("vgg_with_bn", "False")):
        with pytest.raises(CheckpointError, match=f"--{flag} "):
            checkpoint_spec(entries, path, parse_config([f"--{flag}", value]))


def test_missing_or_extra_parameter_stops_loading(ms_cpu, tmp_path):
    path, _ = _adam_checkpoint(TOY, tmp_path)
    entries = read_checkpoint(path)
    removed = "network.stage_1.conv5_CPM_L2.bias"
    short = {k: v for k, v in entries.items() if k != removed}
    with pytest.raises(CheckpointError, match="1 network parameters missing.*stage_1.conv5_CPM_L2.bias"):
        open_network(_save(short, tmp_path / "short.ckpt"))
    extra = dict(entries, **{"network.stage_9.conv1_L1.weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(CheckpointError, match="entries the network lacks.*stage_9"):
        open_network(_save(extra, tmp_path / "extra.ckpt"))


def test_train_checkpoint_fills_reference_network_by_reference_rule(ms_cpu, tmp_path, golden_dir):
    """Every parameter of the reference's OpenPoseNet, by name and shape, from a checkpoint that
    train.py's checkpoint manager writes (full network, Adam state, shape record)."""
    import mindspore as ms
    manifest = []
    for line in (golden_dir / "reference_checkpoint_params.txt").read_text().splitlines():
        if line.strip():
            name, shape = line.split(" ", 1)
            manifest.append((name, tuple(int(v) for v in shape.strip("() ").split(",") if v.strip())))
    path, net = _adam_checkpoint(NetworkSpec(), tmp_path)
    entries = read_checkpoint(path)
    kept = reference_load_model_rule(entries)
    assert sorted(kept) == sorted(name[len("network."):] for name, _ in manifest), \
        "the reference's rule must keep exactly the reference network's parameters"
    for name, shape in manifest:
        assert kept[name[len("network."):]].shape == shape, name
    target = OpenPoseNet()  # same names and shapes as the reference's network
    not_loaded = ms.load_param_into_net(target, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in kept.items()})
    not_loaded = not_loaded[0] if isinstance(not_loaded, tuple) else not_loaded
    assert not not_loaded, f"load_param_into_net left {not_loaded[:3]} unloaded"
    for p in net.get_parameters():
        np.testing.assert_array_equal(target.parameters_dict()[p.name].asnumpy(), p.asnumpy())


def test_reference_checkpoint_loads_with_inferred_network(ms_cpu, tmp_path, golden_dir):
    names = [line.split(" ", 1)[0] for line in
             (golden_dir / "reference_checkpoint_params.txt").read_text().splitlines() if line.strip()]
    weights = _weights(NetworkSpec(), seed=4, prefix="network.")
    assert sorted(weights) == sorted(names)
    weights["moment1.network.stage_1.conv1_CPM_L1.bias"] = np.ones(128, np.float32)
    path = _save(weights, tmp_path / "reference.ckpt", append={"global_step": 10})
    net, spec, report = open_network(path)
    assert spec == NetworkSpec() and len(report.loaded) == 184
    np.testing.assert_array_equal(net.parameters_dict()["stage_6.conv7_L2.bias"].asnumpy(),
                                  weights["network.stage_6.conv7_L2.bias"])


def test_old_unprefixed_checkpoint_loads(ms_cpu, tmp_path):
    path = _save(_weights(TOY, seed=5), tmp_path / "old.ckpt", append={"step_num": 3})
    _, spec, report = open_network(path)
    assert spec == TOY and not report.missing


def test_not_an_openpose_checkpoint(ms_cpu, tmp_path):
    path = _save({"fc.weight": np.zeros((3, 3), np.float32)}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="not an OpenPose checkpoint"):
        open_network(path)
    with pytest.raises(CheckpointError, match="not an OpenPose checkpoint"):
        infer_spec({})


def test_resume_builds_the_network_the_checkpoint_holds(ms_cpu, tmp_path):
    from src.train.network_setup import plan_start
    from src.train.settings import default_settings
    _adam_checkpoint(TOY, tmp_path)  # writes tmp_path/run/ckpt_0/0-2_1.ckpt
    settings = default_settings(save_model_path=str(tmp_path / "run"), resume="auto")
    lines = []
    adopted = plan_start(settings, parse_config([]), log=lines.append).settings
    assert (adopted.vgg_with_bn, adopted.width_mult, adopted.num_stages) == (True, 0.25, 1)
    assert "building that network" in lines[0]
    with pytest.raises(CheckpointError, match="--num_stages 6 contradicts"):
        plan_start(settings, parse_config(["--num_stages", "6"]))
    fresh = default_settings(save_model_path=str(tmp_path / "empty"), resume="auto")
    assert plan_start(fresh, parse_config([])).settings == fresh, "nothing to resume: unchanged"


# ----------------------------------------------------------------------------------------------
# values no network can have (issue 21, points 7 and 14)

def _record(**changes):
    values = {"vgg_with_bn": 0, "width_mult": 0.25, "num_stages": 1, "input_scale": 255.0}
    values.update(changes)
    return {SPEC_PREFIX + key: np.array(value) for key, value in values.items()}


@pytest.mark.parametrize("field, value, allowed", [
    ("num_stages", 7, "a whole number from 1 to 6"), ("num_stages", 2.5, "a whole number"),
    ("num_stages", float("nan"), "a whole number"), ("width_mult", 0.0, "finite number > 0"),
    ("width_mult", float("nan"), "finite number > 0"), ("width_mult", -1.0, "> 0"),
    ("input_scale", 0.0, "from 1 to 65535"), ("input_scale", -255.0, "from 1 to 65535"),
    ("input_scale", float("inf"), "from 1 to 65535"), ("vgg_with_bn", 7, "0 or 1"),
])
def test_record_values_no_network_can_have_are_refused(field, value, allowed):
    with pytest.raises(CheckpointError) as info:
        NetworkSpec.from_record(_record(**{field: value}), "x.ckpt")
    message = str(info.value)
    assert message.startswith(f"x.ckpt: network record {SPEC_PREFIX}{field} is ") and allowed in message
    assert "\n" not in message


def test_record_width_whose_parameters_cannot_fit_names_the_sizes():
    with pytest.raises(CheckpointError, match=r"a network of width_mult 1e\+06 needs at least .* PiB "
                                              r"of memory, .* is available"):
        NetworkSpec.from_record(_record(width_mult=1e6), "x.ckpt")


def test_usable_records_load_unchanged():
    assert NetworkSpec.from_record(_record(), "x.ckpt") == TOY.__class__(width_mult=0.25, num_stages=1)
    cmu = NetworkSpec.from_record(_record(input_scale=256.0, num_stages=6, width_mult=1.0), "x")
    assert (cmu.input_scale, cmu.num_stages) == (256.0, 6)


@pytest.mark.parametrize("text, problem", [("abc", "'abc', not a number"),
                                           ("1e400", "'1e400', not a finite number"),
                                           ("0", "is 0.0; expected a number from 1")])
def test_onnx_metadata_values_checked_like_a_record(text, problem):
    from src.model.onnx_model import spec_from_metadata
    metadata = {SPEC_PREFIX + key: value for key, value in
                {"vgg_with_bn": "0", "width_mult": "0.25", "num_stages": "1", "input_scale": text}.items()}
    with pytest.raises(CheckpointError) as info:
        spec_from_metadata(metadata, "m.onnx")
    assert str(info.value).startswith(f"m.onnx: network record {SPEC_PREFIX}input_scale ")
    assert problem in str(info.value)
    metadata[SPEC_PREFIX + "input_scale"] = "x" * 5000
    with pytest.raises(CheckpointError) as info:
        spec_from_metadata(metadata, "m.onnx")
    assert len(str(info.value)) < 200 and "(5000 characters)" in str(info.value), "echo cut short"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_refused_at_load_naming_the_first_tensor(ms_cpu, tmp_path, bad):
    weights = _weights(TOY)
    names = [p.name for p in TOY.build().get_parameters() if p.name in weights]
    first, later = names[3], names[-1]
    weights[first].reshape(-1)[5] = bad
    weights[later][...] = np.nan
    path = _save(weights, tmp_path / "bad.ckpt", append=TOY.to_record())
    kind = "1 NaN, 0 infinite" if np.isnan(bad) else "0 NaN, 1 infinite"
    with pytest.raises(CheckpointError, match=rf"bad.ckpt: parameter '{first}' holds non-finite "
                                              rf"values \({kind} of \d+\)"):
        open_network(path)


def test_non_finite_weights_refused_on_resume(ms_cpu, tmp_path):
    """--resume goes through the same assignment (src.train.checkpoint_manager)."""
    import mindspore as ms

    from src.train.checkpoint_manager import restore_training_state
    path, net = _adam_checkpoint(TOY, tmp_path)
    entries = read_checkpoint(path)
    name = next(k for k in entries if k.startswith("network.") and k.endswith("weight"))
    entries[name].reshape(-1)[0] = np.nan
    _save(entries, tmp_path / "nan.ckpt")
    optimizer = ms.nn.Adam(net.trainable_params(), learning_rate=1e-4)
    with pytest.raises(CheckpointError, match=rf"parameter '{name[len('network.'):]}' holds non-finite"):
        restore_training_state(str(tmp_path / "nan.ckpt"), net, optimizer, steps_per_epoch=2)
