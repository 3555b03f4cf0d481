"""OpenPose training loss (the reference's masked mean-squared error over all stages).

For every stage ``t`` of the network and both branches,

    loss_t = mean over (N, C, H, W) of (pred_t - target) ** 2 * mask

where ``mask`` is the (N, H, W) ignore mask (1 = use the pixel, 0 = ignore it) broadcast over the
channels. The mean divides by *all* elements, masked ones included (as the reference does), so
the loss of a batch does not depend on how much of it is masked out beyond zeroing those terms.
The total loss is the sum of the PAF and heatmap terms of all stages.
"""

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import dtype as mstype


def masked_mse(pred, target, mask):
    """Mean over all elements of ``(pred - target)^2 * mask``.

    Args:
        pred: (N, C, H, W) tensor.
        target: (N, C, H, W) tensor.
        mask: (N, 1, H, W) tensor (broadcast over C), 1 = use, 0 = ignore.

    Returns:
        A float32 scalar tensor.
    """
    diff = ops.cast(pred, mstype.float32) - target
    return ops.mean(diff * diff * mask)


class OpenPoseLoss(nn.Cell):
    """Sum over stages of the masked MSE of PAFs and heatmaps.

    Inputs:
        pafs_stages: tuple of S tensors (N, 38, h, w), the network's PAF outputs.
        heatmaps_stages: tuple of S tensors (N, 19, h, w), the network's heatmap outputs.
        gt_pafs: (N, 38, h, w) float32 target PAFs.
        gt_heatmaps: (N, 19, h, w) float32 target heatmaps.
        ignore_mask: (N, h, w) float32, 1 = use the pixel, 0 = ignore it.

    Outputs:
        ``(total, paf_losses, heatmap_losses)``: float32 scalar, and two (S,) float32 tensors of
        the per-stage terms (for logging). Predictions are cast to float32 first, so the loss
        stays in float32 under mixed precision.
    """

    def construct(self, pafs_stages, heatmaps_stages, gt_pafs, gt_heatmaps, ignore_mask):
        mask = ops.stop_gradient(ops.expand_dims(ops.cast(ignore_mask, mstype.float32), 1))
        gt_pafs = ops.stop_gradient(ops.cast(gt_pafs, mstype.float32))
        gt_heatmaps = ops.stop_gradient(ops.cast(gt_heatmaps, mstype.float32))
        paf_losses = ()
        heatmap_losses = ()
        for paf, heatmap in zip(pafs_stages, heatmaps_stages):
            paf_losses = paf_losses + (masked_mse(paf, gt_pafs, mask),)
            heatmap_losses = heatmap_losses + (masked_mse(heatmap, gt_heatmaps, mask),)
        paf_stack = ops.stack(paf_losses)
        heatmap_stack = ops.stack(heatmap_losses)
        total = ops.sum(paf_stack) + ops.sum(heatmap_stack)
        return total, paf_stack, heatmap_stack


class NetWithLoss(nn.Cell):
    """The network followed by :class:`OpenPoseLoss`.

    Built with ``auto_prefix=False`` so the parameters keep the network's own names
    (``base.vgg_base.layers.0.weight`` ...), which is what our checkpoints store.

    Inputs: image (N, 3, H, W) float32, gt_pafs (N, 38, H/8, W/8), gt_heatmaps (N, 19, H/8, W/8),
    ignore_mask (N, H/8, W/8). Outputs: as :class:`OpenPoseLoss`.
    """

    def __init__(self, network, criterion=None):
        super().__init__(auto_prefix=False)
        self.network = network
        self.criterion = criterion if criterion is not None else OpenPoseLoss()

    def construct(self, image, gt_pafs, gt_heatmaps, ignore_mask):
        pafs_stages, heatmaps_stages = self.network(image)
        return self.criterion(pafs_stages, heatmaps_stages, gt_pafs, gt_heatmaps, ignore_mask)
