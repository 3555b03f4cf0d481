import subprocess
import sys

import pytest

from src.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    parse_config,
    parse_int_list,
    read_descriptions,
    read_yaml,
)
from tests.conftest import REPO_ROOT

REFERENCE_KEYS = {  # reference keys that must keep their names and defaults
    "train_type": "fix_loss_scale", "train_type_NP": "clip_grad", "vgg_with_bn": False,
    "GRADIENT_CLIP_TYPE": 1, "GRADIENT_CLIP_VALUE": 10.0, "optimizer": "Adam",
    "optimizer_NP": "Momentum", "group_params": True, "group_params_NP": False, "lr": 1e-4,
    "lr_type": "default", "lr_gamma": 0.1, "lr_steps": "100000,200000,250000",
    "lr_steps_NP": "250000,300000", "warmup_epoch": 5, "max_epoch_train": 60,
    "max_epoch_train_NP": 80, "loss_scale": 16384, "batch_size": 10, "min_keypoints": 5,
    "min_area": 1024, "insize": 368, "paf_sigma": 8, "heatmap_sigma": 7,
    "keep_checkpoint_max": 5, "log_interval": 100, "ckpt_interval": 5304, "min_box_size": 64,
    "max_box_size": 512, "min_scale": 0.5, "max_scale": 2.0, "max_rotate_degree": 40,
    "center_perterb_max": 40, "is_distributed": 0, "output_img_path": "./output_imgs/",
    "inference_img_size": 368, "inference_scales": [0.5, 1, 1.5, 2], "gaussian_sigma": 2.5,
    "n_integ_points": 10, "n_integ_points_thresh": 8, "heatmap_peak_thresh": 0.05,
    "inner_product_thresh": 0.05, "limb_length_ratio": 1.0, "length_penalty_value": 1,
    "n_subset_limbs_thresh": 3, "subset_score_thresh": 0.2, "device_id": 0,
    "export_batch_size": 1, "file_name": "openpose", "file_format": "MINDIR",
    "save_model_path": "./checkpoint/", "load_pretrain": False, "imgpath_train": "",
}


def test_reference_keys_and_defaults():
    cfg = parse_config([])
    for key, value in REFERENCE_KEYS.items():
        assert getattr(cfg, key) == value, f"{key}: {getattr(cfg, key)!r} != reference {value!r}"
    assert cfg.device_target == "auto"
    values = read_yaml(DEFAULT_CONFIG_PATH)
    assert "enable_modelarts" not in values and "data_url" not in values


def test_a_reference_style_file_with_help_and_choices_documents(tmp_path):
    """The reference's YAMLs hold values, help texts and choices as three documents; only the
    values count."""
    path = tmp_path / "reference.yaml"
    path.write_text("batch_size: 4\nlr: 0.01\n---\nbatch_size: 'help text'\n---\n"
                    "device_target: ['Ascend', 'GPU']\n")
    assert read_yaml(path) == {"batch_size": 4, "lr": 0.01}
    cfg = parse_config(["--config_path", str(path)])
    assert cfg.batch_size == 4 and cfg.lr == pytest.approx(0.01)


def test_descriptions_are_the_end_of_line_comments(tmp_path):
    path = tmp_path / "described.yaml"
    path.write_text('# header: not a key\nname: "a # b"   # the name\nsize: 3 #no space\n'
                    "bare: 1\n---\nname: 'second document'  # ignored\n")
    assert read_descriptions(path) == {"name": "the name", "size": "no space", "bare": ""}


def test_typed_overrides():
    cfg = parse_config(["--lr", "1e-3", "--vgg_with_bn", "true", "--inference_scales", "[1, 2]",
                        "--batch_size=3", "--load_pretrain", "False", "--GRADIENT_CLIP_VALUE", "5",
                        "--device_target", "CPU"])
    assert cfg.lr == pytest.approx(1e-3) and cfg.vgg_with_bn is True
    assert cfg.inference_scales == [1, 2] and cfg.batch_size == 3 and cfg.load_pretrain is False
    assert isinstance(cfg.GRADIENT_CLIP_VALUE, float) and cfg.device_target == "CPU"
    assert parse_int_list(cfg.lr_steps) == [100000, 200000, 250000]


def test_config_file(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text("insize: 96\nbatch_size: 4\n")
    cfg = parse_config(["--config_path", str(path), "--batch_size", "2"])
    assert cfg.insize == 96 and cfg.batch_size == 2 and cfg.paf_sigma == 8
    path.write_text("insize: 96\nbogus_key: 1\n")
    with pytest.raises(ConfigError, match="unknown key 'bogus_key'"):
        parse_config(["--config_path", str(path)])
    with pytest.raises(ConfigError, match="not found"):
        parse_config(["--config_path", str(tmp_path / "missing.yaml")])


@pytest.mark.parametrize("argv, message", [
    (["--no_such_key", "1"], "unknown key '--no_such_key'"),
    (["--batch_size", "ten"], "bad value 'ten' for 'batch_size': expected an integer"),
    (["--vgg_with_bn", "maybe"], "expected true or false"),
    (["--lr", "fast"], "expected a number"),
    (["--device_target", "TPU"], "expected one of"),
    (["--inference_scales", "{a: 1}"], "expected a YAML list"),
    (["--lr"], "--lr needs a value"),
    (["positional"], "unexpected argument"),
])
def test_bad_keys_and_values(argv, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_config(argv)


def test_cli_exit_code_and_one_line_message():
    result = subprocess.run([sys.executable, "-c", "from src.config import load_config; load_config()",
                             "--batch_size", "x"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "batch_size" in lines[0], result.stderr


# ----------------------------------------------------------------------------------------------
# nested YAML aliases and long echoed values (issue 21, point 15)

def _alias_bomb(levels):
    """``inference_scales`` holding ``levels`` anchors, each a list of 9 aliases of the previous
    one: a few hundred bytes that expand to 9 ** levels numbers."""
    parts = ["&a0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "inference_scales: [" + ", ".join(parts) + "]\n"


@pytest.mark.parametrize("levels", [5, 9])
def test_nested_aliases_are_refused_before_expansion(tmp_path, levels):
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb(levels))
    assert path.stat().st_size < 500
    with pytest.raises(ConfigError) as info:
        parse_config(["--config_path", str(path)])
    assert str(info.value) == (f"{path}: its aliases (*name) expand to more than 10000 values; a "
                               "configuration needs far fewer: write the values out")


def test_few_aliases_still_load_and_recursion_is_refused(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("inference_scales: &s [1, 2]\nlr_steps: &l 5,6\n")
    cfg = parse_config(["--config_path", str(path)])
    assert cfg.inference_scales == [1, 2] and cfg.lr_steps == "5,6"
    path.write_text("inference_scales: &a [1, *a]\n")
    with pytest.raises(ConfigError, match="an alias refers to the node that contains it"):
        parse_config(["--config_path", str(path)])
    with pytest.raises(ConfigError, match="command line: 'inference_scales': its aliases"):
        parse_config(["--inference_scales", _alias_bomb(6).split(": ", 1)[1]])


@pytest.mark.parametrize("argv", [["--lr_steps", "x" * 100000], ["--" + "k" * 5000, "1"],
                                  ["--device_target", "y" * 9000], ["--batch_size", "9" * 3000 + "x"]])
def test_echoed_values_are_cut_to_a_readable_length(argv):
    with pytest.raises(ConfigError) as info:
        parse_config(argv)
    message = str(info.value)
    assert len(message) < 300 and "\n" not in message and "characters)" in message, message[:400]


def test_alias_bomb_config_on_the_command_line_is_one_quick_line(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb(9))
    result = subprocess.run([sys.executable, "eval.py", "--config_path", str(path)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and len(result.stderr) < 300, result.stderr[:1000]
    assert result.stderr.startswith(f"eval.py: error: {path}: its aliases"), result.stderr[:1000]


def test_the_scripts_default_outputs_are_git_ignored():
    """What train.py, eval.py, export.py and scripts/infer.py write when given no output flag
    stays out of `git status`."""
    values = read_yaml(DEFAULT_CONFIG_PATH)
    if subprocess.run(["git", "rev-parse"], cwd=REPO_ROOT, capture_output=True).returncode:
        pytest.skip("not a git checkout")
    paths = [f"{values['save_model_path']}/ckpt_0/0-1_1.ckpt", f"{values['output_img_path']}/x.png",
             f"{values['output']}/people.json", "runs/quickstart/train.log"]
    paths += [values["file_name"] + suffix for suffix in (".mindir", ".air", ".onnx")]
    for path in paths:
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO_ROOT)
        assert ignored.returncode == 0, f"{path} (a default output) is not in .gitignore"
