"""Step 4 of decoding: accepted connections assembled into people, then pruned.

Same rules and order as the reference (:func:`.reference.group_people_reference`); the loop
over the (few) accepted connections stays, but the people that hold a peak are found through a
dictionary instead of a scan of all people.
"""
import numpy as np

from src.skeleton import EAR_SHOULDER_LIMBS, LIMB_ARRAY, NUM_JOINTS


def group_people(conn_limb, conn_a, conn_b, conn_score, peak_score, params):
    """Assemble connections into people (reference ``grouping_key_points``, same semantics).

    Args:
        conn_*: accepted connections in reference order (limb ascending, score descending).
        peak_score: (n,) float64 peak values.

    Returns:
        joints (N, 18) int64 peak ids (-1 where missing), scores (N,) float64 (sum of peak and
        connection scores), after pruning.
    """
    rows = {}           # row id -> [18 peak ids..., score, count]; ids grow with creation
    holders = {}        # peak id -> set of row ids holding it
    next_id = 0
    peak_score = peak_score.tolist()
    limbs = LIMB_ARRAY.tolist()
    ear_limbs = set(EAR_SHOULDER_LIMBS)
    score_slot, count_slot = NUM_JOINTS, NUM_JOINTS + 1

    def put(row_id, slot, peak):
        row = rows[row_id]
        old = row[slot]
        if old >= 0:
            holders[old].discard(row_id)
        row[slot] = peak
        holders.setdefault(peak, set()).add(row_id)

    for limb, ind_a, ind_b, score in zip(conn_limb.tolist(), conn_a.tolist(), conn_b.tolist(),
                                         conn_score.tolist()):
        ja, jb = limbs[limb]
        found = sorted(holders.get(ind_a, set()) | holders.get(ind_b, set()))
        if len(found) == 1:
            row = rows[found[0]]
            if row[jb] != ind_b:
                put(found[0], jb, ind_b)
                row[count_slot] += 1
                row[score_slot] += peak_score[ind_b] + score
        elif len(found) == 2:
            id1, id2 = found
            row1, row2 = rows[id1], rows[id2]
            overlap = any(p >= 0 and q >= 0 for p, q in zip(row1[:NUM_JOINTS], row2[:NUM_JOINTS]))
            if not overlap:
                for slot in range(NUM_JOINTS):
                    peak = row2[slot]
                    if peak >= 0:
                        holders[peak].discard(id2)
                        put(id1, slot, peak)
                row1[score_slot] += row2[score_slot]
                row1[count_slot] += row2[count_slot]
                row1[score_slot] += score
                del rows[id2]
            else:
                for row_id, row in ((id1, row1), (id2, row2)):
                    if row[ja] == -1:
                        put(row_id, ja, ind_a)
                        row[count_slot] += 1
                        row[score_slot] += peak_score[ind_a] + score
                    elif row[jb] == -1:
                        put(row_id, jb, ind_b)
                        row[count_slot] += 1
                        row[score_slot] += peak_score[ind_b] + score
        elif not found and limb not in ear_limbs:
            row = [-1] * NUM_JOINTS + [peak_score[ind_a] + peak_score[ind_b] + score, 2]
            rows[next_id] = row
            holders.setdefault(ind_a, set()).add(next_id)
            holders.setdefault(ind_b, set()).add(next_id)
            row[ja], row[jb] = ind_a, ind_b
            next_id += 1
        # Three or more holders: ignored (the reference would crash with an IndexError).

    kept = [row for _, row in sorted(rows.items())
            if row[count_slot] >= params.n_subset_limbs_thresh
            and row[score_slot] / row[count_slot] >= params.subset_score_thresh]
    if not kept:
        return np.zeros((0, NUM_JOINTS), dtype=np.int64), np.zeros(0)
    joints = np.array([row[:NUM_JOINTS] for row in kept], dtype=np.int64)
    scores = np.array([row[score_slot] for row in kept], dtype=np.float64)
    return joints, scores
