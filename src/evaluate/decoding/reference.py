"""The decoding algorithm, plainly: the specification the fast decoder must match.

This is the reference's post-processing (DeepSparkHub's MindSpore OpenPose ``eval.py``, after
CMU's OpenPose) written as readable loops: ``find_peaks_reference`` is its
``compute_peaks_from_heatmaps``, ``score_pair_reference`` and ``connections_reference`` its
``compute_candidate_connections`` and ``compute_connections``, ``group_people_reference`` its
``grouping_key_points`` and ``decode_poses_reference`` the whole of it. The fast path
(:func:`src.evaluate.decoder.decode_poses`) returns the same people: the same joints and scores
within float rounding (the tests use this module as their oracle, and
``scripts/benchmark_decode.py --baseline`` as its baseline). It is slow: seconds to minutes per
image on noisy maps.

Two departures from the reference, both where it fails rather than decides: it indexes the PAFs
with ``paf[0][np.hsplit(...)]``, which numpy >= 1.23 rejects (here ``paf[y, x]``, what it
meant), and a connection whose peaks are held by three or more people raises an IndexError there
(here it is ignored).

Peaks are ``(joint, x, y, score)`` tuples; a peak's id is its position in the list, which is
ordered by joint, then row, then column.
"""
import numpy as np

from src.evaluate.decoding.map_ops import smooth_map, strict_peaks, upsample_map
from src.skeleton import EAR_SHOULDER_LIMBS, LIMB_ARRAY, NUM_JOINTS

#: Slots of a person row after its 18 peak ids (-1 where the joint is missing).
SCORE_SLOT = NUM_JOINTS
COUNT_SLOT = NUM_JOINTS + 1


def find_peaks_reference(heatmaps, input_size, params):
    """Peaks of the upsampled, smoothed joint heatmaps.

    Args:
        heatmaps: (>= 18, h, w) float32 network heatmaps (channels after the 18 joints ignored).
        input_size: (W, H) network input size in pixels.
        params: DecodeParams.

    Returns:
        list of (joint, x, y, score) peaks: x, y int input pixels, score the smoothed value
        (a Python float of the float32 value); ordered by joint, then y, then x.
    """
    peaks = []
    for joint in range(NUM_JOINTS):
        channel = np.asarray(heatmaps[joint], dtype=np.float32)
        smooth = smooth_map(upsample_map(channel, input_size), params.gaussian_sigma)
        for y, x in zip(*strict_peaks(smooth, params.heatmap_peak_thresh)):
            peaks.append((joint, int(x), int(y), float(smooth[y, x])))
    return peaks


def score_pair_reference(upsampled_pafs, limb, peak_a, peak_b, input_width, params):
    """Score of the limb from ``peak_a`` to ``peak_b``, or None when it is rejected.

    The PAF of the limb is sampled at ``n_integ_points`` points evenly spaced from a to b (both
    included), rounded to pixels; each sample's inner product with the unit vector a -> b
    counts. The pair is kept when more than ``n_integ_points_thresh`` products exceed
    ``inner_product_thresh`` and the score, the mean product plus the distance prior
    ``min(limb_length_ratio * input_width / length - length_penalty_value, 0)``, is positive.

    Args:
        upsampled_pafs: 38 (H, W) float32 PAF channels at the input size; limb i owns channels
            2i (x) and 2i + 1 (y).
        limb: limb index; peak_a, peak_b: (joint, x, y, score) peaks of its two joints.
        input_width: W, input pixels.

    Returns:
        float score, or None (rejected, or a zero-length pair).
    """
    vector = np.array([peak_b[1] - peak_a[1], peak_b[2] - peak_a[2]], dtype=np.float64)
    norm = np.linalg.norm(vector)
    if norm == 0:
        return None
    xs = np.linspace(peak_a[1], peak_b[1], num=params.n_integ_points)
    ys = np.linspace(peak_a[2], peak_b[2], num=params.n_integ_points)
    px, py = np.rint(xs).astype(int), np.rint(ys).astype(int)
    unit = vector / norm
    products = np.array([float(upsampled_pafs[2 * limb][y, x]) * unit[0]
                         + float(upsampled_pafs[2 * limb + 1][y, x]) * unit[1]
                         for x, y in zip(px, py)])
    score = products.sum() / len(products) + min(
        params.limb_length_ratio * input_width / norm - params.length_penalty_value, 0)
    passing = np.count_nonzero(products > params.inner_product_thresh)
    if passing > params.n_integ_points_thresh and score > 0:
        return score
    return None


def connections_reference(pafs, peaks, input_size, params):
    """Scored candidate pairs of every limb, then greedy matching per limb.

    Args:
        pafs: (38, h, w) float32 network PAFs.
        peaks: list from :func:`find_peaks_reference`.
        input_size: (W, H) network input size in pixels.

    Returns:
        one list per limb (19) of accepted (id_a, id_b, score) connections, best score first:
        candidates are taken in descending score (ties: candidate order, a's id then b's), each
        peak at most once per limb.
    """
    width, _ = input_size
    upsampled = [upsample_map(np.asarray(channel, dtype=np.float32), input_size)
                 for channel in pafs]
    connections = []
    for limb, (joint_a, joint_b) in enumerate(LIMB_ARRAY.tolist()):
        cand_a = [(i, peak) for i, peak in enumerate(peaks) if peak[0] == joint_a]
        cand_b = [(i, peak) for i, peak in enumerate(peaks) if peak[0] == joint_b]
        scored = []
        for id_a, peak_a in cand_a:
            for id_b, peak_b in cand_b:
                score = score_pair_reference(upsampled, limb, peak_a, peak_b, width, params)
                if score is not None:
                    scored.append((id_a, id_b, score))
        scored.sort(key=lambda item: -item[2])
        used_a, used_b, chosen = set(), set(), []
        for id_a, id_b, score in scored:
            if id_a not in used_a and id_b not in used_b:
                used_a.add(id_a)
                used_b.add(id_b)
                chosen.append((id_a, id_b, score))
        connections.append(chosen)
    return connections


def group_people_reference(connections, peak_scores, params):
    """Assemble connections into people, limb by limb, then prune.

    A connection (a, b) of limb (joint_a, joint_b) looks for the people holding a at joint_a or
    b at joint_b. One: b is set at joint_b (when it is not there already). Two with no joint in
    common: they merge. Two that overlap: each gets a at joint_a, or else b at joint_b, where
    that joint is empty. None: a new person, unless the limb is one of the two ear-shoulder
    limbs. Each joint added adds its peak's score and the connection's to the person's score.
    People with fewer than ``n_subset_limbs_thresh`` joints or a score per joint below
    ``subset_score_thresh`` are dropped.

    Args:
        connections: list from :func:`connections_reference`.
        peak_scores: sequence of the peaks' scores, by peak id.

    Returns:
        list of people, each a list ``[18 peak ids (-1 where missing)..., score, joint count]``
        (``SCORE_SLOT``, ``COUNT_SLOT``), in order of creation.
    """
    people = []
    for limb, chosen in enumerate(connections):
        joint_a, joint_b = LIMB_ARRAY[limb]
        for id_a, id_b, score in chosen:
            found = [k for k, person in enumerate(people)
                     if person[joint_a] == id_a or person[joint_b] == id_b]
            if len(found) == 1:
                person = people[found[0]]
                if person[joint_b] != id_b:
                    person[joint_b] = id_b
                    person[COUNT_SLOT] += 1
                    person[SCORE_SLOT] += peak_scores[id_b] + score
            elif len(found) == 2:
                first, second = people[found[0]], people[found[1]]
                if not any(first[j] >= 0 and second[j] >= 0 for j in range(NUM_JOINTS)):
                    for j in range(NUM_JOINTS):
                        if second[j] >= 0:
                            first[j] = second[j]
                    first[SCORE_SLOT] += second[SCORE_SLOT]
                    first[COUNT_SLOT] += second[COUNT_SLOT]
                    first[SCORE_SLOT] += score
                    del people[found[1]]
                else:
                    for person in (first, second):
                        if person[joint_a] == -1:
                            person[joint_a] = id_a
                            person[COUNT_SLOT] += 1
                            person[SCORE_SLOT] += peak_scores[id_a] + score
                        elif person[joint_b] == -1:
                            person[joint_b] = id_b
                            person[COUNT_SLOT] += 1
                            person[SCORE_SLOT] += peak_scores[id_b] + score
            elif not found and limb not in EAR_SHOULDER_LIMBS:
                person = [-1] * NUM_JOINTS + [peak_scores[id_a] + peak_scores[id_b] + score, 2]
                person[joint_a], person[joint_b] = id_a, id_b
                people.append(person)
    return [person for person in people
            if person[COUNT_SLOT] >= params.n_subset_limbs_thresh
            and person[SCORE_SLOT] / person[COUNT_SLOT] >= params.subset_score_thresh]


def decode_poses_reference(heatmaps, pafs, input_size, orig_size, params):
    """Decode the people of one image from its network maps, the plain way.

    Args:
        heatmaps: (>= 18, h, w) float32 joint heatmaps (the background channel is ignored).
        pafs: (38, h, w) float32 part affinity fields.
        input_size: (W, H) network input size in pixels (the maps are upsampled to it).
        orig_size: (W, H) original image size in pixels (the joints are scaled to it).
        params: DecodeParams.

    Returns:
        poses: (N, 18, 3) float64, x, y in original pixels and visibility 2 for found joints,
            0, 0, 0 for missing ones; scores: (N,) float64 person scores.
    """
    peaks = find_peaks_reference(heatmaps, input_size, params)
    connections = connections_reference(pafs, peaks, input_size, params)
    people = group_people_reference(connections, [peak[3] for peak in peaks], params)
    poses = np.zeros((len(people), NUM_JOINTS, 3))
    for n, person in enumerate(people):
        for joint in range(NUM_JOINTS):
            if person[joint] >= 0:
                _, x, y, _ = peaks[person[joint]]
                poses[n, joint] = (x * (orig_size[0] / input_size[0]),
                                   y * (orig_size[1] / input_size[1]), 2)
    return poses, np.array([person[SCORE_SLOT] for person in people])
