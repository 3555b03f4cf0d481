"""Exact-speed machinery: screening the pixels that can be heatmap peaks, without the full maps.

What it is for: the reference upsamples every heatmap to the input size and smooths it, then
tests every pixel; almost all of that work is on pixels that cannot be peaks. Here only the
output blocks of stride x stride pixels (one per map cell; the stride, ``src.codec.STRIDE`` for
the network's maps, is the ratio of the input size to the map size) whose source neighbourhood
can exceed the threshold are evaluated, and :func:`screen_peaks` returns a superset of the peaks;
:func:`refine_candidates` then gives float64 values for the candidates. :mod:`.peaks` makes
the final decisions.

* A smoothed value is a convex combination of map values, so a block can only hold a peak when
  its source window (plain, then weighted by the largest weights its pixels give) exceeds the
  threshold. The active blocks are evaluated in float32 as one matrix product of their source
  windows (5 x 5 cells at stride 8 and sigma 2.5) with a single interior operator (the image
  border behaves like the interior of the symmetrically padded map), or whole channels at once
  when most of a channel is active (noisy maps) or the input size is not an integer multiple
  of the map size, and screened with a generous margin.
* The candidates are re-evaluated in float64 (their 3 x 3 neighbourhood from one source patch).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from src.evaluate.decoding.operators import dense_operators, interior_block_operator, neighbour_bands

#: Blocks per chunk of the block screening (keeps a chunk in the CPU cache).
_CHUNK_BLOCKS = 1024
#: Channels with more active blocks than this fraction are screened densely (checked first
#: with the plain window bound against _BUSY_FRACTION, then with the weighted bound).
_DENSE_FRACTION = 0.4
_BUSY_FRACTION = 0.8


def _window_max(maps, k_y, k_x):
    """Maximum over every (k_y, k_x) window: (C, h - k_y + 1, w - k_x + 1)."""
    out = maps[:, :, :maps.shape[2] - k_x + 1].copy()
    for shift in range(1, k_x):
        np.maximum(out, maps[:, :, shift:shift + out.shape[2]], out=out)
    rows = out[:, :out.shape[1] - k_y + 1].copy()
    for shift in range(1, k_y):
        np.maximum(rows, out[:, shift:shift + rows.shape[1]], out=rows)
    return rows


def _above_neighbours(flat, line, thresh, eps):
    """Flat indices of the values of a row-major image with rows of ``line`` values that exceed
    ``thresh`` and their 4 neighbours, less ``eps``.

    Only indices with a row above and below are tested (the caller frames its images); the
    left and right neighbours wrap to the adjacent rows, so the caller also frames the columns
    or drops the edge columns.

    Args:
        flat: (n,) float32 values; line: values per row; thresh, eps: floats.

    Returns:
        (k,) int64 indices into ``flat``.
    """
    n = flat.size
    limit = np.maximum(flat[:n - 2 * line], flat[2 * line:])
    np.maximum(limit, flat[line - 1:n - line - 1], out=limit)
    np.maximum(limit, flat[line + 1:n - line + 1], out=limit)
    np.maximum(limit, thresh, out=limit)
    limit -= eps
    return np.flatnonzero(flat[line:n - line] > limit) + line


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
    op, top, off_y, off_x, k_y, k_x = interior_block_operator(s_y, s_x, float(sigma))
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
        pos = _above_neighbours(values.ravel(), l_x, thresh, eps)
        found.append(pos + lo * block_len)
    pos = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    block, rest = np.divmod(pos, block_len)
    iy, ix = np.divmod(rest, l_x)
    inside = (iy >= 1) & (iy <= s_y) & (ix >= 1) & (ix <= s_x)
    block, iy, ix = block[inside], iy[inside], ix[inside]
    return (chan[block], blk_y[block] * s_y + iy - 1, blk_x[block] * s_x + ix - 1), dense


def _screen_dense(maps, channels, input_size, sigma, thresh, eps):
    """Same screening as ``_screen_blocks`` over whole channels (any size ratio).

    Each channel is smoothed with two matrix products into a buffer framed by -inf, then
    tested with flat shifts while it is still in cache.
    """
    width, height = input_size
    _, h, w = maps.shape
    rows, cols = dense_operators(h, height, w, width, float(sigma))
    buf = np.empty((height + 2, width + 2), dtype=np.float32)
    buf[0] = -np.inf
    buf[-1] = -np.inf
    flat = buf.ravel()
    line = width + 2
    found_c, found_pos = [], []
    for channel in channels:
        np.matmul(rows @ maps[channel], cols, out=buf[1:-1])
        buf[1:-1, 0] = -np.inf
        buf[1:-1, -1] = -np.inf
        pos = _above_neighbours(flat, line, thresh, eps)
        found_c.append(np.full(pos.size, channel))
        found_pos.append(pos)
    if not found_c:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    pos = np.concatenate(found_pos)
    ys, xs = np.divmod(pos, line)
    return np.concatenate(found_c), ys - 1, xs - 1


def screen_peaks(maps, input_size, sigma, thresh, eps):
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


def refine_candidates(maps, input_size, sigma, thresh, chan, ys, xs):
    """Float64 smoothed values of candidates and of their 4 neighbours.

    One source patch per candidate covers the 3 x 3 pixels around it; the values are the
    patch's bilinear forms with the pixels' rows of the smoothing-upsampling matrices.

    Returns (value (n,), margin (n,), scale (n,)): the candidate's value, its excess over the
    largest of the threshold and its in-image neighbours, and the largest absolute source value
    these five values depend on (their rounding errors are relative to it).
    """
    width, height = input_size
    _, h, w = maps.shape
    start_y, band_y, inside_y, k_y = neighbour_bands(h, height, sigma)
    start_x, band_x, inside_x, k_x = neighbour_bands(w, width, sigma)
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
