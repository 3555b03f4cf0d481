import numpy as np

from src import skeleton as sk


def test_table_sizes():
    assert sk.NUM_JOINTS == 18 and sk.NUM_HEATMAPS == 19
    assert sk.NUM_LIMBS == 19 and sk.NUM_PAFS == 38
    assert sk.LIMB_ARRAY.shape == (19, 2)
    assert sorted(int(j) for j in sk.COCO_TO_OURS) == sorted(set(range(18)) - {int(sk.Joint.NECK)})


def test_reference_orders():
    # reference eval writes our joints to COCO with this index list (neck dropped)
    assert [int(j) for j in sk.COCO_TO_OURS] == [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]
    assert sk.LIMB_ARRAY[0].tolist() == [1, 8] and sk.LIMB_ARRAY[-1].tolist() == [15, 17]
    assert [sk.LIMB_ARRAY[i].tolist() for i in sk.EAR_SHOULDER_LIMBS] == [[2, 16], [5, 17]]


def test_flip_permutations_are_involutions():
    joints = np.array(sk.FLIP_JOINTS)
    assert (joints[joints] == np.arange(18)).all()
    limbs = np.array(sk.FLIP_LIMBS)
    assert (limbs[limbs] == np.arange(19)).all()
    for i, j in enumerate(limbs):
        a, b = sk.LIMB_ARRAY[i]
        assert sk.LIMB_ARRAY[j].tolist() == [sk.FLIP_JOINTS[a], sk.FLIP_JOINTS[b]]
    assert sk.FLIP_HEATMAP_CHANNELS[-1] == 18


def test_coco_round_trip_and_neck():
    rng = np.random.default_rng(0)
    coco = np.concatenate([rng.integers(0, 300, (3, 17, 2)), rng.integers(0, 3, (3, 17, 1))], axis=2)
    coco[0, 5:7, 2] = 2  # both shoulders labelled
    coco[1, 5, 2] = 0    # left shoulder missing
    ours = sk.coco_to_ours(coco)
    assert ours.shape == (3, 18, 3)
    np.testing.assert_array_equal(sk.ours_to_coco(ours), coco)
    neck = ours[0, sk.Joint.NECK]
    assert neck[2] == 2
    assert neck[0] == int((coco[0, 5, 0] + coco[0, 6, 0]) / 2)
    assert neck[1] == int((coco[0, 5, 1] + coco[0, 6, 1]) / 2)
    assert (ours[1, sk.Joint.NECK] == 0).all()
