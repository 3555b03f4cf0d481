"""export.py's file handling (issue 21, points 4 and 12): the export is written under a short
ASCII temporary name in the output's folder and renamed, so any legal name works, suffixes
match in any case, and a failure, a full disk or a SIGKILL never leaves a partial file under
the final name (and a killed export's temporary is removed by the next export there)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.runtime.atomic_write import TEMPORARY_NAME
from tests.mounts import tiny_disk

REPO = Path(__file__).resolve().parents[1]
SMALL_NET = {"width_mult": 0.25, "num_stages": 1}


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory, ms_cpu):
    from src.model.checkpoint import save_checkpoint_atomic
    from src.model.network_spec import NetworkSpec
    spec = NetworkSpec(**SMALL_NET)
    entries = [{"name": p.name, "data": p} for p in spec.build().get_parameters()]
    return save_checkpoint_atomic(entries, tmp_path_factory.mktemp("small") / "small.ckpt",
                                  append_dict=spec.to_record())


def _export(ckpt, name, fmt):
    from src.model.export import export_network
    return export_network(ckpt, str(name), fmt, batch_size=1, insize=64, stages="final")[0]


def _temporaries(folder):
    return [p.name for p in Path(folder).iterdir() if TEMPORARY_NAME.match(p.name)]


@pytest.mark.parametrize("name, fmt, expected", [
    ("x.MINDIR", "MINDIR", "x.mindir"),      # mindspore.load opens only a lower-case .mindir
    ("y.ONNX", "ONNX", "y.ONNX"), ("my model.mindir", "MINDIR", "my model.mindir"),
    ("modèle é.onnx", "ONNX", "modèle é.onnx"), ("n" * 250 + ".onnx", "ONNX", "n" * 250 + ".onnx"),
    ("plain", "MINDIR", "plain.mindir"), ("dossier é 2/m", "MINDIR", "dossier é 2/m.mindir"),
    ("dossier é 2/m.onnx", "ONNX", "dossier é 2/m.onnx")])
def test_any_legal_name_is_exported_under_that_name(small_ckpt, tmp_path, name, fmt, expected):
    from src.model.export import verify_export
    (tmp_path / name).parent.mkdir(exist_ok=True)
    written = _export(small_ckpt, tmp_path / name, fmt)
    assert written == str(tmp_path / expected)
    assert sorted(p.name for p in (tmp_path / expected).parent.iterdir()) == [Path(expected).name], \
        "nothing else written"
    verify_export(written, fmt)


def test_full_disk_leaves_neither_partial_file_nor_temporary(small_ckpt, tmp_path):
    from src.runtime.atomic_write import WriteError
    with tiny_disk(tmp_path / "disk", "512k") as disk:
        (disk / "m.onnx").write_bytes(b"the previous export")
        with pytest.raises(WriteError) as info:
            _export(small_ckpt, disk / "m.onnx", "ONNX")
        message = str(info.value)
        assert message.startswith(f"{disk / 'm.onnx'}: ") and "\n" not in message
        assert "no space left on device" in message or "export failed" in message, message
        assert (disk / "m.onnx").read_bytes() == b"the previous export"
        assert _temporaries(disk) == [], "the temporary is removed"


def test_sigkill_during_a_re_export_keeps_the_old_file(small_ckpt, tmp_path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the previous export")
    proc = subprocess.Popen([sys.executable, "export.py", "--ckpt_file", str(small_ckpt),
                             "--file_name", str(out), "--file_format", "ONNX", "--insize", "64",
                             "--device_target", "CPU"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not _temporaries(tmp_path) and proc.poll() is None:   # the write has started
        assert time.monotonic() < deadline
        time.sleep(0.002)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    if killed and proc.returncode == -signal.SIGKILL:
        assert out.read_bytes() == b"the previous export", "no partial file under the final name"
    else:                                  # it finished before the kill: a whole new file
        from src.model.export import verify_export
        verify_export(out, "ONNX")
    # the next export into that folder removes what the killed one left
    _export(small_ckpt, tmp_path / "other.mindir", "MINDIR")
    assert _temporaries(tmp_path) == []
