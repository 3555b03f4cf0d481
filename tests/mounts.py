"""Test-only mounts: a tiny tmpfs (a full disk) and a read-only bind mount (a folder even root
cannot write). Both need root and a kernel that allows mounts (CI runs as root); a test that
needs one skips with the reason when ``mount`` fails. Every mount is undone by its context.
"""
import os
import shutil
import subprocess
from contextlib import contextmanager

import pytest


def mount(args, target):
    """Run ``mount``; True when it worked."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    return subprocess.run(["mount", *args, str(target)], capture_output=True,
                          timeout=30).returncode == 0


def umount(target):
    """Undo a mount (lazily: a test's open file does not keep it)."""
    subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


@contextmanager
def tiny_disk(target, size="64k"):
    """A ``size`` tmpfs mounted on folder ``target`` (created); skips the test without root."""
    target.mkdir(parents=True, exist_ok=True)
    if not mount(["-t", "tmpfs", "-o", f"size={size}", "tmpfs"], target):
        pytest.skip("cannot mount a tmpfs here (needs root and a kernel that allows mounts)")
    try:
        yield target
    finally:
        umount(target)


@contextmanager
def read_only(folder):
    """``folder`` (existing) made read-only for everyone, root included, by a read-only bind
    mount of itself; skips the test where that cannot be mounted."""
    if not mount(["--bind", str(folder)], folder):
        pytest.skip("cannot bind-mount here (needs root and a kernel that allows mounts)")
    try:
        if not mount(["-o", "remount,bind,ro"], folder):
            pytest.skip("cannot remount a bind mount read-only here")
        yield folder
    finally:
        umount(folder)


def fill(folder):
    """Fill the file system of ``folder`` with one file until writing fails; returns its path."""
    path = folder / "filler"
    with open(path, "wb", buffering=0) as stream:
        try:
            while True:
                stream.write(b"\0" * 4096)
        except OSError:
            pass
    return path
