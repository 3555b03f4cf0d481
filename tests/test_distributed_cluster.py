"""src/parallel/cluster.py (and collectives) in a single process: no init(), rank prefix and
rank logging."""
import io
import logging

import pytest

from src.parallel import cluster, collectives
from src.parallel.launch import DistInfo, DistributedError


def test_init_single_process_does_not_init():
    info = cluster.init_distributed("CPU", environ={})
    assert info == DistInfo(0, 1, False, 0, "single") and info.is_main
    assert collectives.gather_objects({"a": 1}, info) == [{"a": 1}]
    assert collectives.all_gather_objects(None, info) == [None]
    assert cluster.rank_prefix(info) == ""


def test_init_rejects_bad_input():
    with pytest.raises(DistributedError, match="device_target"):
        cluster.init_distributed("auto", environ={})
    with pytest.raises(DistributedError, match="msrun"):
        cluster.init_distributed("CPU", environ={"RANK_SIZE": "2", "RANK_ID": "0"})


def test_rank_prefix_and_logging():
    info = DistInfo(rank=1, group_size=4, is_distributed=True, local_rank=1, kind="openmpi")
    assert cluster.rank_prefix(info) == "[rank 1/4] "
    stream = io.StringIO()
    root = logging.getLogger()
    old_level = root.level
    handler = cluster.setup_rank_logging(info, stream=stream)
    try:
        logging.getLogger("x.y").info("hello")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    line = stream.getvalue().strip()
    assert line.endswith("[rank 1/4] INFO x.y: hello"), line
