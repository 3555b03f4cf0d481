"""Step 1 of decoding: the joint peaks of the upsampled, smoothed heatmaps.

The reference (:func:`.reference.find_peaks_reference`) upsamples every heatmap to the input
size (``cv2.resize``), smooths it (``gaussian_filter``) and keeps the pixels above
``heatmap_peak_thresh`` and strictly above their 4 neighbours. :func:`find_peaks` returns the
same peaks with the same float32 values, faster:

* :mod:`.screening` finds a superset of the peaks on fast float32 values and gives the
  candidates float64 values, within a few float32 ulps of the reference's float32 pipeline;
* decisions taken by more than a safe margin (relative to the local map magnitude) are final;
  the rare ambiguous ones (near ties, e.g. a peak exactly between two pixels, where float32
  rounding decides) are re-decided on values computed exactly like the reference, on a local
  crop (bit-identical values);
* channels where very many pixels pass the screening (flat or plateau maps) are done whole,
  exactly like the reference.
"""
import numpy as np

from src.evaluate.decoding.map_ops import GAUSS_TRUNCATE, smooth_map, strict_peaks, upsample_map
from src.evaluate.decoding.screening import refine_candidates, screen_peaks
from src.evaluate.decoding.timing import StageClock
from src.skeleton import NUM_JOINTS

#: Safety margin, relative to the largest absolute map value a pixel depends on, within which a
#: peak decision taken on the float64 values is re-checked with exact reference values. The
#: reference's float32 pipeline is within about 5 float32 ulps (3e-7) of the exact value
#: (measured: 1e-7), so a difference of two values is off by at most 6e-7.
_EPS_REL = 1.5e-6
#: Screening margin, relative to the largest absolute map value, for the float32 block values
#: (their own error is below 2e-6).
_SCREEN_EPS_REL = 2e-5
#: Channels where more than this fraction of the pixels pass the screening (flat or plateau
#: maps) are decoded whole, exactly like the reference (cheaper than refining them).
_WHOLE_CHANNEL_FRACTION = 0.05


def _exact_peak_check(heatmap, input_size, sigma, thresh, ys, xs):
    """Decide candidate peaks with values bit-identical to the reference.

    One crop covering all the candidates (plus the filter radius) of the upsampled map is
    smoothed and tested exactly like the reference: a smoothed value only depends on the
    upsampled values within the filter radius, so it is the reference's value at every pixel
    at least ``radius`` inside the crop's edges (or next to an image edge).

    Args:
        heatmap: (h, w) float32 network map; input_size: (W, H) pixels; sigma: pixels.
        ys, xs: (n,) int candidate pixels.

    Returns:
        (is_peak bool (n,), value float64 (n,)).
    """
    width, height = input_size
    margin = int(GAUSS_TRUNCATE * float(sigma) + 0.5) + 1
    y0, x0 = max(int(ys.min()) - margin, 0), max(int(xs.min()) - margin, 0)
    y1, x1 = min(int(ys.max()) + margin + 1, height), min(int(xs.max()) + margin + 1, width)
    smooth = smooth_map(upsample_map(heatmap, input_size)[y0:y1, x0:x1], sigma)
    # Pixels outside the image compare as 0; crop edges inside the image are never reached
    # because every candidate is `margin` away from them.
    padded = np.pad(smooth, 1)
    cy, cx = ys - y0 + 1, xs - x0 + 1
    centre = padded[cy, cx]
    is_peak = centre > thresh
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        is_peak &= centre > padded[cy + dy, cx + dx]
    return is_peak, centre.astype(np.float64)


def find_peaks(heatmaps, input_size, params, timings=None):
    """Peaks of the upsampled, smoothed joint heatmaps.

    Args:
        heatmaps: (>= 18, h, w) network heatmaps (channels after the 18 joints are ignored).
        input_size: (W, H) network input size in pixels.
        params: DecodeParams.

    Returns:
        joint (n,) int64, x (n,) int64, y (n,) int64 (input pixels), score (n,) float64 (the
        smoothed float32 value), ordered by joint, then row, then column (the reference's peak
        ids are the positions in this order).

    ``timings`` (optional dict) receives the seconds of the stages "screen", "refine" and
    "exact".
    """
    clock = StageClock(timings)
    maps = np.ascontiguousarray(heatmaps[:NUM_JOINTS], dtype=np.float32)
    thresh = float(params.heatmap_peak_thresh)
    sigma = float(params.gaussian_sigma)
    scale = max(float(np.abs(maps).max(initial=0.0)), 1e-30)
    cand_c, cand_y, cand_x = screen_peaks(maps, input_size, sigma, thresh,
                                          _SCREEN_EPS_REL * scale)
    clock.lap("screen")
    # Channels with very many candidates (flat or plateau maps, where float32 rounding decides
    # the reference's peaks) are done exactly like the reference, whole.
    counts = np.bincount(cand_c, minlength=NUM_JOINTS)
    limit = _WHOLE_CHANNEL_FRACTION * input_size[0] * input_size[1]
    is_whole = counts > limit
    whole = np.flatnonzero(is_whole).tolist()
    light = ~is_whole[cand_c]
    cand_c, cand_y, cand_x = cand_c[light], cand_y[light], cand_x[light]
    cand_v, margin, local_scale = refine_candidates(maps, input_size, sigma, thresh,
                                                    cand_c, cand_y, cand_x)
    eps = _EPS_REL * np.maximum(local_scale, 1e-30)
    possible = margin > -eps
    cand_c, cand_y, cand_x, cand_v, margin, eps = (
        arr[possible] for arr in (cand_c, cand_y, cand_x, cand_v, margin, eps))
    clock.lap("refine")
    # Fast values become the reference's float32 values (within a few ulps).
    score = cand_v.astype(np.float32).astype(np.float64)
    keep = margin > eps
    ambiguous = np.flatnonzero(~keep)
    for channel in np.unique(cand_c[ambiguous]).tolist():
        sel = ambiguous[cand_c[ambiguous] == channel]
        is_peak, exact = _exact_peak_check(maps[channel], input_size, sigma, thresh,
                                           cand_y[sel], cand_x[sel])
        keep[sel] = is_peak
        score[sel] = exact
    parts = [(cand_c[keep], cand_y[keep], cand_x[keep], score[keep])]
    for channel in whole:
        smooth = smooth_map(upsample_map(maps[channel], input_size), sigma)
        ys, xs = strict_peaks(smooth, thresh)
        parts.append((np.full(ys.size, channel), ys, xs, smooth[ys, xs].astype(np.float64)))
    cand_c, cand_y, cand_x, score = (np.concatenate(arrays) for arrays in zip(*parts))
    clock.lap("exact")
    order = np.lexsort((cand_x, cand_y, cand_c))
    return (cand_c[order].astype(np.int64), cand_x[order].astype(np.int64),
            cand_y[order].astype(np.int64), score[order])
