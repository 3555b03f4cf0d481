"""Exact-speed machinery: the reference's heatmap upsampling + smoothing as small linear operators.

Upsampling (OpenCV bilinear) followed by Gaussian smoothing (scipy, ``reflect`` border) is linear
along each axis, so the smoothed (H, W) map of an (h, w) heatmap ``M`` is ``A @ M @ B.T`` with
banded matrices ``A`` (H, h) and ``B`` (W, w). This module builds those matrices and the slices
of them that :mod:`.screening` evaluates on blocks, whole channels or single pixels, and OpenCV's
bilinear coefficients that :mod:`.limbs` samples the PAFs with. Everything is cached per size
(the arrays are shared, so they are made read-only).
"""
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter1d

from src.evaluate.decoding.map_ops import GAUSS_TRUNCATE


@lru_cache(maxsize=64)
def linear_coefficients(n_src, n_dst):
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
    return frozen(i0, i1, (1.0 - frac).astype(np.float32), frac.astype(np.float32))


@lru_cache(maxsize=8)
def gaussian_weights(sigma):
    """The exact float64 taps scipy's ``gaussian_filter`` uses for ``sigma`` (2r+1,)."""
    radius = int(GAUSS_TRUNCATE * float(sigma) + 0.5)
    delta = np.zeros(2 * radius + 1)
    delta[radius] = 1.0
    return frozen(gaussian_filter1d(delta, sigma, mode="constant", truncate=GAUSS_TRUNCATE))


def frozen(*arrays):
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
def smooth_upsample_matrix(n_src, n_dst, sigma):
    """(n_dst, n_src) float64 matrix: bilinear upsampling then Gaussian smoothing on one axis.

    Row i is sum_k taps[k] * upsample[reflect(i + k - r)], where each upsampling row has the
    two OpenCV bilinear weights.
    """
    i0, i1, w0, w1 = linear_coefficients(n_src, n_dst)
    taps = gaussian_weights(sigma)
    radius = len(taps) // 2
    rows = np.repeat(np.arange(n_dst), len(taps))
    src = _reflect_index(rows + np.tile(np.arange(-radius, radius + 1), n_dst), n_dst)
    weight = np.tile(taps, n_dst)
    out = np.zeros((n_dst, n_src))
    np.add.at(out, (rows, i0[src]), weight * w0[src])
    np.add.at(out, (rows, i1[src]), weight * w1[src])
    return frozen(out)


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
    full = smooth_upsample_matrix(n_src, n_dst, sigma)
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
    return frozen(mats, starts, valid) + (width,)


@lru_cache(maxsize=32)
def _interior_axis(stride, sigma):
    """The smoothing-upsampling rows of one interior block (stride pixels plus a one-pixel halo)
    of an axis with the given stride, away from any border.

    Returns (rows (stride + 2, K) float64, offset, K): the block of source cell c reads cells
    ``c - offset .. c - offset + K - 1``.
    """
    taps = len(gaussian_weights(sigma))
    n_src = 4 * (taps // stride + 4)                       # wide enough to have an interior
    mats, starts, _, width = _block_operator(n_src, n_src * stride, sigma)
    middle = n_src // 2
    return frozen(mats[middle].copy()), int(middle - starts[middle]), width


@lru_cache(maxsize=32)
def interior_block_operator(stride_y, stride_x, sigma):
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
    return (frozen(op.astype(np.float32), top.astype(np.float32)) +
            (off_y, off_x, k_y, k_x))


@lru_cache(maxsize=32)
def dense_operators(h, height, w, width, sigma):
    """float32 (H, h) row operator and (w, W + 2) column operator with zero end columns."""
    rows = smooth_upsample_matrix(h, height, sigma).astype(np.float32)
    cols = np.zeros((w, width + 2), dtype=np.float32)
    cols[:, 1:-1] = smooth_upsample_matrix(w, width, sigma).T
    return frozen(rows, cols)


@lru_cache(maxsize=64)
def neighbour_bands(n_src, n_dst, sigma):
    """Rows of the smoothing-upsampling matrix for the pixels i - 1, i, i + 1 of every output
    pixel i, on a common window of source cells.

    Returns:
        starts: (n_dst,) int64 first source cell of pixel i's window.
        weights: (n_dst, 3, K) float64, weights[i, d] = matrix[i + d - 1, starts[i]:starts[i]+K]
            (zeros for pixels outside the image).
        inside: (n_dst, 3) bool, False where i + d - 1 is outside the image.
    """
    full = smooth_upsample_matrix(n_src, n_dst, sigma)
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
    return frozen(starts, np.ascontiguousarray(weights), inside) + (width,)
