"""OpenPose loss: equals a NumPy computation, and masked pixels get no gradient."""
import numpy as np

from src.model.loss import OpenPoseLoss

STAGES = 3


def openpose_loss_numpy(pafs_stages, heatmaps_stages, gt_pafs, gt_heatmaps, ignore_mask):
    """NumPy version of :class:`OpenPoseLoss` (float64), the oracle of these tests.

    Args: as :class:`OpenPoseLoss`, numpy arrays. Returns ``(total, paf_losses (S,),
    heatmap_losses (S,))``.
    """
    mask = np.asarray(ignore_mask, np.float64)[:, None]
    paf_losses = np.array([np.mean((np.asarray(p, np.float64) - gt_pafs) ** 2 * mask)
                           for p in pafs_stages])
    heatmap_losses = np.array([np.mean((np.asarray(h, np.float64) - gt_heatmaps) ** 2 * mask)
                               for h in heatmaps_stages])
    return paf_losses.sum() + heatmap_losses.sum(), paf_losses, heatmap_losses


def _inputs(seed=0, n=2, h=5, w=6):
    rng = np.random.default_rng(seed)
    pafs = [rng.standard_normal((n, 38, h, w)).astype(np.float32) for _ in range(STAGES)]
    heats = [rng.standard_normal((n, 19, h, w)).astype(np.float32) for _ in range(STAGES)]
    gt_paf = rng.standard_normal((n, 38, h, w)).astype(np.float32)
    gt_heat = rng.uniform(0, 1, (n, 19, h, w)).astype(np.float32)
    mask = (rng.uniform(0, 1, (n, h, w)) > 0.3).astype(np.float32)
    return pafs, heats, gt_paf, gt_heat, mask


def _tensors(arrays):
    import mindspore as ms
    return tuple(ms.Tensor(a) for a in arrays)


def test_loss_matches_numpy(ms_cpu):
    import mindspore as ms
    pafs, heats, gt_paf, gt_heat, mask = _inputs()
    total, paf_l, heat_l = OpenPoseLoss()(_tensors(pafs), _tensors(heats), ms.Tensor(gt_paf),
                                          ms.Tensor(gt_heat), ms.Tensor(mask))
    ref_total, ref_paf, ref_heat = openpose_loss_numpy(pafs, heats, gt_paf, gt_heat, mask)
    np.testing.assert_allclose(paf_l.asnumpy(), ref_paf, rtol=1e-5)
    np.testing.assert_allclose(heat_l.asnumpy(), ref_heat, rtol=1e-5)
    np.testing.assert_allclose(float(total.asnumpy()), ref_total, rtol=1e-5)
    # the numpy reference itself, written out for one stage: mean over every element (masked
    # ones included in the count) of the masked squared error
    by_hand = ((pafs[1] - gt_paf) ** 2 * mask[:, None]).sum() / pafs[1].size
    np.testing.assert_allclose(ref_paf[1], by_hand, rtol=1e-6)
    assert paf_l.shape == (STAGES,) and heat_l.shape == (STAGES,)


def test_all_masked_loss_is_zero(ms_cpu):
    import mindspore as ms
    pafs, heats, gt_paf, gt_heat, mask = _inputs(1)
    total, _, _ = OpenPoseLoss()(_tensors(pafs), _tensors(heats), ms.Tensor(gt_paf),
                                 ms.Tensor(gt_heat), ms.Tensor(np.zeros_like(mask)))
    assert float(total.asnumpy()) == 0.0


def test_masked_pixels_get_zero_gradient(ms_cpu):
    import mindspore as ms
    pafs, heats, gt_paf, gt_heat, mask = _inputs(2)
    criterion = OpenPoseLoss()
    # the targets become Tensors here, outside the function that graph mode compiles (MindSpore
    # 2.0 cannot build a Tensor from a captured numpy array inside a compiled function)
    gt_paf_t, gt_heat_t, mask_t = ms.Tensor(gt_paf), ms.Tensor(gt_heat), ms.Tensor(mask)

    def total_loss(paf0, paf1, paf2, heat0, heat1, heat2):
        total, _, _ = criterion((paf0, paf1, paf2), (heat0, heat1, heat2), gt_paf_t, gt_heat_t, mask_t)
        return total

    grads = ms.grad(total_loss, grad_position=(0, 1, 2, 3, 4, 5))(*_tensors(pafs + heats))
    preds = pafs + heats
    targets = [gt_paf] * STAGES + [gt_heat] * STAGES
    for grad, pred, target in zip(grads, preds, targets):
        grad = grad.asnumpy()
        ignored = np.broadcast_to(mask[:, None] == 0, grad.shape)
        assert np.all(grad[ignored] == 0.0)
        expected = 2.0 * (pred - target) * mask[:, None] / pred.size
        np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-9)
        assert np.abs(grad[~ignored]).max() > 0
