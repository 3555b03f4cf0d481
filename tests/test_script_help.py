"""Every entry point's --help lists the keys its code reads and no other, each described (one
line, from default_config.yaml's comments), grouped, with the values it accepts (from
src/config_checks.RULES), its default or "(required)", and examples.

"Reads" is measured: each configuration-driven script runs for real on tiny inputs with a
configuration object that records every key read from it (tests/config_reads.py), and the keys
read must be the keys the script declares (its ``command()``), except the few read only on a
branch a one-process CPU run cannot take (listed below with the reason). The argparse scripts
must read every option they declare (``args.<option>`` in their ``main``).
"""
import ast
import inspect
import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from src.config import HELP_GROUPS, read_descriptions, read_yaml
from src.config_checks import RULES
from tests.conftest import REPO_ROOT

PYTHON = sys.executable
CONFIG_SCRIPTS = ("train.py", "eval.py", "export.py", "scripts/infer.py")
ARGPARSE_SCRIPTS = ("scripts/gen_ignore_mask.py", "scripts/convert_cmu_caffemodel.py",
                    "scripts/convert_weights.py")
DEFAULTS = read_yaml(REPO_ROOT / "default_config.yaml")
DESCRIPTIONS = read_descriptions()

#: Keys a script reads only on a branch a one-process CPU run does not take, and why.
OTHER_BRANCHES = {
    "train.py": {key: "read instead of the one-card key when several processes train"
                 for key in ("max_epoch_train_NP", "lr_steps_NP", "optimizer_NP",
                             "group_params_NP", "train_type_NP")},
}


def command_of(script):
    """The :class:`src.config.Command` a script declares."""
    return runpy.run_path(str(REPO_ROOT / script), run_name="script_help")["command"]()


def run_help(script):
    result = subprocess.run([PYTHON, script, "--help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def listed_keys(help_text):
    """The keys a --help text lists (lines starting with two spaces and --key)."""
    return re.findall(r"^  --([A-Za-z_][A-Za-z0-9_]*)\b", help_text, flags=re.MULTILINE)


@pytest.mark.parametrize("script", CONFIG_SCRIPTS)
def test_every_key_a_script_declares_is_described_and_checked(script):
    command = command_of(script)
    assert set(command.groups) <= set(HELP_GROUPS), f"{script}: unknown groups {set(command.groups)}"
    keys = command.keys
    assert len(keys) == len(set(keys)), f"{script}: a key in two groups"
    unknown = [key for key in keys if key not in DEFAULTS]
    assert not unknown, f"{script} declares keys default_config.yaml does not have: {unknown}"
    undescribed = [key for key in keys if not DESCRIPTIONS.get(key)]
    assert not undescribed, (f"{script}: keys without a description (an end-of-line comment in "
                             f"default_config.yaml): {undescribed}")
    assert all(key in RULES for key in keys)
    assert set(command.required) <= set(keys), f"{script}: required keys it does not read"
    assert command.examples and all(script.split("/")[-1] in example or "..." in example
                                    for example in command.examples), command.examples


def test_every_configuration_key_is_read_by_some_script():
    from src.data.ignore_mask import build_parser
    read = {key for script in CONFIG_SCRIPTS for key in command_of(script).keys}
    read |= {action.dest for action in build_parser()._actions if action.dest in DEFAULTS}
    assert set(DEFAULTS) - read == set(), "keys of default_config.yaml that no script reads"


@pytest.mark.parametrize("script", CONFIG_SCRIPTS)
def test_help_lists_exactly_the_declared_keys(script):
    command = command_of(script)
    text = run_help(script)
    assert listed_keys(text) == list(command.keys), text
    entries = {key: text.split(f"\n  --{key} ", 1)[1].split("\n  --", 1)[0] for key in command.keys}
    for key, entry in entries.items():
        rule = RULES[key]
        if key in command.required:
            assert "(required)" in entry and "default" not in entry, entry
        else:
            assert "(required)" not in entry and "default" in entry, entry
        if isinstance(DEFAULTS[key], bool):
            assert entry.startswith("True|False"), entry
        if rule.allowed:
            assert entry.startswith("{" + ",".join(map(str, rule.allowed)) + "}"), entry
    assert "\nexamples:\n" in text
    assert "one of [" not in text and "(no description)" not in text


def test_eval_help_is_evaluation_only():
    text = run_help("eval.py")
    for key in ("lr_steps", "imgpath_train", "lr", "batch_size", "input", "file_format"):
        assert f"--{key} " not in text, f"eval.py --help mentions --{key}"
    assert "--model_path FILE           (required)" in text


def test_a_flag_the_script_does_not_read_is_accepted_with_a_note(capsys):
    from src.config import load_config
    command = command_of("eval.py")
    cfg = load_config(["--lr", "0.5", "--eva_num", "3", "--imgpath_train=x"], command=command)
    assert cfg.eva_num == 3
    assert capsys.readouterr().err == ("eval.py: note: --lr, --imgpath_train not used by eval.py "
                                       "(see --help)\n")
    load_config(["--eva_num", "3"], command=command)
    assert capsys.readouterr().err == ""


def test_infer_help_shows_its_usage_text_and_what_input_takes():
    import scripts.infer as infer_script
    text = run_help("scripts/infer.py")
    assert text.startswith(infer_script.__doc__.strip().splitlines()[0]), text[:300]
    assert "python scripts/infer.py --model_path CKPT --input PATH" in text
    entry = text.split("\n  --input PATH", 1)[1].split("\n  --", 1)[0]
    assert "(required)" in entry and "an image, a folder of images or a video" in entry, entry


@pytest.mark.parametrize("script", ARGPARSE_SCRIPTS)
def test_argparse_scripts_describe_group_and_read_every_option(script):
    if script == "scripts/gen_ignore_mask.py":
        from src.data import ignore_mask as module
        build_parser, main = module.build_parser, module.main
    else:
        namespace = runpy.run_path(str(REPO_ROOT / script), run_name="script_help")
        build_parser, main = namespace["build_parser"], namespace["main"]
    parser = build_parser()
    text = run_help(script)
    assert "\nexamples:\n" in text
    tree = ast.parse(inspect.getsource(main))
    read = {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "args"}
    options = {action.dest for action in parser._actions if action.dest != "help"}
    for group in parser._action_groups:
        if group._group_actions and group.title not in ("options", "optional arguments"):
            assert group.title in HELP_GROUPS, group.title
    assert all(action.help for action in parser._actions), "an option without a description"
    assert options and options <= read, f"{script}: options main does not read: {options - read}"
    for action in parser._actions[1:]:      # after -h
        if action.required:
            assert action.help.startswith("(required)"), action.help
        shown = action.option_strings[0] if action.option_strings else action.metavar
        assert f"  {shown} " in text, shown


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Each configuration-driven script run on tiny inputs, recording the keys it reads:
    ``{script: (status, keys read)}``. train.py trains a tiny network for one step with a
    validation; the others use its checkpoint."""
    tmp = tmp_path_factory.mktemp("reads")
    toy = tmp / "toy"
    subprocess.run([PYTHON, "scripts/make_toy_coco.py", "--out", str(toy), "--num_train", "6",
                    "--num_val", "1", "--size", "128", "--seed", "3", "--quiet"],
                   check=True, cwd=REPO_ROOT, timeout=120)
    val_ann = str(toy / "annotations" / "person_keypoints_val2017.json")
    inference = ["--device_target", "CPU", "--inference_img_size", "64", "--multi_scale", "True",
                 "--inference_scales", "[1]", "--flip", "True"]
    runs = {
        "train.py": ["--imgpath_train", str(toy / "train2017"), "--jsonpath_train",
                     str(toy / "annotations" / "person_keypoints_train2017.json"),
                     "--maskpath_train", str(toy / "ignore_mask_train"), "--insize", "64",
                     "--batch_size", "1", "--max_train_steps", "1", "--width_mult", "0.125",
                     "--num_stages", "1", "--num_parallel_workers", "1", "--val_interval", "1",
                     "--val_num", "1", "--imgpath_val", str(toy / "val2017"), "--ann", val_ann,
                     "--save_model_path", str(tmp / "run")] + inference,
        "eval.py": ["--model_path", str(tmp / "run" / "ckpt_0" / "0-1_1.ckpt"),
                    "--imgpath_val", str(toy / "val2017"), "--ann", val_ann, "--vis", "True",
                    "--output_img_path", str(tmp / "eval")] + inference,
        "export.py": ["--device_target", "CPU", "--model_path",
                      str(tmp / "run" / "ckpt_0" / "0-1_1.ckpt"), "--file_format", "ONNX",
                      "--file_name", str(tmp / "exported"), "--insize", "64"],
        "scripts/infer.py": ["--model_path", str(tmp / "run" / "ckpt_0" / "0-1_1.ckpt"),
                             "--input", str(toy / "val2017"), "--output", str(tmp / "infer")]
                            + inference,
    }
    results = {}
    for script, args in runs.items():
        out = tmp / (Path(script).stem + ".json")
        proc = subprocess.run([PYTHON, "-m", "tests.config_reads", str(out), script, *args],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0 and out.is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
        record = json.loads(out.read_text())
        assert record["status"] == 0, f"{script} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        results[script] = set(record["reads"])
    return results


@pytest.mark.parametrize("script", CONFIG_SCRIPTS)
def test_a_script_reads_exactly_the_keys_it_declares(recorded, script):
    declared = set(command_of(script).keys)
    read = recorded[script]
    other_branches = set(OTHER_BRANCHES.get(script, {}))
    assert read - declared == set(), f"{script} reads keys its --help does not list"
    assert declared - read - other_branches == set(), \
        f"{script} lists keys its code did not read (add the branch to OTHER_BRANCHES if it has one)"
    assert not other_branches & read, f"{script}: keys of OTHER_BRANCHES were read: tidy the list"
    sources = "\n".join(path.read_text() for path in (REPO_ROOT / "src").rglob("*.py")
                        if path.name != "config_checks.py")
    for key in other_branches:
        assert re.search(rf"\.{key}\b", sources), f"{key}: no code reads it"
