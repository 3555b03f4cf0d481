"""Which items a rank takes: the one sharding rule of the training data
(``src.data.pipeline.EpochShardSampler``, after padding), evaluation (``src.evaluate.coco_eval``)
and validation while training (``src.train.validation``)."""


def rank_shard(items, rank, group_size):
    """This rank's share of ``items``, round robin: ``items[rank::group_size]``.

    Rank ``r`` of ``n`` takes the items at positions ``r, r + n, r + 2n, ...`` in their order, so
    the shards are disjoint, together hold every item, and differ in length by at most one (the
    lower ranks get the extra items). The result has the type of ``items`` (list, tuple, numpy
    array: anything that takes a slice).

    Args:
        items: the sequence to split.
        rank: this process's rank, in [0, group_size).
        group_size: number of processes sharing ``items`` (1: all of them).

    Raises:
        ValueError: ``group_size`` < 1 or ``rank`` outside [0, group_size).
    """
    if group_size < 1 or not 0 <= rank < group_size:
        raise ValueError(f"rank {rank} is not in [0, group_size={group_size})")
    return items[rank::group_size]
