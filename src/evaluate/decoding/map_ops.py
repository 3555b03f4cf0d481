"""The reference's heatmap operations, shared by the reference decoder and the fast one.

Upsampling a network map to the input size, smoothing it and the strict 4-neighbour peak test,
exactly as the reference's post-processing does them: :mod:`.reference` (the specification)
runs them on whole maps, and the fast path (:mod:`.peaks`, :mod:`.operators`) on crops and as
linear operators with the same truncation. Both import them from here, so the fast decoder never
imports its own test oracle.
"""
import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

#: scipy's default Gaussian truncation, which the reference uses (radius = int(4 * sigma + 0.5)).
GAUSS_TRUNCATE = 4.0


def upsample_map(channel, input_size):
    """One network map channel upsampled to the input size like the reference: ``cv2.resize``
    (bilinear) of (h, w) float32 to (H, W) float32, ``input_size`` = (W, H) pixels."""
    width, height = input_size
    return cv2.resize(channel, (width, height))


def smooth_map(upsampled, sigma):
    """The reference's Gaussian smoothing of an upsampled heatmap: scipy's ``gaussian_filter``
    with its defaults (``reflect`` border, radius ``int(4 * sigma + 0.5)``), float32 in and out;
    ``sigma`` in input pixels."""
    return gaussian_filter(upsampled, sigma, truncate=GAUSS_TRUNCATE)


def strict_peaks(smooth, thresh):
    """The reference's peak test on a smoothed (H, W) map: (ys, xs) int64 (row-major order) of
    the pixels above ``thresh`` and strictly above their 4 neighbours (pixels outside the map
    count as 0, like the reference's shifted copies)."""
    padded = np.pad(smooth, 1)
    centre = padded[1:-1, 1:-1]
    is_peak = ((centre > thresh) & (centre > padded[:-2, 1:-1]) & (centre > padded[2:, 1:-1])
               & (centre > padded[1:-1, :-2]) & (centre > padded[1:-1, 2:]))
    return np.nonzero(is_peak)
