"""Greedy part-affinity-field decoder: stride-8 network maps of one image -> people.

Pure numpy / scipy / OpenCV (no MindSpore). It follows the reference post-processing step by
step and returns the same people:

1. upsample every map to the network input size (``cv2.resize``, bilinear, float32);
2. smooth every joint heatmap with a Gaussian (``gaussian_sigma``, scipy ``reflect`` border);
3. peaks: pixels above ``heatmap_peak_thresh`` and strictly above their 4 neighbours;
4. every (joint a, joint b) peak pair of a limb is scored by the PAF line integral over
   ``n_integ_points`` rounded sample points plus the distance prior
   ``min(limb_length_ratio * input_width / length - length_penalty_value, 0)``; a pair is kept
   when more than ``n_integ_points_thresh`` points have an inner product above
   ``inner_product_thresh`` and its score is positive;
5. greedy matching per limb (best score first, each peak used once);
6. grouping connections into people, limb by limb, with the reference's merge rules (the two
   ear-shoulder limbs never start a person), then pruning people with fewer than
   ``n_subset_limbs_thresh`` joints or a mean score below ``subset_score_thresh``;
7. joints scaled to original image pixels.

How it is made fast without changing the result:

* Upsampling + smoothing is linear, so the smoothed map is ``A @ M @ B.T`` with small banded
  matrices ``A`` (H x h) and ``B`` (W x w). A smoothed value is a convex combination of map
  values, so only the 8 x 8 output blocks whose source neighbourhood (plain and weighted) can
  exceed the threshold can hold a peak. Those are evaluated in float32 as one matrix product of
  their 5 x 5 source windows with a single interior operator (the image border behaves like
  the interior of the symmetrically padded map), or whole channels at once when most of a
  channel is active (noisy maps), and screened for peaks with a generous margin.
* The few candidates are re-evaluated in float64 (a 3 x 3 neighbourhood from one source patch).
  That value is within a few float32 ulps of the reference's float32 pipeline; decisions taken
  by more than a safe margin (relative to the local map magnitude) are final, and the rare
  ambiguous ones (near ties, e.g. a peak exactly between two pixels, where float32 rounding
  decides) are re-decided on values computed exactly like the reference (``cv2.resize`` +
  ``scipy.ndimage.gaussian_filter`` on a local crop, which gives bit-identical values).
* PAF values are only needed at the sample points, so PAFs are never upsampled: the bilinear
  value at a point is computed from the low-resolution map with OpenCV's coefficients and
  arithmetic (within one float32 ulp of ``cv2.resize``).
* All candidate pairs of all limbs are scored in one vectorised pass; the two end points (the
  peaks themselves) are tested on whole pair grids first, and pairs are dropped as soon as they
  have too many failing sample points.
* Greedy matching is done in rounds with arrays (an edge that is the best remaining edge of both
  of its peaks is exactly an edge greedy would accept).
* Grouping stays a loop over the (few) accepted connections but finds the people that hold a
  peak through a dictionary instead of scanning all people.

The reference crashes on numpy >= 1.23 (``paf[0][np.hsplit(...)]``); this module does what it
meant (``paf[ys, xs]``).
"""
import time
from dataclasses import dataclass, fields
from functools import lru_cache

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d
from numpy.lib.stride_tricks import sliding_window_view

from src.skeleton import EAR_SHOULDER_LIMBS, LIMB_ARRAY, NUM_JOINTS, NUM_LIMBS

#: scipy's default Gaussian truncation (radius = int(truncate * sigma + 0.5)).
_GAUSS_TRUNCATE = 4.0
#: Safety margin, relative to the largest absolute map value a pixel depends on, within which a
#: peak decision taken on the float64 values is re-checked with exact reference values. The
#: reference's float32 pipeline is within about 5 float32 ulps (3e-7) of the exact value
#: (measured: 1e-7), so a difference of two values is off by at most 6e-7.
_EPS_REL = 1.5e-6
#: Screening margin, relative to the largest absolute map value, for the float32 block values
#: (their own error is below 2e-6).
_SCREEN_EPS_REL = 2e-5
#: Blocks per chunk of the block screening (keeps a chunk in the CPU cache).
_CHUNK_BLOCKS = 1024
#: Pair-grid elements per end-point chunk, and most inside samples evaluated in one go.
_GRID_CHUNK = 32768
_ALL_POINTS_AT_ONCE = 32768
#: Margin of the float32 end-point screening, relative to the largest absolute PAF value.
_ENDPOINT_MARGIN = 1e-4
#: Channels with more active blocks than this fraction are screened densely (checked first
#: with the plain window bound against _BUSY_FRACTION, then with the weighted bound).
_DENSE_FRACTION = 0.4
_BUSY_FRACTION = 0.8
#: Channels where more than this fraction of the pixels pass the screening (flat or plateau
#: maps) are decoded whole, exactly like the reference (cheaper than refining them).
_WHOLE_CHANNEL_FRACTION = 0.05


@dataclass(frozen=True)
class DecodeParams:
    """Decoder parameters (names and defaults of the reference ``default_config.yaml``)."""

    gaussian_sigma: float = 2.5
    heatmap_peak_thresh: float = 0.05
    n_integ_points: int = 10
    n_integ_points_thresh: int = 8
    inner_product_thresh: float = 0.05
    limb_length_ratio: float = 1.0
    length_penalty_value: float = 1.0
    n_subset_limbs_thresh: int = 3
    subset_score_thresh: float = 0.2

    def __post_init__(self):
        if int(self.n_integ_points) < 2:
            raise ValueError(f"n_integ_points must be >= 2, got {self.n_integ_points}")
        if float(self.gaussian_sigma) <= 0:
            raise ValueError(f"gaussian_sigma must be > 0, got {self.gaussian_sigma}")

    @classmethod
    def from_config(cls, cfg):
        """Build from any object with the config attributes (missing ones keep defaults)."""
        kwargs = {}
        for field in fields(cls):
            if hasattr(cfg, field.name):
                kwargs[field.name] = field.type(getattr(cfg, field.name))
        return cls(**kwargs)


class _Clock:
    """Adds the time since the previous lap to ``timings[name]`` (no-op without a dict)."""

    def __init__(self, timings):
        self.timings = timings
        self.last = time.perf_counter() if timings is not None else 0.0

    def lap(self, name):
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
            self.last = now


# ---------------------------------------------------------------------------------------------
# Upsampling / smoothing operators
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _linear_coefficients(n_src, n_dst):
    """OpenCV INTER_LINEAR coefficients along one axis.

    Returns (i0, i1, w0, w1): int64 source indices and float32 weights, each (n_dst,), so that
    ``dst[k] = src[i0[k]] * w0[k] + src[i1[k]] * w1[k]`` (borders clamped like OpenCV).
    """
    pos = (np.arange(n_dst, dtype=np.float64) + 0.5) * (n_src / n_dst) - 0.5
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    low = i0 < 0
    i0[low] = 0
    frac[low] = 0.0
    high = i0 >= n_src - 1
    i0[high] = n_src - 1
    frac[high] = 0.0
    i1 = np.minimum(i0 + 1, n_src - 1)
    return _frozen(i0, i1, (1.0 - frac).astype(np.float32), frac.astype(np.float32))


@lru_cache(maxsize=8)
def _gaussian_weights(sigma):
    """The exact float64 taps scipy's ``gaussian_filter`` uses for ``sigma`` (2r+1,)."""
    radius = int(_GAUSS_TRUNCATE * float(sigma) + 0.5)
    delta = np.zeros(2 * radius + 1)
    delta[radius] = 1.0
    return _frozen(gaussian_filter1d(delta, sigma, mode="constant", truncate=_GAUSS_TRUNCATE))


def _frozen(*arrays):
    """Mark cached arrays read-only (they are shared between calls); returns them."""
    for array in arrays:
        array.flags.writeable = False
    return arrays[0] if len(arrays) == 1 else arrays


def _reflect_index(idx, n):
    """scipy 'reflect' (half-sample symmetric) border: maps any int index into [0, n)."""
    period = 2 * n
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - 1 - idx, idx)


@lru_cache(maxsize=64)
def _smooth_upsample_matrix(n_src, n_dst, sigma):
    """(n_dst, n_src) float64 matrix: bilinear upsampling then Gaussian smoothing on one axis.

    Row i is sum_k taps[k] * upsample[reflect(i + k - r)], where each upsampling row has the
    two OpenCV bilinear weights.
    """
    i0, i1, w0, w1 = _linear_coefficients(n_src, n_dst)
    taps = _gaussian_weights(sigma)
    radius = len(taps) // 2
    rows = np.repeat(np.arange(n_dst), len(taps))
    src = _reflect_index(rows + np.tile(np.arange(-radius, radius + 1), n_dst), n_dst)
    weight = np.tile(taps, n_dst)
    out = np.zeros((n_dst, n_src))
    np.add.at(out, (rows, i0[src]), weight * w0[src])
    np.add.at(out, (rows, i1[src]), weight * w1[src])
    return _frozen(out)


@lru_cache(maxsize=64)
def _block_operator(n_src, n_dst, sigma):
    """Per-block slices of the smoothing-upsampling matrix for one axis.

    Output pixels are grouped in blocks of ``stride = n_dst // n_src`` (one block per source
    cell), each with a one-pixel halo on both sides.

    Returns:
        mats: (n_src, stride + 2, K) float64, rows of the matrix for the halo'd block, restricted
            to the K source cells starting at ``starts``.
        starts: (n_src,) int64 first source cell of each block's window.
        valid: (n_src, stride + 2) bool, False for halo pixels outside the image.
        width: K.
    """
    stride = n_dst // n_src
    full = _smooth_upsample_matrix(n_src, n_dst, sigma)
    rows = np.arange(n_src)[:, None] * stride + np.arange(-1, stride + 1)[None, :]
    valid = (rows >= 0) & (rows < n_dst)
    lo = np.empty(n_src, dtype=np.int64)
    hi = np.empty(n_src, dtype=np.int64)
    for block in range(n_src):
        support = np.flatnonzero(np.any(full[rows[block][valid[block]]] != 0, axis=0))
        lo[block], hi[block] = support[0], support[-1]
    width = int(np.max(hi - lo + 1))
    starts = np.clip(lo, 0, n_src - width)
    mats = np.zeros((n_src, stride + 2, width))
    for block in range(n_src):
        ok = valid[block]
        mats[block, ok] = full[rows[block][ok], starts[block]:starts[block] + width]
    return _frozen(mats, starts, valid) + (width,)


# ---------------------------------------------------------------------------------------------
# Peaks
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _interior_axis(stride, sigma):
    """The smoothing-upsampling rows of one interior block (stride pixels plus a one-pixel halo)
    of an axis with the given stride, away from any border.

    Returns (rows (stride + 2, K) float64, offset, K): the block of source cell c reads cells
    ``c - offset .. c - offset + K - 1``.
    """
    taps = len(_gaussian_weights(sigma))
    n_src = 4 * (taps // stride + 4)                       # wide enough to have an interior
    mats, starts, _, width = _block_operator(n_src, n_src * stride, sigma)
    middle = n_src // 2
    return _frozen(mats[middle].copy()), int(middle - starts[middle]), width


@lru_cache(maxsize=32)
def _interior_block_operator(stride_y, stride_x, sigma):
    """Operator of an interior block on its flattened (Ky, Kx) source window.

    Returns:
        op: (Ky * Kx, (sy + 2) * (sx + 2)) float32, window -> flattened halo'd block values.
        top: (Ky * Kx,) float32, the largest weight any non-halo pixel gives to each cell.
        off_y, off_x, k_y, k_x: window offsets and sizes (see ``_interior_axis``).
    """
    rows_y, off_y, k_y = _interior_axis(stride_y, sigma)
    rows_x, off_x, k_x = _interior_axis(stride_x, sigma)
    op = np.einsum("ik,jl->klij", rows_y, rows_x).reshape(k_y * k_x, -1)
    top = np.outer(rows_y[1:-1].max(axis=0), rows_x[1:-1].max(axis=0)).ravel()
    return (_frozen(op.astype(np.float32), top.astype(np.float32)) +
            (off_y, off_x, k_y, k_x))


def _window_max(maps, k_y, k_x):
    """Maximum over every (k_y, k_x) window: (C, h - k_y + 1, w - k_x + 1)."""
    out = maps[:, :, :maps.shape[2] - k_x + 1].copy()
    for shift in range(1, k_x):
        np.maximum(out, maps[:, :, shift:shift + out.shape[2]], out=out)
    rows = out[:, :out.shape[1] - k_y + 1].copy()
    for shift in range(1, k_y):
        np.maximum(rows, out[:, shift:shift + rows.shape[1]], out=rows)
    return rows


def _screen_blocks(maps, input_size, sigma, thresh, eps):
    """Screen the blocks that can hold a peak, with float32 smoothed values.

    The output is cut in one block per source cell (stride x stride pixels plus a one-pixel
    halo). With integer strides the image border behaves like the interior of the map padded
    symmetrically (OpenCV's clamped bilinear upsampling of the border cells and scipy's
    reflection at the pixel border both mirror the cells), so every block is a product of its
    (Ky, Kx) source window with one interior operator. A block can only hold a peak when the
    largest value of its window, and the window weighted by the largest weights its pixels
    give, exceed ``thresh - eps`` (smoothed values are convex combinations of map values).

    Args:
        maps: (C, h, w) float32; the input size must be an integer multiple of the map size.

    Returns:
        (chan, y, x) int64 arrays of the pixels whose value exceeds the threshold and its 4
        neighbours minus ``eps``, and the (C,) bool mask of the channels left to
        ``_screen_dense`` because most of their blocks are active.
    """
    n_ch, h, w = maps.shape
    width, height = input_size
    s_y, s_x = height // h, width // w
    op, top, off_y, off_x, k_y, k_x = _interior_block_operator(s_y, s_x, float(sigma))
    pad = max(k_y, k_x)
    padded = np.pad(maps, ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
    first_y, first_x = pad - off_y, pad - off_x          # window of block 0 in `padded`
    active = _window_max(padded, k_y, k_x)[:, first_y:first_y + h, first_x:first_x + w]
    active = active > thresh - eps
    # Channels active almost everywhere (noisy maps) go dense straight away.
    dense = active.reshape(n_ch, -1).mean(axis=1) > _BUSY_FRACTION
    active[dense] = False
    chan, blk_y, blk_x = np.nonzero(active)
    # Source windows as flat indices into `padded`.
    pad_h, pad_w = padded.shape[1:]
    cells = (np.arange(k_y)[:, None] * pad_w + np.arange(k_x)[None, :]).ravel()
    corner = (chan * pad_h + blk_y + first_y) * pad_w + blk_x + first_x
    local = padded.ravel()[corner[:, None] + cells[None, :]]               # (n, Ky * Kx)
    keep = np.maximum(local, 0) @ top > thresh - eps
    chan, blk_y, blk_x, local = chan[keep], blk_y[keep], blk_x[keep], local[keep]
    dense |= np.bincount(chan, minlength=n_ch) > _DENSE_FRACTION * h * w
    sparse = ~dense[chan]
    chan, blk_y, blk_x, local = chan[sparse], blk_y[sparse], blk_x[sparse], local[sparse]
    l_y, l_x = s_y + 2, s_x + 2
    block_len = l_y * l_x
    found = []
    for lo in range(0, len(chan), _CHUNK_BLOCKS):
        hi = min(lo + _CHUNK_BLOCKS, len(chan))
        by, bx = blk_y[lo:hi], blk_x[lo:hi]
        values = np.matmul(local[lo:hi], op).reshape(hi - lo, l_y, l_x)
        # Halo pixels outside the image never win a comparison.
        values[by == 0, 0, :] = -np.inf
        values[by == h - 1, -1, :] = -np.inf
        values[bx == 0, :, 0] = -np.inf
        values[bx == w - 1, :, -1] = -np.inf
        # 4-neighbour test on the flattened blocks: neighbours of interior pixels are at
        # +-1 and +-l_x; halo positions give meaningless results and are dropped below.
        flat = values.ravel()
        n = flat.size
        limit = np.maximum(flat[:n - 2 * l_x], flat[2 * l_x:])
        np.maximum(limit, flat[l_x - 1:n - l_x - 1], out=limit)
        np.maximum(limit, flat[l_x + 1:n - l_x + 1], out=limit)
        np.maximum(limit, thresh, out=limit)
        limit -= eps
        pos = np.flatnonzero(flat[l_x:n - l_x] > limit) + l_x
        found.append(pos + lo * block_len)
    pos = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    block, rest = np.divmod(pos, block_len)
    iy, ix = np.divmod(rest, l_x)
    inside = (iy >= 1) & (iy <= s_y) & (ix >= 1) & (ix <= s_x)
    block, iy, ix = block[inside], iy[inside], ix[inside]
    return (chan[block], blk_y[block] * s_y + iy - 1, blk_x[block] * s_x + ix - 1), dense


@lru_cache(maxsize=32)
def _dense_operators(h, height, w, width, sigma):
    """float32 (H, h) row operator and (w, W + 2) column operator with zero end columns."""
    rows = _smooth_upsample_matrix(h, height, sigma).astype(np.float32)
    cols = np.zeros((w, width + 2), dtype=np.float32)
    cols[:, 1:-1] = _smooth_upsample_matrix(w, width, sigma).T
    return _frozen(rows, cols)


def _screen_dense(maps, channels, input_size, sigma, thresh, eps):
    """Same screening as ``_screen_blocks`` over whole channels (any size ratio).

    Each channel is smoothed with two matrix products into a buffer framed by -inf, then
    tested with flat shifts while it is still in cache.
    """
    width, height = input_size
    _, h, w = maps.shape
    rows, cols = _dense_operators(h, height, w, width, float(sigma))
    buf = np.empty((height + 2, width + 2), dtype=np.float32)
    buf[0] = -np.inf
    buf[-1] = -np.inf
    flat = buf.ravel()
    line = width + 2
    n = flat.size
    found_c, found_pos = [], []
    for channel in channels:
        np.matmul(rows @ maps[channel], cols, out=buf[1:-1])
        buf[1:-1, 0] = -np.inf
        buf[1:-1, -1] = -np.inf
        limit = np.maximum(flat[:n - 2 * line], flat[2 * line:])
        np.maximum(limit, flat[line - 1:n - line - 1], out=limit)
        np.maximum(limit, flat[line + 1:n - line + 1], out=limit)
        np.maximum(limit, thresh, out=limit)
        limit -= eps
        pos = np.flatnonzero(flat[line:n - line] > limit) + line
        found_c.append(np.full(pos.size, channel))
        found_pos.append(pos)
    if not found_c:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    pos = np.concatenate(found_pos)
    ys, xs = np.divmod(pos, line)
    return np.concatenate(found_c), ys - 1, xs - 1


def _screen_peaks(maps, input_size, sigma, thresh, eps):
    """Superset of the peaks: (chan, y, x) int64 of the pixels passing the peak test with
    margin ``eps`` on fast float32 values (blocks where the input size is an integer multiple
    of the map size, whole channels otherwise or where most of a channel is active)."""
    n_ch, h, w = maps.shape
    width, height = input_size
    if height % h or width % w:
        return tuple(np.asarray(a, dtype=np.int64) for a in
                     _screen_dense(maps, range(n_ch), input_size, sigma, thresh, eps))
    found, dense = _screen_blocks(maps, input_size, sigma, thresh, eps)
    parts = [found]
    if dense.any():
        parts.append(_screen_dense(maps, np.flatnonzero(dense).tolist(), input_size, sigma,
                                   thresh, eps))
    return tuple(np.concatenate(arrays).astype(np.int64) for arrays in zip(*parts))


@lru_cache(maxsize=64)
def _neighbour_bands(n_src, n_dst, sigma):
    """Rows of the smoothing-upsampling matrix for the pixels i - 1, i, i + 1 of every output
    pixel i, on a common window of source cells.

    Returns:
        starts: (n_dst,) int64 first source cell of pixel i's window.
        weights: (n_dst, 3, K) float64, weights[i, d] = matrix[i + d - 1, starts[i]:starts[i]+K]
            (zeros for pixels outside the image).
        inside: (n_dst, 3) bool, False where i + d - 1 is outside the image.
    """
    full = _smooth_upsample_matrix(n_src, n_dst, sigma)
    padded = np.zeros((n_dst + 2, n_src))
    padded[1:-1] = full
    rows = np.arange(n_dst)[:, None] + np.arange(3)[None, :]           # into `padded`
    nonzero = padded[rows] != 0                                         # (n_dst, 3, n_src)
    any_nz = nonzero.any(axis=1)
    lo = np.argmax(any_nz, axis=1)
    hi = n_src - 1 - np.argmax(any_nz[:, ::-1], axis=1)
    width = int(np.max(hi - lo + 1))
    starts = np.clip(lo, 0, n_src - width)
    cols = starts[:, None] + np.arange(width)[None, :]
    weights = np.take_along_axis(padded[rows], np.broadcast_to(cols[:, None, :],
                                                               (n_dst, 3, width)), axis=2)
    inside = (rows >= 1) & (rows <= n_dst)
    return _frozen(starts, np.ascontiguousarray(weights), inside) + (width,)


def _refine_candidates(maps, input_size, sigma, thresh, chan, ys, xs):
    """Float64 smoothed values of candidates and of their 4 neighbours.

    One source patch per candidate covers the 3 x 3 pixels around it; the values are the
    patch's bilinear forms with the pixels' rows of the smoothing-upsampling matrices.

    Returns (value (n,), margin (n,), scale (n,)): the candidate's value, its excess over the
    largest of the threshold and its in-image neighbours, and the largest absolute source value
    these five values depend on (their rounding errors are relative to it).
    """
    width, height = input_size
    _, h, w = maps.shape
    start_y, band_y, inside_y, k_y = _neighbour_bands(h, height, sigma)
    start_x, band_x, inside_x, k_x = _neighbour_bands(w, width, sigma)
    windows = sliding_window_view(maps, (k_y, k_x), axis=(1, 2))
    patch = windows[chan, start_y[ys], start_x[xs]].astype(np.float64)  # (n, ky, kx)
    # values[n, i, j]: pixel (y + i - 1, x + j - 1).
    values = np.matmul(np.matmul(band_y[ys], patch), band_x[xs].transpose(0, 2, 1))
    centre = values[:, 1, 1]
    neighbours = np.stack([values[:, 0, 1], values[:, 2, 1], values[:, 1, 0], values[:, 1, 2]],
                          axis=1)
    inside = np.stack([inside_y[ys, 0], inside_y[ys, 2], inside_x[xs, 0], inside_x[xs, 2]],
                      axis=1)
    neighbours[~inside] = -np.inf
    limit = np.maximum(neighbours.max(axis=1, initial=-np.inf), thresh)
    scale = np.abs(patch).max(axis=(1, 2), initial=0.0)
    return centre, centre - limit, scale


def _reference_smoothed(heatmap, input_size, sigma, rows=None, cols=None):
    """The reference's smoothed map (bit-identical): ``gaussian_filter(cv2.resize(map))`` in
    float32, on the whole image or on the crop ``rows`` x ``cols`` (slices).

    A crop gives the reference's values at every pixel at least ``radius + 1`` inside its
    edges (or next to an image edge), since each value only depends on its window.
    """
    width, height = input_size
    upsampled = cv2.resize(heatmap, (width, height))
    if rows is not None:
        upsampled = upsampled[rows, cols]
    return gaussian_filter(upsampled, sigma, truncate=_GAUSS_TRUNCATE)


def _strict_peaks(smooth, thresh):
    """The reference's peak test on a smoothed map: (ys, xs) of pixels above ``thresh`` and
    strictly above their 4 neighbours (pixels outside the map count as 0)."""
    padded = np.pad(smooth, 1)
    centre = padded[1:-1, 1:-1]
    is_peak = ((centre > thresh) & (centre > padded[:-2, 1:-1]) & (centre > padded[2:, 1:-1])
               & (centre > padded[1:-1, :-2]) & (centre > padded[1:-1, 2:]))
    return np.nonzero(is_peak)


def _exact_peak_check(heatmap, input_size, sigma, thresh, ys, xs):
    """Decide candidate peaks with values bit-identical to the reference.

    One crop covering all the candidates (plus the filter radius) is smoothed exactly like the
    reference and tested like the reference.

    Args:
        heatmap: (h, w) float32 low-resolution map; ys, xs: (n,) int candidate pixels.

    Returns:
        (is_peak bool (n,), value float64 (n,)).
    """
    width, height = input_size
    margin = int(_GAUSS_TRUNCATE * float(sigma) + 0.5) + 1
    y0, x0 = max(int(ys.min()) - margin, 0), max(int(xs.min()) - margin, 0)
    y1, x1 = min(int(ys.max()) + margin + 1, height), min(int(xs.max()) + margin + 1, width)
    smooth = _reference_smoothed(heatmap, input_size, sigma, slice(y0, y1), slice(x0, x1))
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
        heatmaps: (>=18, h, w) stride-8 heatmaps (channels beyond the 18 joints are ignored).
        input_size: (W, H) network input size in pixels.
        params: DecodeParams.

    Returns:
        joint (n,) int64, x (n,) int64, y (n,) int64 (input pixels), score (n,) float64 (the
        smoothed float32 value), ordered by joint, then row, then column (the reference's peak
        ids are the positions in this order).

    ``timings`` (optional dict) receives the seconds of the stages "screen", "refine" and
    "exact".
    """
    clock = _Clock(timings)
    maps = np.ascontiguousarray(heatmaps[:NUM_JOINTS], dtype=np.float32)
    thresh = float(params.heatmap_peak_thresh)
    sigma = float(params.gaussian_sigma)
    scale = max(float(np.abs(maps).max(initial=0.0)), 1e-30)
    cand_c, cand_y, cand_x = _screen_peaks(maps, input_size, sigma, thresh,
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
    cand_v, margin, local_scale = _refine_candidates(maps, input_size, sigma, thresh,
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
        smooth = _reference_smoothed(maps[channel], input_size, sigma)
        ys, xs = _strict_peaks(smooth, thresh)
        parts.append((np.full(ys.size, channel), ys, xs, smooth[ys, xs].astype(np.float64)))
    cand_c, cand_y, cand_x, score = (np.concatenate(arrays) for arrays in zip(*parts))
    clock.lap("exact")
    order = np.lexsort((cand_x, cand_y, cand_c))
    return (cand_c[order].astype(np.int64), cand_x[order].astype(np.int64),
            cand_y[order].astype(np.int64), score[order])


# ---------------------------------------------------------------------------------------------
# Limb connections
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _sampling_tables(h, w, height, width):
    """Flat-index and weight tables for bilinear sampling of (C, h, w) maps at output pixels.

    Returns (row0, row1 (height,) int64 offsets y * w, col0, col1 (width,) int64,
    wx0, wx1 (width,) float32, wy0, wy1 (height,) float32).
    """
    x0, x1, wx0, wx1 = _linear_coefficients(w, width)
    y0, y1, wy0, wy1 = _linear_coefficients(h, height)
    return _frozen(y0 * w, y1 * w, x0, x1, wx0, wx1, wy0, wy1)


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


def score_limb_candidates(pafs, joint, peak_x, peak_y, input_size, params):
    """PAF line-integral scores of all candidate pairs of all limbs (reference
    ``compute_candidate_connections``).

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
        pafs: (38, h, w) float32 stride-8 PAFs.
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
    chunks, current, size = [], [], 0
    for limb in limbs.tolist():
        if current and size + grid[limb] > _GRID_CHUNK:
            chunks.append(current)
            current, size = [], 0
        current.append(limb)
        size += int(grid[limb])
    chunks.append(current)
    margin = _ENDPOINT_MARGIN * max(1.0, float(np.abs(pafs).max(initial=0.0)))
    parts = [_endpoint_screen(flat_pafs, h * w, tables, fx, fy, peak_x, peak_y, counts,
                              first_id, np.array(chunk), thresh, max_fail, margin)
             for chunk in chunks]
    limb, id_a, id_b, first, last, fails = (np.concatenate(arrays) for arrays in zip(*parts))
    if limb.size == 0:
        return nothing
    xa, ya = fx[id_a], fy[id_a]
    vx, vy = fx[id_b] - xa, fy[id_b] - ya
    norm = np.sqrt(vx * vx + vy * vy)
    ux, uy = vx / norm, vy / norm
    div = n_points - 1
    step_x, step_y = vx / div, vy / div
    if limb.size * (n_points - 2) <= _ALL_POINTS_AT_ONCE:
        # Few pairs: every inside point in one go.
        k = np.arange(1, n_points - 1, dtype=np.float64)
        px = np.rint(xa[:, None] + k * step_x[:, None]).astype(np.int64)
        py = np.rint(ya[:, None] + k * step_y[:, None]).astype(np.int64)
        limbs = np.broadcast_to(limb[:, None], px.shape)
        paf_x, paf_y = _sample_limb_field(flat_pafs, h * w, limbs, py, px, tables)
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
            paf_x, paf_y = _sample_limb_field(flat_pafs, h * w, w_limb, py, px, tables)
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
                return nothing
        inside = np.stack([prod[np.searchsorted(alive, rows)]
                           for alive, prod in zip(stage_rows, stage_products)], axis=1)
    products = np.concatenate([first[rows, None], inside, last[rows, None]], axis=1)
    # Same pairwise summation as the reference's per-pair `inner_products.sum()`.
    integ = products.sum(axis=1) / n_points
    prior = np.minimum(float(params.limb_length_ratio) * float(width) / norm[rows]
                       - params.length_penalty_value, 0)
    score = integ + prior
    good = score > 0
    return limb[rows[good]], id_a[rows[good]], id_b[rows[good]], score[good]


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


# ---------------------------------------------------------------------------------------------
# Grouping
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------
def _check_maps(heatmaps, pafs):
    heatmaps = np.asarray(heatmaps)
    pafs = np.asarray(pafs)
    if heatmaps.ndim != 3 or heatmaps.shape[0] < NUM_JOINTS:
        raise ValueError(f"heatmaps must be (>= {NUM_JOINTS}, h, w), got {heatmaps.shape}")
    if pafs.ndim != 3 or pafs.shape[0] != 2 * NUM_LIMBS or pafs.shape[1:] != heatmaps.shape[1:]:
        raise ValueError(f"pafs must be ({2 * NUM_LIMBS}, h, w) like the heatmaps "
                         f"{heatmaps.shape[1:]}, got {pafs.shape}")
    return (np.ascontiguousarray(heatmaps, dtype=np.float32),
            np.ascontiguousarray(pafs, dtype=np.float32))


def decode_poses(heatmaps, pafs, input_size, orig_size, params=None, timings=None):
    """Decode the people of one image from its stride-8 network maps.

    Args:
        heatmaps: (19, h, w) (or (18, h, w)) joint heatmaps, background last; float32 is used.
        pafs: (38, h, w) part affinity fields, channels 2i, 2i+1 = x, y of limb i.
        input_size: (W, H) network input size in pixels (maps are upsampled to it).
        orig_size: (W, H) original image size in pixels (joints are scaled to it).
        params: DecodeParams (defaults of the reference when None).
        timings: optional dict that receives the seconds spent per stage ("screen", "refine",
            "exact" of the peak search, "pairs", "matching", "grouping").

    Returns:
        poses: (N, 18, 3) float64, x, y in original pixels and visibility 2 for found joints,
            0, 0, 0 for missing ones; scores: (N,) float64 person scores.
    """
    params = params or DecodeParams()
    heatmaps, pafs = _check_maps(heatmaps, pafs)
    input_size = (int(input_size[0]), int(input_size[1]))
    orig_size = (int(orig_size[0]), int(orig_size[1]))
    empty = np.zeros((0, NUM_JOINTS, 3)), np.zeros(0)
    joint, peak_x, peak_y, peak_score = find_peaks(heatmaps, input_size, params, timings)
    if joint.size == 0:
        return empty
    clock = _Clock(timings)
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
    return poses, scores
