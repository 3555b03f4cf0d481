"""Every difference between the MindSpore releases this code runs on (2.0 to 2.10), in one place.

Each choice below is made by feature detection (does the function or module exist), never by
reading ``mindspore.__version__``, so a platform build that back-ports or lacks an API still takes
the right path. The rest of the code calls these functions instead of the MindSpore API they wrap.

Differences handled here (measured on mindspore 2.0.0 / Python 3.9 and 2.8.0 / Python 3.11):

* ``mindspore.set_device`` (2.5 and later) -> ``set_context(device_target=..., device_id=...)``.
* ``mindspore.hal.is_available`` (2.3 and later) -> a trial ``set_context(device_target=...)``.
* ``mindspore.onnx.export`` (newer releases; ``export(file_format="ONNX")`` is deprecated there)
  -> ``mindspore.export(..., file_format="ONNX")``.
* MindSpore's dynamic-cluster scheduler (the CPU ``mpirun`` bridge): 2.0 refuses to start one in
  PyNative mode, its default there ("PyNative mode is not supported in dynamic networking");
  :func:`set_scheduler_context` sets graph mode, which every release accepts.
* CPU workers started by ``mpirun`` and joined to a dynamic cluster: 2.0 takes its OpenMPI
  collective library whenever ``OMPI_COMMAND`` is set ("Failed to initialize communication library
  on device side"); :func:`prepare_cpu_cluster_worker` hides that variable (later releases let
  ``MS_ROLE`` win and do not need it, so it is done for all).
* Rank numbering of that dynamic cluster: 2.0 numbers the workers in the order they register
  (``MS_NODE_ID`` is only a name); 2.8 follows ``MS_NODE_ID`` (the OpenMPI rank).
  :func:`rank_ordered_comm` renumbers mpi4py's communicator after MindSpore's ranks, so that
  mpi4py collectives (gather to rank 0, resume checks) and MindSpore's agree on every release.
* Collectives called outside a network: 2.0's ``ops.AllGather()(x)`` raises NotImplementedError
  (communication primitives run only inside a compiled Cell there), has no AllGather kernel on
  CPU and reduces only float32; :func:`all_gather` calls the primitive directly where that works
  and otherwise sums rank-slotted rows of bytes with AllReduce in a small graph-mode Cell.
* ``nn.Conv2d``'s default initialisation: 2.0 draws weights from Normal(0, 0.01) with zero
  biases, 2.8 from HeUniform(sqrt(5)) with Uniform(1/sqrt(fan_in)) biases (measured: first VGG
  weight std 0.0098 vs 0.11). :func:`conv2d_init` spells out 2.8's, so a network trained from
  scratch starts alike on every release.
* Forming that cluster under heavy CPU load: 2.0 now and then loses a worker's registration
  reply; the worker re-registers after 33 s, one second after the scheduler has declared it
  dead ("The node: 1 is timed out", measured in about 1 of 3 launches beside 2 busy processes),
  and a rank then hangs in MindSpore's exit for minutes. :func:`is_cluster_formation_failure`
  recognises it and :func:`exit_after_cluster_failure` ends the process at once with one line.
* Deprecation notices: 2.8 logs "'FusedSparseAdam' is deprecated from version 2.8.0" whenever
  ``nn.Adam`` is built (it always creates that sparse-gradient op, which this network never
  uses); :func:`silence_deprecation_notice` marks that one notice as already given, where the
  release has it (other warnings are untouched).
* ``GeneratorDataset`` with a sampler object: 2.0 counts its samples by iterating it at
  construction (``len(list(sampler))``, once or twice), which advances a stateful sampler such as
  ``src.data.pipeline.EpochShardSampler`` by whole epochs; :func:`generator_dataset` puts the sampler's
  state back (later releases use ``len(sampler)`` and leave it untouched).
* Pillow: ``mindspore.dataset.vision`` of 2.0 reads ``Image.ANTIALIAS`` at import, which Pillow 10
  removed; :func:`pillow_requirement` tells scripts/setup_env.sh to install ``pillow<10`` then.
* ``msrun`` (the launcher, MindSpore 2.3 and later): :func:`msrun_command` finds it and
  :func:`msrun_unavailable_reason` says in one line which version is needed when it is missing.
"""
import importlib.util
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np

#: the oldest MindSpore release that ships the ``msrun`` launcher.
MSRUN_MIN_VERSION = "2.3"
#: module that implements msrun (``msrun`` is a console script calling it).
MSRUN_MODULE = "mindspore.parallel.cluster.run"


def _mindspore():
    """The imported ``mindspore`` package (imported lazily: the pure helpers must not need it)."""
    import mindspore
    return mindspore


def conv2d_init(in_channels, kernel_size):
    """``weight_init``/``bias_init`` keywords for ``nn.Conv2d`` equal to MindSpore 2.8's defaults.

    Args:
        in_channels: input channels of the convolution (groups of 1).
        kernel_size: side of its square kernel.
    """
    from mindspore.common.initializer import HeUniform, Uniform
    fan_in = int(in_channels) * int(kernel_size) ** 2
    return {"weight_init": HeUniform(math.sqrt(5)), "bias_init": Uniform(1 / math.sqrt(fan_in))}


def has_set_device():
    """True when this MindSpore has ``mindspore.set_device`` (2.5 and later)."""
    return hasattr(_mindspore(), "set_device")


def set_device(target, device_id=None):
    """Select the device MindSpore runs on.

    Args:
        target: "CPU", "GPU" or "Ascend".
        device_id: device index on this node; None leaves MindSpore's default (and is what CPU
            takes: CPU has no device index).
    """
    mindspore = _mindspore()
    if has_set_device():
        if device_id is None:
            mindspore.set_device(target)
        else:
            mindspore.set_device(target, int(device_id))
        return
    if device_id is None:
        mindspore.set_context(device_target=target)
    else:
        mindspore.set_context(device_target=target, device_id=int(device_id))


def set_scheduler_context():
    """Context of a dynamic-cluster scheduler process: graph mode on the CPU.

    The scheduler runs no network, so the mode only matters for MindSpore's check: 2.0 starts
    PyNative by default and rejects it for dynamic networking; later releases accept both.
    """
    mindspore = _mindspore()
    mindspore.set_context(mode=mindspore.GRAPH_MODE)
    set_device("CPU")


def prepare_cpu_cluster_worker(environ):
    """Make an ``mpirun``-started CPU process join MindSpore's dynamic cluster at ``init()``.

    Removes ``OMPI_COMMAND`` from ``environ`` (``os.environ``, which MindSpore reads): MindSpore
    2.0 chooses its OpenMPI collective library when it is set, and that library fails on CPU. The
    other OpenMPI variables stay (mpi4py, rank detection). Returns the removed value or None.
    """
    return environ.pop("OMPI_COMMAND", None)


def rank_ordered_comm(comm, rank):
    """mpi4py communicator ``comm`` with its processes numbered by MindSpore's ``rank``.

    Collective: every process of ``comm`` must call it, each with its own MindSpore rank (from
    ``get_rank()`` after ``init()``). Returns ``comm`` itself where the numbers already agree
    (2.8 follows MS_NODE_ID, measured), else ``comm.Split(0, rank)``.
    """
    if comm is None:
        return None
    ranks = comm.allgather(int(rank))
    if ranks == list(range(comm.Get_size())):
        return comm
    return comm.Split(0, int(rank))


_CACHE = {"sum_cell": None, "gather_direct": True}


def _all_reduce_sum_cell():
    """A Cell whose construct is one AllReduce (sum) over the world group (built once)."""
    if _CACHE["sum_cell"] is None:
        from mindspore import nn, ops

        class AllReduceSumCell(nn.Cell):
            """``AllReduce(SUM)`` of the world group as a network (compiled in graph mode)."""

            def __init__(self):
                super().__init__()
                self.reduce = ops.AllReduce(ops.ReduceOp.SUM)

            def construct(self, x):
                return self.reduce(x)
        _CACHE["sum_cell"] = AllReduceSumCell()
    return _CACHE["sum_cell"]


def all_gather(array):
    """AllGather of a numpy array over the world group (after ``init()``) -> numpy array.

    The result stacks every rank's array along axis 0, in rank order. Every rank must call it
    with an array of the same shape and dtype.

    ``ops.AllGather`` called directly where MindSpore runs it (2.8); otherwise (2.0: no direct
    call, no AllGather kernel on CPU, AllReduce on float32 only) each rank writes the bytes of
    its array as float32 into its own row of a zero buffer and the rows are summed with
    AllReduce inside a compiled Cell (exact: each element is one byte plus zeros).
    """
    from mindspore import Tensor, ops
    from mindspore.communication import get_group_size, get_rank
    array = np.asarray(array)
    if _CACHE["gather_direct"]:
        try:
            return ops.AllGather()(Tensor(array)).asnumpy()
        except NotImplementedError:  # MindSpore 2.0
            _CACHE["gather_direct"] = False
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    rows = np.zeros((int(get_group_size()), data.size), dtype=np.float32)
    rows[int(get_rank())] = data  # bytes 0..255: float32 sums of them are exact
    summed = _all_reduce_sum_cell()(Tensor(rows)).asnumpy()
    gathered = np.rint(summed).astype(np.uint8).view(array.dtype)
    return gathered.reshape((-1,) + array.shape[1:])


#: what MindSpore 2.0 reports when a dynamic cluster could not be formed (see the module doc).
CLUSTER_FORMATION_FAILURES = ("The state of the cluster is error",
                              "Failed to connect to the meta server",
                              "The total number of timed out node is")


def is_cluster_formation_failure(text):
    """True when ``text`` (an exception message or a log) shows a failed cluster formation."""
    return any(marker in str(text) for marker in CLUSTER_FORMATION_FAILURES)


def exit_after_cluster_failure(error, rank):
    """End this process now (exit status 1) after ``init()`` failed to form the cluster.

    Prints one line naming the rank and MindSpore's reason, flushes, and skips the interpreter's
    exit handlers: after this failure MindSpore 2.0's own exit handler waits minutes for the
    scheduler that has already given up.
    """
    from src.runtime.messages import first_line
    print(f"rank {rank}: MindSpore could not form the CPU cluster ({first_line(error, None)}); MindSpore 2.0 does "
          "this now and then under heavy CPU load: launch again", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)


def device_available(target):
    """True when this MindSpore build can run on ``target`` ("GPU", "Ascend", "CPU") here.

    Uses ``mindspore.hal.is_available`` where it exists. Older releases have no query, so the
    device is tried with ``set_context(device_target=target)`` (which raises on a build or machine
    without it) and the previous target is put back.
    """
    mindspore = _mindspore()
    hal = getattr(mindspore, "hal", None)
    if hal is not None and hasattr(hal, "is_available"):
        try:
            return bool(hal.is_available(target))
        except Exception:  # builds without the device raise various errors here
            return False
    previous = mindspore.get_context("device_target")
    try:
        mindspore.set_context(device_target=target)
    except Exception:  # "Unsupported device target ..." (RuntimeError/ValueError)
        return False
    mindspore.set_context(device_target=previous)
    return True


def generator_dataset(source, column_names, sampler, **kwargs):
    """``mindspore.dataset.GeneratorDataset(source, column_names, sampler=sampler, **kwargs)``
    that leaves ``sampler``'s attributes as they were before the call.

    MindSpore 2.0 iterates a user sampler while constructing the dataset; a sampler that counts
    its epochs would then start training at epoch 2. Its ``__dict__`` is saved and restored, which
    changes nothing on releases that do not iterate it.
    """
    import mindspore.dataset as ds
    state = dict(vars(sampler))
    dataset = ds.GeneratorDataset(source, column_names, sampler=sampler, **kwargs)
    vars(sampler).clear()
    vars(sampler).update(state)
    return dataset


def has_onnx_module():
    """True when this MindSpore has the ``mindspore.onnx`` package with its ``export``."""
    try:
        from mindspore import onnx
    except ImportError:
        return False
    return hasattr(onnx, "export")


def onnx_fixed_size_reason():
    """One line saying why ONNX files of this MindSpore take only the traced size, or None."""
    if has_onnx_module():
        return None
    return (f"ONNX files that take any image size need mindspore.onnx with dynamic_axes (2.8.0 "
            f"has it); MindSpore {mindspore_version_text()} exports the traced size only")


def export_onnx(model, inputs, file_name, input_names=None, output_names=None, **kwargs):
    """Export ``model`` called on ``inputs`` to the ONNX file ``file_name`` (with its .onnx).

    ``mindspore.onnx.export`` where it exists (it names the graph's inputs and outputs and takes
    its further keywords, e.g. ``dynamic_axes``, from ``kwargs``); otherwise
    ``mindspore.export(file_format="ONNX")``, whose graph keeps MindSpore's own input and output
    names and the traced shapes (``kwargs`` are not applied there; read the names from the ONNX
    session, as tests/test_export.py does).

    Returns:
        the path of the written file.
    """
    if has_onnx_module():
        from mindspore import onnx
        onnx.export(model, inputs, file_name=str(file_name), input_names=input_names,
                    output_names=output_names, **kwargs)
        return str(file_name)
    stem = str(file_name)[:-len(".onnx")] if str(file_name).lower().endswith(".onnx") else str(file_name)
    _mindspore().export(model, inputs, file_name=stem, file_format="ONNX")
    return stem + ".onnx"


def _find_spec(name):
    """``importlib.util.find_spec(name)``, None when a parent package is missing too."""
    try:
        return importlib.util.find_spec(name)
    except ImportError:
        return None


def has_msrun():
    """True when the installed MindSpore ships the msrun launcher (2.3 and later)."""
    return _find_spec(MSRUN_MODULE) is not None


def msrun_command(python=None):
    """The command that starts msrun for interpreter ``python``, or None when there is none.

    The ``msrun`` console script beside the interpreter (a venv's bin), else one on PATH; either
    only when this MindSpore has the launcher module.
    """
    if not has_msrun():
        return None
    local = Path(python or sys.executable).parent / "msrun"
    if local.exists():
        return [str(local)]
    found = shutil.which("msrun")
    return [found] if found else None


def mindspore_version_text():
    """The installed MindSpore's version for messages ("not installed" when it is absent)."""
    spec = _find_spec("mindspore")
    if spec is None:
        return "not installed"
    return str(getattr(_mindspore(), "__version__", "unknown"))


def msrun_unavailable_reason():
    """One line saying why msrun cannot be used here, or None when it can."""
    if msrun_command() is not None:
        return None
    return (f"msrun needs MindSpore >= {MSRUN_MIN_VERSION} (installed: {mindspore_version_text()}); "
            "use mpirun instead")


def pillow_requirement():
    """``"pillow<10"`` when this MindSpore cannot import its vision module with the installed Pillow.

    MindSpore 2.0's ``mindspore.dataset.vision`` reads ``PIL.Image.ANTIALIAS`` at import; Pillow 10
    removed that name. Returns "" when the import works (any other import error propagates).
    """
    try:
        import mindspore.dataset.vision  # noqa: F401 - imported to see whether it loads
    except AttributeError as exc:
        if "ANTIALIAS" in str(exc):
            return "pillow<10"
        raise
    return ""


def main(argv=None):
    """Command line for scripts/setup_env.sh: ``--pillow-requirement`` prints what to install."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m src.compat", description=main.__doc__)
    parser.add_argument("--pillow-requirement", action="store_true",
                        help="print the Pillow requirement this MindSpore needs (nothing if none)")
    args = parser.parse_args(argv)
    if args.pillow_requirement:
        print(pillow_requirement())
    return 0


if __name__ == "__main__":
    sys.exit(main())


def silence_deprecation_notice(op_class):
    """Mark MindSpore's "'<op>' is deprecated" notice of ``op_class`` as already given, so that
    building it logs nothing; a no-op where the op is not deprecated (or the release logs
    deprecations another way). Returns True when the notice was silenced.

    MindSpore's ``deprecated`` decorator logs a notice once per name and version, remembered in
    ``mindspore.common._decorator.DEPRECATE_SET``; the version is read from the decorated
    ``__init__`` so that only this op's notice is affected.
    """
    import inspect
    try:
        from mindspore.common import _decorator
    except ImportError:
        return False
    given = getattr(_decorator, "DEPRECATE_SET", None)
    init = getattr(op_class, "__init__", None)
    if not isinstance(given, set) or not hasattr(init, "__wrapped__"):
        return False
    try:
        version = inspect.getclosurevars(init).nonlocals.get("version")
    except (TypeError, ValueError):
        return False
    if not isinstance(version, str):
        return False
    given.add(op_class.__name__ + version)
    return True
