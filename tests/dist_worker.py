"""Tiny data-parallel training job used by tests/test_distributed.py (not collected by pytest).

Each process trains a two-convolution net on 16x16 inputs for a few steps and saves its final
parameters. Rank r of a distributed launch uses the fixed batch ``make_batch(r)``; the single-process
reference (``--union N``) trains on the concatenation of the batches of ranks 0..N-1, which under
mean-reduced losses gives the mean of the per-rank gradients.

    mpirun -n 2 python tests/dist_worker.py --out DIR
    msrun --worker_num=2 --local_worker_num=2 ... tests/dist_worker.py --out DIR
    python tests/dist_worker.py --out DIR --union 2

Writes into DIR: ``params_rank{r}.npz`` and ``done_rank{r}.json`` (every rank: launch kind, group
size, scheduler port, losses), ``gather.json`` (rank 0: what ``gather_objects`` collected) and
``ckpt_rank0.npz`` (rank 0 only: stands for the checkpoint).
"""
import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

BATCH = 2       # samples per rank and step
SIZE = 16       # input height and width (pixels)
LR = 0.05
MOMENTUM = 0.9


def make_batch(rank):
    """Fixed batch of rank ``rank``: x (BATCH, 3, SIZE, SIZE), y (BATCH, 2, SIZE, SIZE), float32."""
    rng = np.random.RandomState(1000 + rank)
    x = rng.uniform(-0.5, 0.5, (BATCH, 3, SIZE, SIZE)).astype(np.float32)
    y = rng.uniform(0.0, 1.0, (BATCH, 2, SIZE, SIZE)).astype(np.float32)
    return x, y


def build_net():
    """Conv(3->4, 3x3) - ReLU - Conv(4->2, 3x3) with weights from a fixed numpy seed."""
    import mindspore as ms
    from mindspore import nn
    rng = np.random.RandomState(7)
    net = nn.SequentialCell([
        nn.Conv2d(3, 4, 3, pad_mode="same", has_bias=True,
                  weight_init=ms.Tensor(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)),
                  bias_init=ms.Tensor(rng.normal(0, 0.1, (4,)).astype(np.float32))),
        nn.ReLU(),
        nn.Conv2d(4, 2, 3, pad_mode="same", has_bias=True,
                  weight_init=ms.Tensor(rng.normal(0, 0.3, (2, 4, 3, 3)).astype(np.float32)),
                  bias_init=ms.Tensor(rng.normal(0, 0.1, (2,)).astype(np.float32))),
    ])
    return net


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--union", type=int, default=0,
                        help="single process on the union of the batches of this many ranks")
    parser.add_argument("--fail-rank", type=int, default=-1,
                        help="this rank raises after the first step (tests a failing job)")
    args = parser.parse_args(argv)

    import mindspore as ms
    from mindspore import nn

    from src.parallel.cluster import enable_data_parallel, init_distributed, rank_prefix, setup_rank_logging
    from src.parallel.collectives import all_gather_objects, gather_objects
    from src.runtime.context import setup_context

    target = setup_context("CPU", mode="graph", seed=1)
    dist = init_distributed(target)
    setup_rank_logging(dist)
    log = logging.getLogger("dist_worker")
    if dist.is_distributed:
        enable_data_parallel(dist.group_size)
    log.info("started: kind=%s rank=%d size=%d", dist.kind, dist.rank, dist.group_size)

    if args.union:
        batches = [make_batch(r) for r in range(args.union)]
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
    else:
        x, y = make_batch(dist.rank)

    net = build_net()
    loss_net = nn.WithLossCell(net, nn.MSELoss())
    opt = nn.Momentum(net.trainable_params(), learning_rate=LR, momentum=MOMENTUM)
    step = nn.TrainOneStepCell(loss_net, opt)
    step.set_train()
    xt, yt = ms.Tensor(x), ms.Tensor(y)
    losses = []
    for i in range(args.steps):
        loss = float(step(xt, yt).asnumpy())
        losses.append(loss)
        print(f"{rank_prefix(dist)}step {i} loss {loss:.6f}", flush=True)
        if dist.rank == args.fail_rank:
            raise RuntimeError(f"rank {dist.rank} fails on purpose (--fail-rank)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = {p.name: p.asnumpy() for p in net.trainable_params()}
    np.savez(out / f"params_rank{dist.rank}.npz", **params)
    if dist.is_main:
        np.savez(out / f"ckpt_rank{dist.rank}.npz", **params)

    gathered = gather_objects({"rank": dist.rank, "items": list(range(dist.rank + 2)),
                               "loss": losses[-1], "text": "x" * (10 + 51 * dist.rank),
                               "array": np.arange(1000 * (dist.rank + 1), dtype=np.float32)}, dist)
    if dist.is_main:
        for entry in gathered:  # JSON-friendly summary of the array
            entry["array"] = [int(entry["array"].size), float(entry["array"].sum())]
        (out / "gather.json").write_text(json.dumps(gathered))
    else:
        assert gathered is None, "non-zero rank received gathered objects"
    all_gather_objects(None, dist)  # a barrier: every rank waits here for all the others
    done = {"kind": dist.kind, "rank": dist.rank, "group_size": dist.group_size,
            "sched_port": os.environ.get("MS_SCHED_PORT"), "losses": losses}
    (out / f"done_rank{dist.rank}.json").write_text(json.dumps(done))
    log.info("finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
