"""COCO segmentations: checked, then rasterised with pycocotools.

A segmentation is polygons (a list of ``[x0, y0, x1, y1, ...]`` lists), an uncompressed RLE
(``{"size": [h, w], "counts": [int, ...]}``) or a compressed RLE (``counts`` a string).
pycocotools trusts what it is given: an RLE whose counts do not add up to ``h * w`` decodes
into uninitialised memory (measured: a 4x5 mask from ``counts: ""`` summed to 465), and an
integer or a string where a list belongs ends in a TypeError deep inside it.
:func:`check_segmentation` refuses those with one line naming the annotation, before any mask
is written. Compressed counts are decoded here (:func:`compressed_counts`, COCO's documented
LEB128-like scheme, ~20 lines) because pycocotools exposes no function that returns them.
"""
import numbers

import numpy as np
from pycocotools import mask as mask_utils

from src.data.annotation_checks import AnnotationError


def compressed_counts(text):
    """The run lengths of a compressed COCO RLE string.

    Each run is stored in 5-bit groups, least significant first, as characters ``48 + group``
    (bit 5: more groups follow; bit 4 of the last group: negative); from the third run on the
    value is a difference to the run two before.

    Raises:
        ValueError: a character outside COCO's alphabet, or a run that ends in the middle.
    """
    counts, position = [], 0
    data = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    while position < len(data):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(data):
                raise ValueError("the last run is cut off")
            group = data[position] - 48
            if not 0 <= group < 64:
                raise ValueError(f"character {chr(data[position])!r} is not COCO RLE")
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position += 1
            shift += 5
            if not more and group & 0x10:
                value -= 1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _fail(ann, what):
    raise AnnotationError(f"annotation id {ann.get('id', '?')} (image id {ann.get('image_id', '?')}): "
                          f"segmentation {what}")


def _check_rle(ann, segm, height, width):
    size = segm.get("size")
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in size)):
        _fail(ann, f"RLE needs 'size' as [height, width], got {str(size)[:40]}")
    if list(size) != [height, width]:
        _fail(ann, f"RLE size {list(size)} differs from the image's [height, width] "
                   f"[{height}, {width}]")
    counts = segm.get("counts")
    if isinstance(counts, (str, bytes)):
        try:
            counts = compressed_counts(counts)
        except ValueError as exc:
            _fail(ann, f"RLE counts are not valid compressed RLE ({exc})")
    elif not (isinstance(counts, list) and all(isinstance(v, numbers.Integral)
                                                and not isinstance(v, bool) for v in counts)):
        _fail(ann, "RLE counts must be a list of integers or a compressed RLE string")
    if any(v < 0 for v in counts) or sum(counts) != height * width:
        _fail(ann, f"RLE counts cover {sum(counts)} pixels with "
                   f"{sum(1 for v in counts if v < 0)} negative runs; the image has "
                   f"{height} x {width} = {height * width}")


def check_segmentation(ann, height, width):
    """Raise AnnotationError (one line naming the annotation) unless ``ann``'s segmentation is
    absent/empty, polygons of numbers, or an RLE covering exactly ``height`` x ``width``."""
    segm = ann.get("segmentation")
    if segm is None or (isinstance(segm, (list, dict)) and not segm):
        return
    if isinstance(segm, list):
        for index, polygon in enumerate(segm):
            if not (isinstance(polygon, list) and all(
                    isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v)
                    for v in polygon)):
                _fail(ann, f"polygon {index} is not a list of finite numbers")
        return
    if isinstance(segm, dict):
        _check_rle(ann, segm, height, width)
        return
    _fail(ann, f"must be polygons (a list) or an RLE (a dict with size and counts), got "
               f"{type(segm).__name__} {str(segm)[:40]}")


def ann_to_mask(ann, height, width):
    """Rasterise one annotation's segmentation (polygons, RLE or uncompressed RLE); polygons of
    fewer than 3 points are left out. Check it first with :func:`check_segmentation`.

    Returns:
        (height, width) bool.
    """
    segm = ann.get("segmentation")
    if not segm:
        return np.zeros((height, width), dtype=bool)
    if isinstance(segm, list):
        polygons = [p for p in segm if len(p) >= 6]
        if not polygons:
            return np.zeros((height, width), dtype=bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segm.get("counts"), list):
        rle = mask_utils.frPyObjects(segm, height, width)
    else:
        rle = segm
    return mask_utils.decode(rle).astype(bool)
