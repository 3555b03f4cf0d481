"""src/parallel/sharding.py: the round-robin rule every rank follows."""
import numpy as np
import pytest

from src.parallel.sharding import rank_shard


def test_rank_shard():
    items = list(range(7))
    shards = [rank_shard(items, r, 3) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert rank_shard(items, 0, 1) == items


def test_rank_shard_keeps_the_type():
    order = np.arange(10, 20)
    np.testing.assert_array_equal(rank_shard(order, 1, 4), [11, 15, 19])
    assert rank_shard((5, 6, 7), 1, 2) == (6,)


@pytest.mark.parametrize("rank, group_size", [(-1, 2), (2, 2), (0, 0)])
def test_rank_shard_rejects_bad_rank(rank, group_size):
    with pytest.raises(ValueError, match="not in"):
        rank_shard([1, 2, 3], rank, group_size)
