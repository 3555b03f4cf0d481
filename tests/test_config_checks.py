"""The meaning checks of configuration values (src/config_checks.py): one table covering every
key of default_config.yaml, and a wrong value of each key stopping with one line."""
import subprocess
import sys

import pytest

from src.config import DEFAULT_CONFIG_PATH, ConfigError, parse_config, read_yaml
from src.config_checks import RULES
from tests.conftest import REPO_ROOT

DEFAULT_KEYS = list(read_yaml(DEFAULT_CONFIG_PATH))


def test_every_default_key_has_a_rule():
    missing = [key for key in DEFAULT_KEYS if key not in RULES]
    assert not missing, f"keys without a rule in src/config_checks.RULES: {missing}"
    assert not [key for key in RULES if key not in DEFAULT_KEYS], "rules of keys that do not exist"


def test_the_defaults_pass():
    parse_config([])
    parse_config(["--config_path", str(REPO_ROOT / "configs" / "toy.yaml")])


@pytest.mark.parametrize("key", DEFAULT_KEYS)
def test_a_wrong_value_of_every_key_is_one_line(key):
    bad = RULES[key].bad
    with pytest.raises(ConfigError) as info:
        parse_config([f"--{key}", bad])
    message = str(info.value)
    assert f"'{key}'" in message and "\n" not in message, message


@pytest.mark.parametrize("args, message", [
    (["--lr_steps", "abc"], "bad value 'abc' for 'lr_steps'"),
    (["--seed", "-1"], "bad value -1 for 'seed'"),
    (["--max_epoch_train", "0"], "bad value 0 for 'max_epoch_train'"),
    (["--inference_img_size", "0"], "bad value 0 for 'inference_img_size'"),
    (["--insize", "0"], "bad value 0 for 'insize': expected a positive multiple of 8"),
    (["--insize", "-8"], "bad value -8 for 'insize'"),
    (["--config_path", str(REPO_ROOT / "src")], "is a folder, not a config file"),
    (["--min_box_size", "600"], "'min_box_size' (600) must not exceed 'max_box_size' (512)"),
])
def test_train_py_exits_2_with_one_line(args, message):
    result = subprocess.run([sys.executable, "train.py", *args], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_choices_are_stated_once_and_checked():
    """A choice key's allowed values live in its rule only; the modules that branch on them
    read them from there, and a value outside them is refused naming them."""
    from src.evaluate.backends import BACKENDS
    from src.train.lr_schedule import LR_TYPES
    from src.train.optimizer import OPTIMIZERS
    from src.train.train_step import TRAIN_TYPES
    assert RULES["device_target"].allowed == ("auto", "GPU", "Ascend", "CPU")
    assert BACKENDS is RULES["backend"].allowed and LR_TYPES is RULES["lr_type"].allowed
    assert OPTIMIZERS is RULES["optimizer"].allowed and TRAIN_TYPES is RULES["train_type"].allowed
    with pytest.raises(ConfigError, match="'file_format': expected one of MINDIR, AIR, ONNX$"):
        parse_config(["--file_format", "PB"])
    with pytest.raises(ConfigError, match="'GRADIENT_CLIP_TYPE': expected one of 0, 1$"):
        parse_config(["--GRADIENT_CLIP_TYPE", "2"])
    for path in ("default_config.yaml", "src/config.py"):
        text = (REPO_ROOT / path).read_text()
        assert "fix_loss_scale, clip_grad" not in text and "'Ascend', 'CPU'" not in text, path


def test_binary_config_file(tmp_path):
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="weights.bin: not a text file"):
        parse_config(["--config_path", str(binary)])


def test_input_paths_of_the_wrong_kind(tmp_path):
    with pytest.raises(ConfigError, match="'ann': expected a readable file"):
        parse_config(["--ann", str(tmp_path)])
    with pytest.raises(ConfigError, match="'imgpath_val': expected a readable folder"):
        parse_config(["--imgpath_val", str(DEFAULT_CONFIG_PATH)])
    # missing paths are left to the command that needs them
    assert parse_config(["--ann", str(tmp_path / "later.json")]).ann.endswith("later.json")
    assert parse_config(["--resume", "auto"]).resume == "auto"
