"""Step 2 of decoding: PAF line-integral scores of the candidate limbs.

The reference (:func:`.reference.connections_reference`) upsamples all 38 PAF channels to the
input size and scores every (peak of joint a, peak of joint b) pair of a limb, one pair at a
time. :func:`score_limb_candidates` gives the same scores, faster:

* PAF values are only needed at the sample points, so the PAFs are never upsampled: the
  bilinear value at a point is computed from the network map with OpenCV's coefficients and
  arithmetic (within one float32 ulp of ``cv2.resize``);
* all candidate pairs of all limbs are scored in one vectorised pass; the two end points (the
  peaks themselves) are tested on whole pair grids first (a float32 screening without
  divisions, then exact products for the survivors), and pairs are dropped as soon as they have
  too many failing sample points.
"""
from functools import lru_cache

import numpy as np

from src.evaluate.decoding.operators import frozen, linear_coefficients
from src.skeleton import LIMB_ARRAY, NUM_JOINTS

#: Pair-grid elements per end-point chunk, and most inside samples evaluated in one go.
_GRID_CHUNK = 32768
_ALL_POINTS_AT_ONCE = 32768
#: Margin of the float32 end-point screening, relative to the largest absolute PAF value.
_ENDPOINT_MARGIN = 1e-4


@lru_cache(maxsize=64)
def _sampling_tables(h, w, height, width):
    """Flat-index and weight tables for bilinear sampling of (C, h, w) maps at output pixels.

    Returns (row0, row1 (height,) int64 offsets y * w, col0, col1 (width,) int64,
    wx0, wx1 (width,) float32, wy0, wy1 (height,) float32).
    """
    x0, x1, wx0, wx1 = linear_coefficients(w, width)
    y0, y1, wy0, wy1 = linear_coefficients(h, height)
    return frozen(y0 * w, y1 * w, x0, x1, wx0, wx1, wy0, wy1)


def _sample_limb_field(flat_pafs, plane, limb, ys, xs, tables):
    """Bilinear values of limb fields of the upsampled PAFs at integer pixels.

    Same arithmetic as OpenCV's INTER_LINEAR in float32 (horizontal then vertical pass), so
    within one float32 ulp of ``cv2.resize``.

    Args:
        flat_pafs: (38 * h * w,) float32 PAFs; plane: h * w; limb, ys, xs: int64 arrays of
            one shape (pixels of the upsampled map).
        tables: ``_sampling_tables(h, w, H, W)``.

    Returns:
        (paf_x, paf_y) float32 arrays of that shape: channels 2 * limb and 2 * limb + 1.
    """
    row0, row1, col0, col1, wx0, wx1, wy0, wy1 = tables
    r0, r1 = row0[ys], row1[ys]
    c0, c1 = col0[xs], col1[xs]
    a0, a1, b0, b1 = wx0[xs], wx1[xs], wy0[ys], wy1[ys]
    out = []
    for base in (2 * limb * plane, (2 * limb + 1) * plane):
        i0 = base + r0
        i1 = base + r1
        top = flat_pafs[i0 + c0] * a0 + flat_pafs[i0 + c1] * a1
        bottom = flat_pafs[i1 + c0] * a0 + flat_pafs[i1 + c1] * a1
        out.append(top * b0 + bottom * b1)
    return out[0], out[1]


def _endpoint_screen(flat_pafs, plane, tables, fx, fy, peak_x, peak_y, counts, first_id,
                     limbs, thresh, max_fail, margin):
    """End-point inner products of every pair of the given limbs (padded grid, NaN padding).

    The grid is screened in float32 without divisions (a pair surely fails an end point when
    ``p . v < (thresh - margin) |v|``); the survivors' products are then computed exactly like
    the reference (``p . (v / |v|)`` in float64).

    Returns (limb, id_a, id_b, first, last, fails) of the pairs with a nonzero length and at
    most ``max_fail`` failing end points, in (limb, id_a, id_b) order.
    """
    joints_a, joints_b = LIMB_ARRAY[limbs, 0], LIMB_ARRAY[limbs, 1]
    n_a, n_b = counts[joints_a], counts[joints_b]
    size_a, size_b = int(n_a.max()), int(n_b.max())
    slot_a, slot_b = np.arange(size_a), np.arange(size_b)
    valid_a = slot_a[None, :] < n_a[:, None]                                   # (L, A)
    valid_b = slot_b[None, :] < n_b[:, None]                                   # (L, B)
    ids_a = np.where(valid_a, first_id[joints_a][:, None] + slot_a, 0)
    ids_b = np.where(valid_b, first_id[joints_b][:, None] + slot_b, 0)
    n_limbs = len(limbs)
    pa_x, pa_y = (v.reshape(n_limbs, size_a, 1) for v in _sample_limb_field(
        flat_pafs, plane, np.repeat(limbs, size_a), peak_y[ids_a].ravel(), peak_x[ids_a].ravel(),
        tables))
    pb_x, pb_y = (v.reshape(n_limbs, 1, size_b) for v in _sample_limb_field(
        flat_pafs, plane, np.repeat(limbs, size_b), peak_y[ids_b].ravel(), peak_x[ids_b].ravel(),
        tables))
    # Screening in float32 (coordinates are small integers, exact in float32). NaN on padding
    # slots makes their length NaN, which fails `norm > 0`.
    xa = np.where(valid_a, fx[ids_a], np.nan).astype(np.float32)[:, :, None]
    ya = np.where(valid_a, fy[ids_a], np.nan).astype(np.float32)[:, :, None]
    vx = fx[ids_b].astype(np.float32)[:, None, :] - xa                         # (L, A, B)
    vy = fy[ids_b].astype(np.float32)[:, None, :] - ya
    norm = np.sqrt(vx * vx + vy * vy)
    low = norm * np.float32(thresh - margin)
    sure_fails = ((pa_x * vx + pa_y * vy < low).view(np.int8)
                  + (pb_x * vx + pb_y * vy < low).view(np.int8))
    with np.errstate(invalid="ignore"):
        ok = (norm > 0) & (sure_fails <= max_fail) & valid_b[:, None, :]
    flat = np.flatnonzero(ok)
    # Exact products of the survivors (flat indices into the (L, A) and (L, B) arrays).
    at_a, slot_ib = np.divmod(flat, size_b)
    which = at_a // size_a
    at_b = which * size_b + slot_ib
    id_a, id_b = ids_a.ravel()[at_a], ids_b.ravel()[at_b]
    vx, vy = fx[id_b] - fx[id_a], fy[id_b] - fy[id_a]
    norm = np.sqrt(vx * vx + vy * vy)
    ux, uy = vx / norm, vy / norm
    first = (pa_x.ravel()[at_a].astype(np.float64) * ux
             + pa_y.ravel()[at_a].astype(np.float64) * uy)
    last = (pb_x.ravel()[at_b].astype(np.float64) * ux
            + pb_y.ravel()[at_b].astype(np.float64) * uy)
    fails = (first <= thresh).astype(np.int64) + (last <= thresh)
    keep = fails <= max_fail
    return (limbs[which[keep]], id_a[keep], id_b[keep], first[keep], last[keep], fails[keep])


def _limb_chunks(limbs, grid):
    """``limbs`` in consecutive groups whose pair grids (``grid[limb]`` pairs each) hold at most
    ``_GRID_CHUNK`` pairs together (a larger limb stays alone): keeps the grids in cache."""
    chunks, current, size = [], [], 0
    for limb in limbs.tolist():
        if current and size + grid[limb] > _GRID_CHUNK:
            chunks.append(current)
            current, size = [], 0
        current.append(limb)
        size += int(grid[limb])
    chunks.append(current)
    return chunks


def _inside_products(flat_pafs, plane, tables, limb, xa, ya, step_x, step_y, ux, uy, fails,
                     n_points, thresh, max_fail):
    """Inner products at the inside sample points of the pairs whose end points passed.

    Args:
        flat_pafs, plane, tables: the raveled PAFs, h * w, and :func:`_sampling_tables`.
        limb, xa, ya, step_x, step_y, ux, uy, fails: (Q,) per pair: its limb, its start, the
            step between its sample points, its unit vector and its end points' failures.
        n_points, thresh, max_fail: sample points, the product threshold, failures allowed.

    Returns:
        ``(rows, inside)``: the pairs (indices into Q) that can still reach the count and their
        (len(rows), n_points - 2) float64 products; ``inside`` is None when no pair is left.
    """
    if limb.size * (n_points - 2) <= _ALL_POINTS_AT_ONCE:
        # Few pairs: every inside point in one go.
        k = np.arange(1, n_points - 1, dtype=np.float64)
        px = np.rint(xa[:, None] + k * step_x[:, None]).astype(np.int64)
        py = np.rint(ya[:, None] + k * step_y[:, None]).astype(np.int64)
        limbs = np.broadcast_to(limb[:, None], px.shape)
        paf_x, paf_y = _sample_limb_field(flat_pafs, plane, limbs, py, px, tables)
        inside = paf_x.astype(np.float64) * ux[:, None] + paf_y.astype(np.float64) * uy[:, None]
        fails = fails + np.count_nonzero(inside <= thresh, axis=1)
        rows = np.flatnonzero(fails <= max_fail)
        inside = inside[rows]
    else:
        # Many pairs: point by point, dropping pairs as soon as they fail too often. Stage k
        # keeps its products for the rows alive at that stage (`stage_rows`).
        rows = np.arange(limb.size)
        stage_rows, stage_products = [], []
        w_xa, w_ya, w_sx, w_sy, w_ux, w_uy, w_limb, w_fails = (
            xa, ya, step_x, step_y, ux, uy, limb, fails)
        for k in range(1, n_points - 1):
            px = np.rint(w_xa + k * w_sx).astype(np.int64)  # np.linspace: start + k * step
            py = np.rint(w_ya + k * w_sy).astype(np.int64)
            paf_x, paf_y = _sample_limb_field(flat_pafs, plane, w_limb, py, px, tables)
            prod = paf_x.astype(np.float64) * w_ux + paf_y.astype(np.float64) * w_uy
            stage_rows.append(rows)
            stage_products.append(prod)
            w_fails = w_fails + (prod <= thresh)
            ok = np.flatnonzero(w_fails <= max_fail)
            if ok.size < rows.size:
                rows, w_xa, w_ya, w_sx, w_sy, w_ux, w_uy, w_limb, w_fails = (
                    arr[ok] for arr in (rows, w_xa, w_ya, w_sx, w_sy, w_ux, w_uy, w_limb,
                                        w_fails))
            if rows.size == 0:
                return rows, None
        inside = np.stack([prod[np.searchsorted(alive, rows)]
                           for alive, prod in zip(stage_rows, stage_products)], axis=1)
    return rows, inside


def score_limb_candidates(pafs, joint, peak_x, peak_y, input_size, params):
    """PAF line-integral scores of all candidate pairs of all limbs (the reference's
    ``compute_candidate_connections``, :func:`.reference.score_pair_reference` for each pair).

    For each limb, every (peak of joint a, peak of joint b) pair with a nonzero length is
    scored: sample point k is ``round(a + k * (b - a) / (n - 1))`` (``np.linspace``; the last
    one is exactly b), its inner product is the upsampled PAF there dotted with the unit vector
    a -> b, and the pair is kept when more than ``n_integ_points_thresh`` products exceed
    ``inner_product_thresh`` and the mean product plus the distance prior
    ``min(limb_length_ratio * W / length - length_penalty_value, 0)`` is positive.

    Pairs are dropped as soon as they cannot reach the point count: the two end points (the
    peaks themselves) are tested on each limb's whole pair grid, the inside points only for the
    survivors (point by point when there are many of them).

    Args:
        pafs: (38, h, w) float32 network PAFs.
        joint, peak_x, peak_y: (n,) int64 peaks from ``find_peaks`` (ids = positions).
        input_size: (W, H) network input size.
        params: DecodeParams.

    Returns:
        limb, id_a, id_b (Q,) int64 and score (Q,) float64 of the pairs that pass, ordered by
        limb, then id_a, then id_b (the reference's candidate order).
    """
    n_points = int(params.n_integ_points)
    max_fail = n_points - int(params.n_integ_points_thresh) - 1
    empty_i = np.zeros(0, dtype=np.int64)
    nothing = empty_i, empty_i, empty_i, np.zeros(0)
    if joint.size == 0 or max_fail < 0:
        return nothing
    _, h, w = pafs.shape
    width, height = input_size
    tables = _sampling_tables(h, w, height, width)
    flat_pafs = pafs.ravel()
    thresh = float(params.inner_product_thresh)
    counts = np.bincount(joint, minlength=NUM_JOINTS)
    first_id = np.concatenate([[0], np.cumsum(counts)])
    fx = peak_x.astype(np.float64)
    fy = peak_y.astype(np.float64)
    # End points, on padded grids of a few limbs at a time (keeps the grids in cache).
    grid = counts[LIMB_ARRAY[:, 0]] * counts[LIMB_ARRAY[:, 1]]
    limbs = np.flatnonzero(grid)
    if limbs.size == 0:
        return nothing
    margin = _ENDPOINT_MARGIN * max(1.0, float(np.abs(pafs).max(initial=0.0)))
    parts = [_endpoint_screen(flat_pafs, h * w, tables, fx, fy, peak_x, peak_y, counts,
                              first_id, np.array(chunk), thresh, max_fail, margin)
             for chunk in _limb_chunks(limbs, grid)]
    limb, id_a, id_b, first, last, fails = (np.concatenate(arrays) for arrays in zip(*parts))
    if limb.size == 0:
        return nothing
    xa, ya = fx[id_a], fy[id_a]
    vx, vy = fx[id_b] - xa, fy[id_b] - ya
    norm = np.sqrt(vx * vx + vy * vy)
    ux, uy = vx / norm, vy / norm
    div = n_points - 1
    rows, inside = _inside_products(flat_pafs, h * w, tables, limb, xa, ya, vx / div, vy / div,
                                    ux, uy, fails, n_points, thresh, max_fail)
    if inside is None:
        return nothing
    products = np.concatenate([first[rows, None], inside, last[rows, None]], axis=1)
    # Same pairwise summation as the reference's per-pair `inner_products.sum()`.
    integ = products.sum(axis=1) / n_points
    prior = np.minimum(float(params.limb_length_ratio) * float(width) / norm[rows]
                       - params.length_penalty_value, 0)
    score = integ + prior
    good = score > 0
    return limb[rows[good]], id_a[rows[good]], id_b[rows[good]], score[good]
