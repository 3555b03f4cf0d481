"""Single-image inference: input sizing, preprocessing, multi-scale and flip averaging, decoding.

The network is any callable taking a float32 batch (N, 3, H, W) in [-0.5, 0.5] and returning
numpy ``(pafs (N, 38, H/8, W/8), heatmaps (N, 19, H/8, W/8))`` of the last stage;
:func:`mindspore_forward` makes one from an ``OpenPoseNet``. Nothing here imports MindSpore at
module level.
"""
import time

import cv2
import numpy as np

from src.codec import STRIDE, TRAINED_INPUT_SCALE, normalize_image, round_up_to_stride
from src.evaluate.decoder import DecodeParams, decode_people
from src.skeleton import FLIP_HEATMAP_CHANNELS, FLIP_LIMBS, NUM_HEATMAPS, NUM_LIMBS, NUM_PAFS


def compute_input_size(orig_w, orig_h, img_size):
    """Network input size for an image (the reference's ``compute_optimal_size``).

    The short side becomes ``img_size``; the long side keeps the aspect ratio (rounded) and is
    rounded up to a multiple of the stride (8).

    Returns:
        (input_w, input_h) in pixels.
    """
    orig_w, orig_h, img_size = int(orig_w), int(orig_h), int(img_size)
    if orig_w <= 0 or orig_h <= 0 or img_size <= 0:
        raise ValueError(f"bad sizes: image {orig_w}x{orig_h}, img_size {img_size}")
    aspect = orig_h / orig_w
    if orig_h < orig_w:
        input_h = img_size
        input_w = round_up_to_stride(np.round(img_size / aspect))
    else:
        input_w = img_size
        input_h = round_up_to_stride(np.round(img_size * aspect))
    return input_w, input_h


def preprocess(image_bgr, input_size, input_scale=TRAINED_INPUT_SCALE):
    """Resize a BGR uint8 image to ``input_size`` = (W, H) and scale it for the network.

    Args:
        input_scale: the network's normalisation, ``pixel / input_scale - 0.5`` (255 for
            networks trained here, 256 for CMU's model; the checkpoint records it).

    Returns:
        (3, H, W) float32 (BGR channel order), in [-0.5, 0.5] for ``input_scale`` 255.
    """
    resized = cv2.resize(image_bgr, (int(input_size[0]), int(input_size[1])))
    return normalize_image(resized, input_scale)


def flip_maps(heatmaps, pafs):
    """Maps of the mirrored image turned into maps of the original image (and vice versa).

    Mirrors horizontally, swaps left/right heatmap channels (``FLIP_HEATMAP_CHANNELS``) and
    limbs (``FLIP_LIMBS``), and negates the PAF x components.

    Args:
        heatmaps: (..., 19, h, w); pafs: (..., 38, h, w), channels 2i, 2i+1 = x, y of limb i.

    Returns:
        (heatmaps, pafs) with the same shapes.
    """
    heatmaps = np.asarray(heatmaps)
    pafs = np.asarray(pafs)
    flipped_heat = heatmaps[..., list(FLIP_HEATMAP_CHANNELS), :, ::-1]
    limbs = pafs.reshape(pafs.shape[:-3] + (NUM_LIMBS, 2) + pafs.shape[-2:])
    limbs = limbs[..., list(FLIP_LIMBS), :, :, ::-1].copy()
    limbs[..., 0, :, :] *= -1
    return np.ascontiguousarray(flipped_heat), limbs.reshape(pafs.shape)


def resize_maps(maps, size):
    """Bilinear resize of (C, h, w) float32 maps to ``size`` = (w', h') (all channels at once)."""
    width, height = int(size[0]), int(size[1])
    if maps.shape[1:] == (height, width):
        return maps
    chunks = []
    for start in range(0, maps.shape[0], 256):  # OpenCV handles at most 512 channels
        part = np.ascontiguousarray(maps[start:start + 256].transpose(1, 2, 0))
        out = cv2.resize(part, (width, height), interpolation=cv2.INTER_LINEAR)
        chunks.append(out.reshape(height, width, -1).transpose(2, 0, 1))
    return np.ascontiguousarray(np.concatenate(chunks, axis=0))


class Predictor:
    """Image -> people, with optional multi-scale and flip averaging of the network maps.

    For each scale ``s`` the image is resized so that its short side is ``img_size * s``
    (rounded to a multiple of 8) and run through the network (with its mirror image in the same
    batch when ``flip``); every map set is resized to the map size of scale 1 and the sets are
    averaged. Scale 1 alone without flip is the reference's inference.

    Args:
        forward: callable, float32 (N, 3, H, W) -> numpy (pafs (N, 38, h, w),
            heatmaps (N, 19, h, w)).
        img_size: short side of the network input at scale 1 (``inference_img_size``).
        scales: scales to average over (``inference_scales`` when multi-scale is on).
        flip: also average with the mirrored image's maps.
        params: DecodeParams for the decoder (``DecodeParams.from_config(cfg)``; required).
        input_scale: image normalisation ``pixel / input_scale - 0.5`` (see :func:`preprocess`).
    """

    def __init__(self, forward, *, params, img_size=368, scales=(1.0,), flip=False,
                 input_scale=TRAINED_INPUT_SCALE):
        scales = tuple(float(s) for s in scales)
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive numbers, got {scales}")
        if int(img_size) < STRIDE:
            raise ValueError(f"img_size must be at least {STRIDE}, got {img_size}")
        self.forward = forward
        self.img_size = int(img_size)
        self.scales = scales
        self.flip = bool(flip)
        self.params = params
        self.input_scale = float(input_scale)

    def input_size(self, orig_w, orig_h, scale=1.0):
        """Network input (W, H) for an image at one scale (short side ``img_size * scale``,
        rounded to a multiple of 8 except at scale 1, which is exactly ``img_size``)."""
        side = self.img_size
        if scale != 1.0:
            side = max(STRIDE, int(round(self.img_size * scale / STRIDE)) * STRIDE)
        return compute_input_size(orig_w, orig_h, side)

    def _run(self, image_bgr, input_size):
        """Maps of one scale (averaged with the mirrored image when flip is on)."""
        x = preprocess(image_bgr, input_size, self.input_scale)
        batch = np.stack([x, x[:, :, ::-1]]) if self.flip else x[None]
        pafs, heatmaps = self.forward(np.ascontiguousarray(batch))
        pafs = np.asarray(pafs, dtype=np.float32)
        heatmaps = np.asarray(heatmaps, dtype=np.float32)
        if pafs.ndim != 4 or pafs.shape[1] != NUM_PAFS or heatmaps.ndim != 4 or \
                heatmaps.shape[1] != NUM_HEATMAPS or pafs.shape[0] != batch.shape[0]:
            raise ValueError(f"network returned pafs {pafs.shape} and heatmaps "
                             f"{heatmaps.shape}; expected (N, {NUM_PAFS}, h, w) and "
                             f"(N, {NUM_HEATMAPS}, h, w)")
        heat, paf = heatmaps[0], pafs[0]
        if self.flip:
            heat_m, paf_m = flip_maps(heatmaps[1], pafs[1])
            heat = (heat + heat_m) / 2
            paf = (paf + paf_m) / 2
        return heat, paf

    def predict_maps(self, image_bgr):
        """Averaged stride-8 maps of one image.

        Returns:
            heatmaps (19, h, w) float32, pafs (38, h, w) float32, and the scale-1 network input
            size (W, H) they belong to.
        """
        orig_h, orig_w = image_bgr.shape[:2]
        base_size = self.input_size(orig_w, orig_h)
        map_size = (base_size[0] // STRIDE, base_size[1] // STRIDE)
        heat_sum = paf_sum = None
        for scale in self.scales:
            heat, paf = self._run(image_bgr, self.input_size(orig_w, orig_h, scale))
            heat, paf = resize_maps(heat, map_size), resize_maps(paf, map_size)
            heat_sum = heat if heat_sum is None else heat_sum + heat
            paf_sum = paf if paf_sum is None else paf_sum + paf
        if len(self.scales) == 1:
            return heat_sum, paf_sum, base_size
        count = np.float32(len(self.scales))
        return heat_sum / count, paf_sum / count, base_size

    def __call__(self, image_bgr):
        """People of one BGR uint8 image: poses (N, 18, 3) in image pixels, scores (N,)."""
        poses, scores, _ = self.people(image_bgr)
        return poses, scores

    def people(self, image_bgr):
        """People of one BGR uint8 image with per-joint confidences: poses (N, 18, 3) in
        image pixels, scores (N,), confidences (N, 18) (see
        :func:`src.evaluate.decoder.decode_people`)."""
        image_bgr = np.asarray(image_bgr)
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3) BGR, got shape {image_bgr.shape}")
        heatmaps, pafs, input_size = self.predict_maps(image_bgr)
        orig_size = (image_bgr.shape[1], image_bgr.shape[0])
        return decode_people(heatmaps, pafs, input_size, orig_size, self.params)


class ForwardTimer:
    """A forward function that adds the seconds of each call to ``seconds``.

    The explicit timing hook of the evaluation: ``Predictor(ForwardTimer(forward), ...)`` times
    the network apart from reading, preprocessing and decoding.
    """

    def __init__(self, forward):
        self.forward = forward
        self.seconds = 0.0

    def __call__(self, batch):
        start = time.perf_counter()
        try:
            return self.forward(batch)
        finally:
            self.seconds += time.perf_counter() - start


def predictor_from_config(forward, cfg, input_scale=TRAINED_INPUT_SCALE, width_mult=1.0):
    """A Predictor with the config's ``inference_img_size``, ``multi_scale`` /
    ``inference_scales``, ``flip`` and decoder parameters, for a network that expects
    ``pixel / input_scale - 0.5`` (its checkpoint's record) and has ``width_mult``.

    Raises:
        src.runtime.memory.MemoryNeedError: the network input of the smallest image shape (a
        square one; the short side is ``inference_img_size`` x the largest scale) and the first
        VGG layer's two maps cannot fit in the available memory.
    """
    scales = tuple(cfg.inference_scales) if cfg.multi_scale else (1.0,)
    check_inference_memory(int(cfg.inference_img_size), scales, bool(cfg.flip), width_mult)
    return Predictor(forward, img_size=int(cfg.inference_img_size), scales=scales,
                     flip=bool(cfg.flip), params=DecodeParams.from_config(cfg),
                     input_scale=input_scale)


def check_inference_memory(img_size, scales, flip, width_mult=1.0):
    """Refuse an input size whose buffers cannot fit (:func:`src.runtime.memory.check_fits`).

    Counted (float32): the network input and the two maps of the first VGG layer
    (``scaled(64, width_mult)`` channels each) at full resolution, for a square image whose
    side is ``img_size`` x the largest scale (every image is resized to that short side, so
    none needs less), twice with ``flip``.
    """
    from src.model.network import scaled
    from src.runtime.memory import FLOAT32_BYTES, check_fits
    side = max(STRIDE, int(round(int(img_size) * max(scales))))
    batch = 2 if flip else 1
    per_pixel = FLOAT32_BYTES * (3 + 2 * scaled(64, width_mult))
    check_fits(batch * side * side * per_pixel,
               f"--inference_img_size {img_size} (network input {side}x{side} or larger"
               + (", with its mirror image" if flip else "") + ")",
               hint="use a smaller --inference_img_size (368 is the reference's)")


def mindspore_forward(network):
    """Wrap an ``OpenPoseNet`` (or ``FinalStage``) as a numpy forward function for Predictor.

    The network is put in inference mode; graph mode compiles once per input shape.
    """
    import mindspore as ms

    from src.model.network import FinalStage
    final = network if isinstance(network, FinalStage) else FinalStage(network)
    final.set_train(False)

    def forward(batch):
        pafs, heatmaps = final(ms.Tensor(np.ascontiguousarray(batch, dtype=np.float32)))
        return pafs.asnumpy(), heatmaps.asnumpy()

    return forward
