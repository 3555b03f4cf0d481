"""Training / validation datasets: sources, sampler, and the MindSpore pipelines."""
import pickle
import subprocess
import sys

import numpy as np
import pytest

from src.config import default_config
from src.data.augment import AugmentParams
from src.data.pipeline import EpochShardSampler, TrainDataParams, TrainSource, build_train_records, create_dataset
from src.data.toy_coco import ToyOptions, make_toy_coco
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy_ds")
    make_toy_coco(out, num_train=9, num_val=3, seed=1, options=ToyOptions(size=96))
    from src.data.ignore_mask import generate_split
    generate_split(str(out / "annotations" / "person_keypoints_train2017.json"),
                   str(out / "train2017"), "train", progress=False)
    return {"json": str(out / "annotations" / "person_keypoints_train2017.json"),
            "images": str(out / "train2017"), "masks": str(out / "ignore_mask_train"),
            "val_json": str(out / "annotations" / "person_keypoints_val2017.json"),
            "val_images": str(out / "val2017")}


#: default_config.yaml's data settings at a 64-pixel input.
CFG = default_config(insize=64)
#: The sample settings of CFG (TrainDataParams' fields).
SAMPLES = dict(aug=AugmentParams.from_config(CFG), heatmap_sigma=CFG.heatmap_sigma,
               paf_sigma=CFG.paf_sigma, min_keypoints=CFG.min_keypoints, min_area=CFG.min_area)


@pytest.fixture(scope="module")
def source(toy):
    records = build_train_records(toy["json"], toy["images"], toy["masks"])
    return TrainSource(records, SAMPLES["aug"], CFG.heatmap_sigma, CFG.paf_sigma, seed=5)


def _check_sample(image, pafs, heatmaps, loss, insize=64):
    size = insize // 8
    assert image.shape == (3, insize, insize) and pafs.shape == (38, size, size)
    assert heatmaps.shape == (19, size, size) and loss.shape == (size, size)
    assert all(a.dtype == np.float32 for a in (image, pafs, heatmaps, loss))
    assert -0.5 <= image.min() and image.max() <= 0.5
    assert np.abs(pafs).max() <= 1 + 1e-6
    assert 0 <= heatmaps.min() and heatmaps.max() <= 1 + 1e-6
    assert 0 <= loss.min() and loss.max() <= 1


def test_source_samples_are_reproducible(source):
    n = len(source)
    first = source[2]
    _check_sample(*first)
    again = source[2]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    next_epoch = source[n + 2]
    assert not np.array_equal(first[0], next_epoch[0])
    clone = pickle.loads(pickle.dumps(source))
    assert all(np.array_equal(a, b) for a, b in zip(first, clone[2]))
    assert first[2][:18].max() > 0.5                     # some joint is in the crop


def test_ignore_mask_reaches_the_loss_mask(source, tmp_path):
    from dataclasses import replace

    import cv2
    record = source.records[0]
    height, width = cv2.imread(record.image_path).shape[:2]
    mask_file = tmp_path / "all.png"
    cv2.imwrite(str(mask_file), np.full((height, width), 255, np.uint8))
    sigmas = (source.heatmap_sigma, source.paf_sigma)
    masked = TrainSource([replace(record, mask_path=str(mask_file))], source.params, *sigmas, seed=5)
    unmasked = TrainSource([replace(record, mask_path="")], source.params, *sigmas, seed=5)
    loss = masked[0][3]
    assert loss.min() == 0 and loss.mean() < 0.5
    assert np.all(unmasked[0][3] == 1)
    assert np.array_equal(masked[0][2], unmasked[0][2])       # same augmentation


def test_sampler_shuffles_shards_and_counts_epochs():
    shards = [EpochShardSampler(10, rank, 3, shuffle=True, seed=1) for rank in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    epoch0 = [list(iter(s)) for s in shards]
    covered = sorted(i for shard in epoch0 for i in shard)
    assert set(covered) == set(range(10)) and len(covered) == 12   # padded by 2
    epoch1 = list(iter(shards[0]))
    assert all(10 <= i < 20 for i in epoch1)                      # epoch 1 is encoded
    single = EpochShardSampler(10, shuffle=True, seed=1)
    assert sorted(single.indices(1)) == list(range(10))
    assert list(single.indices(1)) != list(single.indices(0))        # reshuffled
    # Creating an iterator without consuming it does not advance the epoch.
    sampler = EpochShardSampler(5, shuffle=False)
    unused = iter(sampler)
    assert list(iter(sampler)) == [0, 1, 2, 3, 4]
    del unused
    assert list(EpochShardSampler(5, 1, 2, shuffle=False, pad=False,
                                  encode_epoch=False)) == [1, 3]
    with pytest.raises(ValueError):
        EpochShardSampler(5, 2, 2)


def test_two_worker_pipeline(toy, source):
    dataset = create_dataset(TrainDataParams(toy["json"], toy["images"], toy["masks"], batch_size=2,
                                             **SAMPLES, num_workers=2), shuffle=True, seed=5)
    assert dataset.get_dataset_size() == len(source) // 2
    assert dataset.get_col_names() == ["image", "pafs", "heatmaps", "ignore_mask"]
    batches = list(dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(batches) == len(source) // 2
    for image, pafs, heatmaps, loss in batches:
        assert image.shape[0] == 2
        for k in range(2):
            _check_sample(image[k], pafs[k], heatmaps[k], loss[k])
    # Same samples as the source computes directly (worker count does not matter).
    order = EpochShardSampler(len(source), shuffle=True, seed=5).indices(0)
    expected = source[int(order[0])]
    assert all(np.array_equal(a[0], b) for a, b in zip(batches[0], expected))


#: A training process that used multi-threaded OpenCV (validation resizes COCO-sized maps)
#: and then starts the next epoch's worker processes (forked).
_FORK_AFTER_OPENCV = """
import sys
import cv2
import numpy as np
from src.config import default_config
from src.data.augment import AugmentParams
from src.data.pipeline import TrainDataParams, create_dataset
json_path, images, masks = sys.argv[1:4]
big = np.random.default_rng(0).random((1500, 1500), dtype=np.float32)
for _ in range(3):
    cv2.resize(big, (2500, 2500))      # large enough for OpenCV's thread pool
cfg = default_config(insize=64)
dataset = create_dataset(TrainDataParams(json_path, images, masks, batch_size=2,
                                         aug=AugmentParams.from_config(cfg),
                                         heatmap_sigma=cfg.heatmap_sigma, paf_sigma=cfg.paf_sigma,
                                         min_keypoints=cfg.min_keypoints, min_area=cfg.min_area,
                                         num_workers=2))
batch = next(dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))
print("batch", batch[0].shape)
"""


def test_workers_start_after_multithreaded_opencv_in_the_parent(toy):
    """Forked workers hung in their first OpenCV call once the parent had run OpenCV's thread
    pool (training stalled in the epoch after a validation)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _FORK_AFTER_OPENCV, toy["json"], toy["images"],
                               toy["masks"]], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=240, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("the two-worker pipeline produced no batch within 240 s after the parent used "
                    "multi-threaded OpenCV (forked workers hang in OpenCV)")
    assert proc.returncode == 0 and "batch (2, 3, 64, 64)" in proc.stdout, proc.stderr[-2000:]


def test_sharded_sizes(toy):
    params = TrainDataParams(toy["json"], toy["images"], toy["masks"], batch_size=1, **SAMPLES,
                             num_workers=1)
    sizes = [create_dataset(params, rank=r, group_size=2).get_dataset_size() for r in range(2)]
    n = len(build_train_records(toy["json"], toy["images"], toy["masks"]))
    assert sizes == [(n + 1) // 2] * 2
