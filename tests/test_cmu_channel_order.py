"""Maps rendered in CMU's channel order, put through the converter's channel mapping, decode to
the same oracle AP as maps rendered in this repository's order; read without the mapping, they
do not."""
import numpy as np
import pytest

from src.data.targets import generate_heatmaps, generate_pafs
from src.data.toy_coco import make_split
from src.evaluate.coco_eval import evaluate_keypoints
from src.model.caffe_import import cmu_joint
from src.model.cmu_model import CMU_HEATMAP_NAMES, CMU_PAF_CHANNELS, CMU_PAIRS
from tests.cmu_files import maps_from_cmu
from tests.test_coco_eval import oracle_results

#: Our joint index of each of CMU's 18 parts (by name).
CMU_TO_OURS_JOINT = [int(cmu_joint(name)) for name in CMU_HEATMAP_NAMES[:18]]


def render_cmu(poses, map_h, map_w):
    """Heatmaps (19) and PAFs (38) as CMU's network lays them out: parts in CMU's order, limb k
    of CMU_PAIRS at PAF channels CMU_PAF_CHANNELS[2k] (x) and [2k + 1] (y)."""
    cmu_poses = np.asarray(poses)[:, CMU_TO_OURS_JOINT]
    heatmaps = generate_heatmaps(cmu_poses, map_h, map_w, 7)
    by_limb = generate_pafs(cmu_poses, map_h, map_w, 8, limbs=np.array(CMU_PAIRS))
    pafs = np.zeros_like(by_limb)
    pafs[list(CMU_PAF_CHANNELS)] = by_limb
    return heatmaps, pafs


def render_cmu_mapped(poses, map_h, map_w):
    """CMU-ordered maps put into our order by the converter's channel mapping."""
    return maps_from_cmu(*render_cmu(poses, map_h, map_w))


def render_cmu_limb_order(poses, map_h, map_w):
    """A wrong reading (control): CMU's limb k taken as our limb k, ignoring CMU's map index."""
    cmu_poses = np.asarray(poses)[:, CMU_TO_OURS_JOINT]
    return (generate_heatmaps(cmu_poses, map_h, map_w, 7),
            generate_pafs(cmu_poses, map_h, map_w, 8, limbs=np.array(CMU_PAIRS)))


@pytest.fixture(scope="module")
def toy_val(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    make_split(str(out), "val", 24, seed=0)
    return out / "annotations" / "person_keypoints_val2017.json"


def test_cmu_order_through_the_mapping_gives_our_oracle_ap(toy_val):
    ours = oracle_results(toy_val, img_size=240)
    mapped = oracle_results(toy_val, img_size=240, render=render_cmu_mapped)
    ap_ours = evaluate_keypoints(toy_val, ours)["AP"]
    ap_mapped = evaluate_keypoints(toy_val, mapped)["AP"]
    print(f"oracle AP: our order {ap_ours:.4f}, CMU order mapped {ap_mapped:.4f}")
    assert ap_ours >= 0.9
    assert mapped == ours and ap_mapped == ap_ours


def test_the_test_detects_a_wrong_order(toy_val):
    wrong = oracle_results(toy_val, img_size=240, render=render_cmu_limb_order)
    ap_wrong = evaluate_keypoints(toy_val, wrong)["AP"]
    ap_ours = evaluate_keypoints(toy_val, oracle_results(toy_val, img_size=240))["AP"]
    print(f"oracle AP with CMU's limb order read as ours: {ap_wrong:.4f}")
    assert ap_wrong < ap_ours - 0.3


def test_coco_sample_through_the_mapping(coco_sample_dir):
    ann = coco_sample_dir / "person_keypoints_sample.json"
    ours = evaluate_keypoints(ann, oracle_results(ann))["AP"]
    mapped = evaluate_keypoints(ann, oracle_results(ann, render=render_cmu_mapped))["AP"]
    print(f"COCO sample oracle AP: our order {ours:.4f}, CMU order mapped {mapped:.4f}")
    assert mapped == ours >= 0.9
