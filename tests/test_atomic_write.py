"""src/runtime/atomic_write.py: a file is whole under its final name or not there at all."""
import os
import subprocess

import cv2
import numpy as np
import pytest

from src.runtime.atomic_write import (
    TEMPORARY_NAME,
    WriteError,
    atomic_write,
    host_tag,
    remove_stale_temporaries,
    temporary_path,
    write_bytes,
    write_image,
    write_json,
)
from tests.mounts import fill, read_only, tiny_disk


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_json({"x": 1}, target)
    write_json({"x": 2}, target)
    assert target.read_text() == '{"x": 2}'
    assert _names(target.parent) == ["a.json"], "no temporary left beside the file"


def test_the_file_gets_ordinary_permissions(tmp_path):
    """A writer that leaves its file read-only to its owner (MindSpore's exporter and checkpoint
    writer: 0400) still gives a file with the permissions of any new file (0666 less the umask)."""
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "model.mindir") as tmp:
            tmp.write_bytes(b"graph")
            os.chmod(tmp, 0o400)
    finally:
        os.umask(old)
    assert oct((tmp_path / "model.mindir").stat().st_mode & 0o777) == oct(0o640)
    write_bytes(tmp_path / "plain.bin", b"x")
    assert (tmp_path / "plain.bin").stat().st_mode & 0o777 == 0o666 & ~old


def test_temporary_name_is_short_ascii_and_recognised(tmp_path):
    tmp = temporary_path(tmp_path / ("é " * 100 + ".onnx"))
    assert tmp.parent == tmp_path and tmp.name.isascii() and " " not in tmp.name
    assert len(tmp.name) < 32 and tmp.suffix == ".onnx", tmp.name
    assert TEMPORARY_NAME.match(tmp.name) and TEMPORARY_NAME.match(tmp.with_suffix(".tmp").name)


def test_250_character_name_works(tmp_path):
    target = tmp_path / ("n" * 245 + ".json")
    assert len(target.name) == 250
    write_json([1], target)
    assert target.read_text() == "[1]"


@pytest.mark.parametrize("failure", [ValueError("boom"), KeyboardInterrupt()])
def test_failure_inside_the_block_keeps_the_old_file(tmp_path, failure):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(type(failure)):
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"partial")
            raise failure
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["a.bin"]


def test_companions_of_a_writer_are_removed_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "c.ckpt", companions=(lambda t: t.with_suffix(".tmp"),)) as tmp:
            tmp.with_suffix(".tmp").write_bytes(b"writer's own temporary")
            raise RuntimeError("writer failed")
    assert _names(tmp_path) == []


def test_a_writer_that_creates_nothing_is_a_write_error(tmp_path):
    with pytest.raises(WriteError, match=r"x\.png: cannot write \(the writer created no file\)"):
        with atomic_write(tmp_path / "x.png"):
            pass


def test_never_writes_through_a_symlink_at_the_final_name(tmp_path):
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "d.png").symlink_to(victim)
    write_image(out / "d.png", np.zeros((4, 4, 3), np.uint8))
    assert victim.read_bytes() == b"precious", "the link's target is untouched"
    assert not (out / "d.png").is_symlink() and cv2.imread(str(out / "d.png")).shape == (4, 4, 3)


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        (disk / "old.png").write_bytes(b"old")
        fill(disk)
        image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        with pytest.raises(WriteError) as info:
            write_image(disk / "old.png", image)
        message = str(info.value)
        assert message.startswith(f"{disk / 'old.png'}: no space left on device while writing (")
        assert message.endswith(" free on its file system)") and "\n" not in message
        assert (disk / "old.png").read_bytes() == b"old"
        assert _names(disk) == ["filler", "old.png"], "no temporary left"


def test_read_only_folder_is_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        with pytest.raises(WriteError, match=r"ro/a\.json: cannot write \(Read-only file system\)$"):
            write_json({}, folder / "a.json")


def test_stale_temporaries_of_dead_processes_of_this_host_only(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    tag = host_tag()
    other = "0000" if tag != "0000" else "ffff"
    stale = tmp_path / f".tmp{dead.pid}-{tag}1234.png"
    live = tmp_path / f".tmp{os.getppid()}-{tag}1234.png"
    foreign = tmp_path / f".tmp{dead.pid}-{other}1234.png"
    user = tmp_path / ".tmp-notes.txt"
    for path in (stale, live, foreign, user):
        write_bytes(path, b"12345")
    removed = remove_stale_temporaries(tmp_path)
    assert removed == [(stale, 5)]
    assert _names(tmp_path) == sorted(p.name for p in (live, foreign, user))


@pytest.mark.parametrize("mode", ["a", "r+"])
def test_files_grown_in_place_never_follow_a_link(tmp_path, mode):
    from src.runtime.atomic_write import open_in_place
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(WriteError, match=r"metrics\.jsonl: is a symbolic link; not written through it"):
        open_in_place(tmp_path / "metrics.jsonl", mode)
    assert victim.read_text() == "precious"
    with open_in_place(tmp_path / "log.jsonl", mode) as stream:
        stream.write("one\n")
    with open_in_place(tmp_path / "log.jsonl", "a") as stream:
        stream.write("two\n")
    assert (tmp_path / "log.jsonl").read_text() == "one\ntwo\n"
