"""Step 3 of decoding: greedy one-to-one matching of the scored candidate limbs, per limb.

The reference (:func:`.reference.connections_reference`) sorts each limb's candidates by score
and accepts them one by one unless a peak is already used. :func:`greedy_match` accepts the same
connections in rounds of array operations: an edge that is the best remaining edge of both of
its peaks is exactly an edge the sequential greedy would accept.
"""
import numpy as np

from src.skeleton import NUM_LIMBS


def greedy_match(limb, id_a, id_b, score):
    """Greedy one-to-one matching per limb, best score first (ties: earlier pair first).

    Args: (Q,) arrays of candidate connections in pair order.

    Returns:
        indices into the inputs of the accepted connections, ordered by limb then by
        descending score (the order the reference's grouping consumes them in).
    """
    if score.size == 0:
        return np.zeros(0, dtype=np.int64)
    # Rank: limb ascending, then score descending, then pair order (stable).
    rank_order = np.lexsort((np.arange(score.size), -score, limb))
    key_a = id_a[rank_order]  # peak ids are unique across joints, so limb+peak is unique
    key_b = id_b[rank_order]
    lim = limb[rank_order]
    # Key per (limb, peak) so the same peak in different limbs is independent.
    n_peaks = int(max(id_a.max(), id_b.max())) + 1
    key_a = lim * n_peaks + key_a
    key_b = lim * n_peaks + key_b
    alive = np.ones(score.size, dtype=bool)
    accepted = []
    used_a = np.zeros(NUM_LIMBS * n_peaks, dtype=bool)
    used_b = np.zeros(NUM_LIMBS * n_peaks, dtype=bool)
    while True:
        live = np.flatnonzero(alive)
        if live.size == 0:
            break
        _, first_a = np.unique(key_a[live], return_index=True)
        _, first_b = np.unique(key_b[live], return_index=True)
        best = np.zeros(live.size, dtype=np.int8)
        best[first_a] += 1
        best[first_b] += 1
        take = live[best == 2]
        accepted.append(take)
        used_a[key_a[take]] = True
        used_b[key_b[take]] = True
        alive[take] = False
        alive &= ~(used_a[key_a] | used_b[key_b])
    accepted = np.sort(np.concatenate(accepted))
    return rank_order[accepted]
