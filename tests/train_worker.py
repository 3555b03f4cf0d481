"""train.py as tests/test_distributed_train.py launches it (not collected by pytest).

    mpirun -n 2 python tests/train_worker.py DIR --key value ...
    msrun --worker_num=2 ... tests/train_worker.py DIR --key value ...

Runs train.py's ``main`` on the flags after ``DIR``, unchanged; then every rank except the
checkpoint rank writes its final network parameters to ``DIR/params_rank<r>.npz`` (names as
``network.get_parameters()``). Rank 0's parameters are in the checkpoint it writes; the other
ranks write none, and the test compares theirs with rank 0's.
"""
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def params_path(directory, rank):
    """Where rank ``rank`` writes its parameters."""
    return Path(directory) / f"params_rank{int(rank)}.npz"


def dump_after_training(directory):
    """Make train.py's run write the parameters of the ranks without checkpoints into ``directory``."""
    import numpy as np

    from src.train import command
    from src.train.checkpoint_manager import CHECKPOINT_RANK
    train = command.run_training

    def train_and_dump(settings, data, **kwargs):
        result = train(settings, data, **kwargs)
        if settings.rank != CHECKPOINT_RANK:
            path = params_path(directory, settings.rank)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, **{p.name: p.asnumpy() for p in result.network.get_parameters()})
        return result

    command.run_training = train_and_dump


def main():
    """``DIR`` then train.py's flags; returns train.py's exit status."""
    from src.runtime.stop_signals import start_sigint_watcher
    start_sigint_watcher("train.py")   # as train.py does, before numpy or MindSpore start threads
    import train
    dump_after_training(sys.argv[1])
    return train.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
