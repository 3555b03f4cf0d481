"""MindSpore runtime set-up: version check and device/context selection."""
import logging
import os
import re

from src import compat
from src.errors import OpenPoseError
from src.runtime.messages import first_line

LOGGER = logging.getLogger(__name__)

#: MindSpore releases whose CPU convolutions run through oneDNN's reference kernel (about
#: 1 GFLOP/s, measured): training or evaluating on CPU with them is ~100x slower than 2.8.0.
SLOW_CPU_RELEASES = ("2.9.", "2.10.")
RECOMMENDED_VERSION = "2.8.0"


def check_mindspore_version(device_target, version=None):
    """Return a warning line when ``version`` is a release known to be slow on ``device_target``.

    Args:
        device_target: the resolved device ("CPU", "GPU", "Ascend").
        version: MindSpore version (default: the installed one).

    Returns:
        The warning text, or None when there is nothing to warn about.
    """
    version = version or compat.mindspore_version_text()
    if device_target == "CPU" and version.startswith(SLOW_CPU_RELEASES):
        return (f"MindSpore {version} runs CPU convolutions through oneDNN's reference kernel "
                f"(~100x slower than {RECOMMENDED_VERSION}); install mindspore=={RECOMMENDED_VERSION} "
                "for CPU work")
    return None


def cuda_driver_present():
    """True when this machine has a CUDA driver (library or device node)."""
    import ctypes.util
    return ctypes.util.find_library("cuda") is not None or os.path.exists("/dev/nvidiactl")


def gpu_available():
    """True when this MindSpore build can run on a GPU of this machine."""
    if not cuda_driver_present():
        return False  # no CUDA driver: skip MindSpore's noisy plugin probe
    return compat.device_available("GPU")


class DeviceError(OpenPoseError, RuntimeError):
    """The requested device cannot be used on this machine or MindSpore build (one line)."""


def no_device_message(target, exc):
    """One line for MindSpore's refusal ``exc`` of ``--device_target target`` (its multi-line
    message names the targets this build supports; only that is kept)."""
    text = str(exc)
    supported = re.search(r"only supports one of the (\[[^\]]*\])", text)
    what = (f"this MindSpore build and machine support only {supported.group(1)}" if supported
            else f"MindSpore: {first_line(exc, 120)}")
    return (f"--device_target {target}: no usable {target} device ({what}); use --device_target "
            f"CPU (or auto), or install the MindSpore build for {target} on a machine with one")


def resolve_device_target(device_target):
    """Turn "auto" into "GPU" where MindSpore has one, else "CPU"; pass others through."""
    if device_target == "auto":
        return "GPU" if gpu_available() else "CPU"
    if device_target not in ("GPU", "Ascend", "CPU"):
        raise ValueError(f"device_target must be auto, GPU, Ascend or CPU, got {device_target!r}")
    return device_target


def setup_context(device_target="auto", mode="graph", device_id=None, seed=None):
    """Set MindSpore's execution context and return the resolved device target.

    Args:
        device_target: "auto", "GPU", "Ascend" or "CPU".
        mode: "graph" (compiled, the default) or "pynative".
        device_id: device index on this node (default: the rule of
            :func:`src.parallel.launch.select_device_id`); ignored on CPU.
        seed: when given, the global MindSpore/numpy seed.

    Raises:
        DeviceError: GPU / Ascend requested where MindSpore cannot use one (one line).
    """
    import mindspore
    target = resolve_device_target(device_target)
    graph_mode = mindspore.GRAPH_MODE if mode == "graph" else mindspore.PYNATIVE_MODE
    mindspore.set_context(mode=graph_mode)
    if target == "CPU":
        compat.set_device("CPU")
    else:
        from src.parallel.launch import select_device_id
        device_index = select_device_id(device_id)
        if target == "GPU" and not cuda_driver_present():   # before MindSpore's noisy probe
            raise DeviceError("--device_target GPU: no usable GPU device (no CUDA driver on "
                              "this machine); use --device_target CPU (or auto)")
        try:
            compat.set_device(target, device_index)
        except (RuntimeError, ValueError) as exc:   # "Unsupported device target GPU ..."
            raise DeviceError(no_device_message(target, exc)) from None
    warning = check_mindspore_version(target)
    if warning:
        LOGGER.warning(warning)
        print(f"WARNING: {warning}", flush=True)
    if seed is not None:
        mindspore.set_seed(int(seed))
    return target
