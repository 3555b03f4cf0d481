"""Greedy part-affinity-field decoder: the network maps of one image -> people.

The public entry: :func:`decode_poses` and :class:`DecodeParams` (also re-exported: the steps
``find_peaks``, ``score_limb_candidates``, ``greedy_match``, ``group_people``). Pure numpy /
scipy / OpenCV (no MindSpore). The maps have one cell per ``src.codec.STRIDE`` input pixels;
the decoder takes the ratio from the sizes it is given, so any ratio works.

The algorithm is the reference's post-processing, specified plainly in
:mod:`src.evaluate.decoding.reference`; :func:`decode_poses` returns the same people, faster.
One module per step, under :mod:`src.evaluate.decoding`:

1. upsample every map to the network input size (``cv2.resize``, bilinear, float32; this and
   step 2 are :mod:`.decoding.map_ops`, which the reference uses too);
2. smooth every joint heatmap with a Gaussian (``gaussian_sigma``, scipy ``reflect`` border);
3. peaks (:mod:`.decoding.peaks`): pixels above ``heatmap_peak_thresh`` and strictly above their
   4 neighbours;
4. limbs (:mod:`.decoding.limbs`): every (joint a, joint b) peak pair of a limb is scored by the
   PAF line integral over ``n_integ_points`` rounded sample points plus the distance prior
   ``min(limb_length_ratio * input_width / length - length_penalty_value, 0)``; a pair is kept
   when more than ``n_integ_points_thresh`` points have an inner product above
   ``inner_product_thresh`` and its score is positive;
5. greedy matching per limb (:mod:`.decoding.matching`: best score first, each peak used once);
6. grouping (:mod:`.decoding.grouping`): connections into people, limb by limb, with the
   reference's merge rules (the two ear-shoulder limbs never start a person), then pruning
   people with fewer than ``n_subset_limbs_thresh`` joints or a mean score below
   ``subset_score_thresh``;
7. joints scaled to original image pixels.

Steps 1-3 never build the full maps: :mod:`.decoding.operators` and :mod:`.decoding.screening`
evaluate the smoothed heatmaps only where a peak is possible, and step 4 samples the PAFs only
at the sample points (each module's docstring says how it stays exact).
"""
import numpy as np

from src.evaluate.decoding.grouping import group_people
from src.evaluate.decoding.limbs import score_limb_candidates
from src.evaluate.decoding.matching import greedy_match
from src.evaluate.decoding.params import DecodeParams
from src.evaluate.decoding.peaks import find_peaks
from src.evaluate.decoding.timing import StageClock
from src.skeleton import NUM_JOINTS, NUM_LIMBS

__all__ = ["DecodeParams", "decode_people", "decode_poses", "find_peaks", "greedy_match",
           "group_people", "score_limb_candidates"]


def _check_maps(heatmaps, pafs):
    """Shape-checked C-contiguous float32 copies (or views) of the maps; ValueError if wrong."""
    heatmaps = np.asarray(heatmaps)
    pafs = np.asarray(pafs)
    if heatmaps.ndim != 3 or heatmaps.shape[0] < NUM_JOINTS:
        raise ValueError(f"heatmaps must be (>= {NUM_JOINTS}, h, w), got {heatmaps.shape}")
    if pafs.ndim != 3 or pafs.shape[0] != 2 * NUM_LIMBS or pafs.shape[1:] != heatmaps.shape[1:]:
        raise ValueError(f"pafs must be ({2 * NUM_LIMBS}, h, w) like the heatmaps "
                         f"{heatmaps.shape[1:]}, got {pafs.shape}")
    return (np.ascontiguousarray(heatmaps, dtype=np.float32),
            np.ascontiguousarray(pafs, dtype=np.float32))


def decode_poses(heatmaps, pafs, input_size, orig_size, params, timings=None):
    """Decode the people of one image from its network maps (one cell per ``src.codec.STRIDE``
    input pixels, or any other ratio of ``input_size`` to the map size).

    The same as :func:`decode_people` without the per-joint confidences: returns
    ``(poses, scores)``.
    """
    poses, scores, _ = decode_people(heatmaps, pafs, input_size, orig_size, params, timings)
    return poses, scores


def decode_people(heatmaps, pafs, input_size, orig_size, params, timings=None):
    """Decode the people of one image from its network maps, with a confidence per joint.

    Args:
        heatmaps: (19, h, w) (or (18, h, w)) joint heatmaps, background last; float32 is used.
        pafs: (38, h, w) part affinity fields, channels 2i, 2i+1 = x, y of limb i.
        input_size: (W, H) network input size in pixels (maps are upsampled to it).
        orig_size: (W, H) original image size in pixels (joints are scaled to it).
        params: DecodeParams (``DecodeParams.from_config(cfg)`` of the caller's configuration).
        timings: optional dict that receives the seconds spent per stage ("screen", "refine",
            "exact" of the peak search, "pairs", "matching", "grouping").

    Returns:
        poses: (N, 18, 3) float64, x, y in original pixels and visibility 2 for found joints,
            0, 0, 0 for missing ones;
        scores: (N,) float64 person scores: the sum of the person's joint confidences and of
            the scores of the limbs joining them (each limb: the mean PAF alignment along it
            plus the distance prior, at most 1), as in the reference;
        confidences: (N, 18) float64, per joint the smoothed heatmap value at its peak (the
            value that made it a peak, above ``heatmap_peak_thresh``); 0 for missing joints.
    """
    heatmaps, pafs = _check_maps(heatmaps, pafs)
    input_size = (int(input_size[0]), int(input_size[1]))
    orig_size = (int(orig_size[0]), int(orig_size[1]))
    empty = np.zeros((0, NUM_JOINTS, 3)), np.zeros(0), np.zeros((0, NUM_JOINTS))
    joint, peak_x, peak_y, peak_score = find_peaks(heatmaps, input_size, params, timings)
    if joint.size == 0:
        return empty
    clock = StageClock(timings)
    limb, id_a, id_b, pair_score = score_limb_candidates(pafs, joint, peak_x, peak_y,
                                                        input_size, params)
    clock.lap("pairs")
    chosen = greedy_match(limb, id_a, id_b, pair_score)
    clock.lap("matching")
    joints, scores = group_people(limb[chosen], id_a[chosen], id_b[chosen], pair_score[chosen],
                                  peak_score, params)
    clock.lap("grouping")
    if joints.shape[0] == 0:
        return empty
    xs = peak_x.astype(np.float64) * (orig_size[0] / input_size[0])
    ys = peak_y.astype(np.float64) * (orig_size[1] / input_size[1])
    found = joints >= 0
    safe = np.where(found, joints, 0)
    poses = np.zeros(joints.shape + (3,))
    poses[..., 0] = np.where(found, xs[safe], 0.0)
    poses[..., 1] = np.where(found, ys[safe], 0.0)
    poses[..., 2] = np.where(found, 2.0, 0.0)
    confidences = np.where(found, peak_score[safe], 0.0)
    return poses, scores, confidences
