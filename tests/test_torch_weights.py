"""The torch-free reader of PyTorch weight files: files written by torch itself
(tests/data/torch/, made by tests/make_torch_fixtures.py) read to the arrays torch saved, the
torch-free writer of the tests agrees with it, malicious pickles are refused before anything
runs, bad files are one-line errors, and torch is never imported."""
import builtins
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from src.model.torch_pickle import TorchWeightsError, UnsafeWeightsError
from src.model.torch_weights import read_state_dict, read_torch_file, state_dict_of, torch_file_kind
from tests.conftest import REPO_ROOT
from tests.torch_files import (
    PickleEmitter,
    legacy_file_bytes,
    state_pickle,
    write_malicious,
    write_state_dict,
    zip_file_bytes,
)

FIXTURES = REPO_ROOT / "tests" / "data" / "torch"
PLAIN_FILES = ("plain_zip.pth", "plain_legacy.pth", "plain_legacy_protocol4.pth")
NESTED_FILES = ("nested_zip.pth", "nested_legacy.pth")


def _expected(prefix):
    with np.load(FIXTURES / "expected.npz") as stored:
        return {name[len(prefix):]: stored[name] for name in stored.files if name.startswith(prefix)}


def _assert_same(got, expected, label):
    assert list(got) == list(expected), f"{label}: names {list(got)} != {list(expected)}"
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, f"{label} '{name}': {got[name].dtype} != {value.dtype}"
        assert got[name].shape == value.shape, f"{label} '{name}': {got[name].shape} != {value.shape}"
        np.testing.assert_array_equal(got[name], value, err_msg=f"{label} '{name}'")


def test_fixtures_are_small():
    total = sum(p.stat().st_size for p in FIXTURES.iterdir())
    assert total < 100_000, f"torch fixtures take {total} bytes"


@pytest.mark.parametrize("name", PLAIN_FILES)
def test_reads_what_torch_saved(name):
    """Every dtype (float32/16/64, bfloat16 widened, int64/32, uint8, bool), a scalar, an empty
    tensor, a parameter, a transposed view and two strided views of one storage."""
    got = read_torch_file(FIXTURES / name)
    _assert_same(got, _expected("plain/"), name)
    assert got["1.num_batches_tracked"].dtype == np.int64 and got["1.num_batches_tracked"] == 1
    assert not np.shares_memory(got["shared_a"], got["shared_b"])  # copies, not views of the file
    assert got["shared_a"].flags.writeable


@pytest.mark.parametrize("name", NESTED_FILES)
def test_nested_state_dict_and_module_prefix(name):
    obj = read_torch_file(FIXTURES / name)
    assert obj["epoch"] == 7 and obj["arch"] == "tiny" and obj["best"] == 0.25
    state = state_dict_of(obj, name)
    expected = {k[len("module."):]: v for k, v in _expected("nested/state_dict/").items()}
    _assert_same(state, expected, name)
    _assert_same(read_state_dict(FIXTURES / name), expected, name)


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("folder", ["archive", "body_pose_model"])
def test_torch_free_writer_round_trip(tmp_path, layout, folder):
    """The tests' writer (tests/torch_files.py) and the reader agree; the zip folder name varies."""
    rng = np.random.default_rng(1)
    state = {"conv1_1.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             "conv1_1.bias": rng.standard_normal(4).astype(np.float32),
             "half": rng.standard_normal((2, 2)).astype(np.float16),
             "double": rng.standard_normal(3), "count": np.array(5, np.int64)}
    path = write_state_dict(tmp_path / "w.pth", state, layout, folder=folder)
    _assert_same(read_state_dict(path), state, layout)


def test_writer_matches_torch_layout_of_real_files():
    """The writer's zip entries are the ones torch writes (the reader accepts both alike)."""
    with zipfile.ZipFile(FIXTURES / "plain_zip.pth") as archive:
        folder = archive.namelist()[0].split("/")[0]
        names = set(archive.namelist())
    assert {f"{folder}/data.pkl", f"{folder}/byteorder", f"{folder}/version"} <= names
    assert torch_file_kind((FIXTURES / "plain_legacy.pth").read_bytes()[:64]) == "legacy"
    assert torch_file_kind((FIXTURES / "plain_legacy_protocol4.pth").read_bytes()[:64]) == "legacy"
    assert torch_file_kind((FIXTURES / "plain_zip.pth").read_bytes()[:64]) == "zip"


# ---------------------------------------------------------------------------------------------
# Malicious files
# ---------------------------------------------------------------------------------------------
def _payloads(marker):
    """(function, args, the name the refusal must quote) for the three classic payloads."""
    return [
        (os.system, (f"touch {marker}",), f"{os.system.__module__}.system"),
        (builtins.eval, (f"open({str(marker)!r}, 'w').close()",), "builtins.eval"),
        (subprocess.Popen, (["touch", str(marker)],), "subprocess.Popen"),
    ]


def test_payload_is_live_under_plain_pickle(tmp_path):
    """Control: plain pickle runs the payload (so the refusals below are not vacuous)."""
    from tests.torch_files import malicious_pickle
    marker = tmp_path / "ran"
    pickle.loads(malicious_pickle(os.system, f"touch {marker}"))
    assert marker.exists()


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_malicious_pickles_are_refused(tmp_path, layout, which):
    marker = tmp_path / "pwned"
    function, args, qualified = _payloads(marker)[which]
    path = write_malicious(tmp_path / "evil.pth", function, *args, layout=layout)
    with pytest.raises(UnsafeWeightsError) as error:
        read_torch_file(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: refuses to load '{qualified}' from a weights file"), message
    assert not marker.exists(), "the payload ran"


def test_payload_in_the_legacy_header_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_payloads(marker)[0][0:2][0], protocol=2)  # a bare reference to os.system
    path = tmp_path / "evil.pth"
    path.write_bytes(legacy_file_bytes(evil, [], header_pickles=[
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), evil]))
    with pytest.raises(UnsafeWeightsError, match="refuses to load '(posix|nt).system'"):
        read_torch_file(path)


@pytest.mark.parametrize("opcode_bytes, name", [
    (pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.EMPTY_TUPLE + pickle.NEWOBJ, "NEWOBJ"),
    (pickle.EMPTY_LIST + pickle.EMPTY_DICT + pickle.BUILD, "BUILD on a list"),
    (pickle.MARK + pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.OBJ, "OBJ"),
])
def test_object_building_opcodes_are_refused(tmp_path, opcode_bytes, name):
    data = pickle.PROTO + b"\x02" + opcode_bytes + pickle.STOP
    path = tmp_path / "odd.pth"
    path.write_bytes(zip_file_bytes(data, []))
    with pytest.raises(UnsafeWeightsError, match=f"refuses pickle opcode {name}"):
        read_torch_file(path)


# ---------------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------------
def _cut(path, size, tmp_path):
    out = tmp_path / f"cut_{size}_{path.name}"
    out.write_bytes(path.read_bytes()[:size])
    return out


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.pth", "no such file"),
    (lambda d: (d / "text.pth").write_text("hello\n") and d / "text.pth", "not a PyTorch weights file"),
    (lambda d: _cut(FIXTURES / "plain_legacy.pth", 900, d), "corrupt or truncated pickle"),
    (lambda d: _cut(FIXTURES / "plain_legacy.pth", 3500, d), "truncated"),
    (lambda d: _cut(FIXTURES / "plain_zip.pth", 3000, d), "damaged zip archive"),
])
def test_bad_files_are_one_line_errors(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(TorchWeightsError) as error:
        read_torch_file(path)
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)
    assert str(error.value).startswith(str(path))


def test_zip_without_data_pkl_is_not_a_weights_file(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(TorchWeightsError, match="0 '<folder>/data.pkl' entries"):
        read_torch_file(path)


def test_a_state_dict_without_tensors(tmp_path):
    with pytest.raises(TorchWeightsError, match="not a state dict of tensors"):
        state_dict_of([1, 2], "x.pth")
    with pytest.raises(TorchWeightsError, match="a dictionary without tensors"):
        state_dict_of({"epoch": 3}, "x.pth")


def test_reader_never_imports_torch(tmp_path):
    """With a poisoned 'torch' package first on sys.path, reading every fixture works and
    nothing named torch is imported."""
    poison = tmp_path / "poison" / "torch"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text("raise SystemExit('torch was imported')\n")
    code = (
        "import sys\n"
        "from src.model.torch_weights import read_torch_file\n"
        f"for name in {list(PLAIN_FILES + NESTED_FILES)!r}:\n"
        f"    read_torch_file({str(FIXTURES)!r} + '/' + name)\n"
        "assert not [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "print('read without torch')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(poison.parent), str(REPO_ROOT)])}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "read without torch" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["plain_zip.pth", "plain_legacy.pth"])
def test_damaged_files_give_only_one_line_errors(tmp_path, name):
    """Every truncation (step 11 bytes) and 400 random 1-3 byte corruptions of a torch-written
    file: read, or a TorchWeightsError of one line; never another exception."""
    data = (FIXTURES / name).read_bytes()
    rng = np.random.default_rng(19)
    variants = [data[:cut] for cut in range(0, len(data), 11)]
    for _ in range(400):
        damaged = bytearray(data)
        for position in rng.integers(0, len(data), rng.integers(1, 4)):
            damaged[position] = int(rng.integers(256))
        variants.append(bytes(damaged))
    path = tmp_path / name
    failures = 0
    for variant in variants:
        path.write_bytes(variant)
        try:
            read_torch_file(path)
        except TorchWeightsError as exc:
            assert "\n" not in str(exc), str(exc)
            failures += 1
    assert failures > len(variants) // 4, "the damage should be noticed in most variants"


# ---------------------------------------------------------------------------------------------
# Small files that claim much memory or time: refused or read in bounded work
# ---------------------------------------------------------------------------------------------
def test_shared_nested_lists_are_resolved_once(tmp_path):
    """x0 = [t]; x_i = [x_(i-1), x_(i-1)]: 2**40 paths through a few hundred bytes."""
    emitter = PickleEmitter()
    emitter.op(pickle.EMPTY_LIST)
    emitter.tensor_over("0", "FloatStorage", 4, (4,), (1,))
    emitter.op(pickle.APPEND + pickle.BINPUT + b"\x00")
    for level in range(1, 41):
        emitter.op(pickle.EMPTY_LIST + pickle.MARK + pickle.BINGET + bytes([level - 1])
                   + pickle.BINGET + bytes([level - 1]) + pickle.APPENDS + pickle.BINPUT
                   + bytes([level]))
    path = tmp_path / "shared.pth"
    path.write_bytes(zip_file_bytes(emitter.stop(), [("0", np.arange(4, dtype=np.float32))]))
    obj = read_torch_file(path)
    leaf = obj
    for _ in range(40):
        assert leaf[0] is leaf[1], "a shared list was rebuilt instead of resolved once"
        leaf = leaf[0]
    np.testing.assert_array_equal(leaf[0], np.arange(4, dtype=np.float32))


def test_many_tensors_over_one_storage_are_refused(tmp_path):
    emitter, numel = PickleEmitter(), 2 ** 18                      # one storage of 1 MiB
    emitter.empty_ordered_dict()
    emitter.op(pickle.MARK)
    for index in range(100):                                  # 100 MiB of copies
        emitter.string(f"t{index}")
        emitter.tensor_over("0", "FloatStorage", numel, (numel,), (1,))
    emitter.op(pickle.SETITEMS)
    path = tmp_path / "amplified.pth"
    path.write_bytes(zip_file_bytes(emitter.stop(), [("0", np.zeros(numel, np.float32))]))
    with pytest.raises(TorchWeightsError, match="its tensors would take more than") as error:
        read_torch_file(path)
    assert "\n" not in str(error.value)


def test_compressed_entries_are_refused(tmp_path):
    """A deflated storage of a few KB could claim gigabytes; torch.save stores entries as is."""
    data, _ = state_pickle({"w": np.zeros(4, np.float32)})
    buffer = tmp_path / "deflated.pth"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/data/0", b"\0" * (8 * 2 ** 20), zipfile.ZIP_DEFLATED)
    assert buffer.stat().st_size < 100_000
    with pytest.raises(TorchWeightsError, match="is compressed in the archive"):
        read_torch_file(buffer)


def test_an_element_count_past_int64_is_a_one_line_error(tmp_path):
    emitter = PickleEmitter()
    emitter.empty_ordered_dict()
    emitter.string("w")
    emitter.tensor_over("0", "FloatStorage", 4, (2 ** 32 + 1, 2 ** 32 - 1), (0, 0))  # int64 product: -1
    emitter.op(pickle.SETITEM)
    path = tmp_path / "overflow.pth"
    path.write_bytes(zip_file_bytes(emitter.stop(), [("0", np.zeros(4, np.float32))]))
    with pytest.raises(TorchWeightsError) as error:
        read_torch_file(path)
    assert "\n" not in str(error.value)


def test_legacy_storage_keys_must_be_strings(tmp_path):
    data, storages = state_pickle({"w": np.zeros(4, np.float32)}, legacy=True)
    content = legacy_file_bytes(data, storages)
    keys = pickle.dumps(["0"], protocol=2)
    assert content.count(keys) == 1
    path = tmp_path / "int_keys.pth"
    path.write_bytes(content.replace(keys, pickle.dumps([0], protocol=2)))
    with pytest.raises(TorchWeightsError, match="list of storage keys"):
        read_torch_file(path)
