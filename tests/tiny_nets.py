"""A tiny network with OpenPoseNet's parameter names and outputs, for fast training tests, and
seeded weights for any network."""


def seed_weights(network, seed=0):
    """Set every parameter of ``network`` to He-scaled normal values from ``seed`` (float32):
    the same maps, with people in them, on every run."""
    import mindspore as ms
    import numpy as np
    rng = np.random.default_rng(seed)
    for param in network.get_parameters():
        fan_in = int(np.prod(param.shape[1:])) if len(param.shape) > 1 else 1
        param.set_data(ms.Tensor((rng.standard_normal(param.shape) * np.sqrt(2.0 / fan_in))
                                 .astype(np.float32)))
    return network


def tiny_pose_net(stages=2, seed=None):
    """OpenPoseNet-shaped toy: base.vgg_base / base.conv4_*_CPM / stage_1..2, stride 8.

    ``seed`` (optional) seeds MindSpore's initialisers first.
    """
    import mindspore as ms
    import mindspore.nn as nn
    import mindspore.ops as ops
    if seed is not None:
        ms.set_seed(seed)

    class Base(nn.Cell):
        def __init__(self):
            super().__init__()
            self.vgg_base = nn.SequentialCell([nn.Conv2d(3, 4, 3, stride=2, has_bias=True), nn.ReLU(),
                                               nn.Conv2d(4, 6, 3, stride=4, has_bias=True), nn.ReLU()])
            self.conv4_3_CPM = nn.Conv2d(6, 6, 3, has_bias=True)
            self.conv4_4_CPM = nn.Conv2d(6, 5, 1, has_bias=True)

        def construct(self, x):
            return ops.relu(self.conv4_4_CPM(ops.relu(self.conv4_3_CPM(self.vgg_base(x)))))

    class Stage(nn.Cell):
        def __init__(self, cin):
            super().__init__()
            self.conv1_L1 = nn.Conv2d(cin, 38, 3, has_bias=True)
            self.conv1_L2 = nn.Conv2d(cin, 19, 3, has_bias=True)

        def construct(self, x):
            return self.conv1_L1(x), self.conv1_L2(x)

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.base = Base()
            self.stage_1 = Stage(5)
            self.stage_2 = Stage(5 + 38 + 19)
            self.concat = ops.Concat(axis=1)

        def construct(self, x):
            feat = self.base(x)
            paf1, heat1 = self.stage_1(feat)
            paf2, heat2 = self.stage_2(self.concat((paf1, heat1, feat)))
            return (paf1, paf2), (heat1, heat2)

    assert stages == 2
    return Net()
