"""The OpenPose network: VGG19 front end, CPM convs and 6 two-branch refinement stages.

Parameter names and shapes are those of the reference (``base.vgg_base.layers.N``,
``base.conv4_3_CPM``, ``stage_1.conv1_CPM_L1`` ... ``stage_6.conv7_L2``), so reference checkpoints
load without renaming. Branch L1 predicts the 38 PAF channels, branch L2 the 19 heatmaps; the
output stride is 8, so an input (N, 3, H, W) with H, W divisible by 8 gives maps of
(N, C, H / 8, W / 8).
"""
import mindspore.nn as nn
import mindspore.ops as ops

from src.compat import conv2d_init
from src.skeleton import NUM_HEATMAPS, NUM_PAFS

#: VGG19's first 10 conv layers ('M' = 2x2 max pooling), the reference backbone.
VGG19_FRONT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512)
FEATURE_CHANNELS = 128
NUM_STAGES = 6


def scaled(channels, width_mult):
    """Channel count scaled by ``width_mult`` (at least 8); exact when width_mult is 1."""
    return channels if width_mult == 1 else max(8, int(round(channels * width_mult)))


def _conv(in_channels, out_channels, kernel_size):
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, pad_mode="same", has_bias=True,
                     **conv2d_init(in_channels, kernel_size))


class Vgg(nn.Cell):
    """VGG feature layers as one SequentialCell named ``layers`` (indices as in the reference)."""

    def __init__(self, cfg=VGG19_FRONT, batch_norm=False, width_mult=1.0):
        super().__init__()
        layers = []
        in_channels = 3
        for value in cfg:
            if value == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, pad_mode="same"))
                continue
            value = scaled(value, width_mult)
            layers.append(_conv(in_channels, value, 3))
            if batch_norm:
                layers.append(nn.BatchNorm2d(value))
            layers.append(nn.ReLU())
            in_channels = value
        self.layers = nn.SequentialCell(layers)

    def construct(self, x):
        return self.layers(x)


class BaseModel(nn.Cell):
    """VGG19 front end + conv4_3_CPM (512->256) + conv4_4_CPM (256->128), all with ReLU."""

    def __init__(self, vgg_with_bn=False, width_mult=1.0):
        super().__init__()
        self.vgg_base = Vgg(VGG19_FRONT, batch_norm=vgg_with_bn, width_mult=width_mult)
        self.conv4_3_CPM = _conv(scaled(512, width_mult), scaled(256, width_mult), 3)
        self.conv4_4_CPM = _conv(scaled(256, width_mult), scaled(FEATURE_CHANNELS, width_mult), 3)
        self.relu = nn.ReLU()

    def construct(self, x):
        x = self.vgg_base(x)
        x = self.relu(self.conv4_3_CPM(x))
        return self.relu(self.conv4_4_CPM(x))


class _TwoBranchStage(nn.Cell):
    """A stage of two conv branches on one input: L1 gives the PAFs, L2 the heatmaps.

    Each conv is an attribute with the reference's name (``name_format`` with ``index`` from 1 and
    ``branch`` L1/L2), which names its parameters; each branch is also kept as a tuple (a tuple
    registers nothing) that ``construct`` loops over: ReLU after every conv but the last.
    """

    def __init__(self, hidden_specs, name_format):
        super().__init__()
        branches = []
        for branch, out_channels in (("L1", NUM_PAFS), ("L2", NUM_HEATMAPS)):
            specs = tuple(hidden_specs) + ((hidden_specs[-1][1], out_channels, 1),)
            convs = []
            for index, (cin, cout, kernel) in enumerate(specs, start=1):
                convs.append(_conv(cin, cout, kernel))
                setattr(self, name_format.format(index=index, branch=branch), convs[-1])
            branches.append(tuple(convs))
        self.paf_convs, self.heatmap_convs = branches
        self.relu = nn.ReLU()

    def construct(self, x):
        pafs = x
        for conv in self.paf_convs[:-1]:
            pafs = self.relu(conv(pafs))
        heatmaps = x
        for conv in self.heatmap_convs[:-1]:
            heatmaps = self.relu(conv(heatmaps))
        return self.paf_convs[-1](pafs), self.heatmap_convs[-1](heatmaps)


class Stage1(_TwoBranchStage):
    """First stage: per branch three 3x3 convs (128), a 1x1 to 512, a 1x1 to the outputs."""

    def __init__(self, width_mult=1.0):
        feat, mid, wide = (scaled(c, width_mult) for c in (FEATURE_CHANNELS, 128, 512))
        super().__init__(((feat, mid, 3), (mid, mid, 3), (mid, mid, 3), (mid, wide, 1)),
                         "conv{index}_CPM_{branch}")


class StageN(_TwoBranchStage):
    """Refinement stage: per branch five 7x7 convs (128), a 1x1 (128), a 1x1 to the outputs.

    Input: concat(previous PAFs, previous heatmaps, features) = 38 + 19 + 128 = 185 channels.
    """

    def __init__(self, width_mult=1.0):
        mid = scaled(128, width_mult)
        in_channels = NUM_PAFS + NUM_HEATMAPS + scaled(FEATURE_CHANNELS, width_mult)
        super().__init__(((in_channels, mid, 7),) + ((mid, mid, 7),) * 4 + ((mid, mid, 1),),
                         "conv{index}_{branch}")


class OpenPoseNet(nn.Cell):
    """OpenPose body network (Cao et al. 2017, 6 stages).

    Input: (N, 3, H, W) float32 image in [-0.5, 0.5], H and W divisible by 8.
    Output: ``(pafs, heatmaps)``, tuples of the stages' maps (6 by default), (N, 38, H/8, W/8)
    and (N, 19, H/8, W/8). The constructor does no file I/O: load weights with src.model.checkpoint.

    Args:
        vgg_with_bn: BatchNorm after each VGG conv (the reference's option).
        width_mult: scales every hidden channel count (1.0 = the reference network; smaller
            values make the fast toy networks of the quickstart).
        num_stages: number of stages, 1 to 6 (6 = the reference).
    """

    def __init__(self, vgg_with_bn=False, width_mult=1.0, num_stages=NUM_STAGES):
        super().__init__()
        if not 1 <= int(num_stages) <= NUM_STAGES:
            raise ValueError(f"num_stages must be 1..{NUM_STAGES}, got {num_stages}")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        self.vgg_with_bn = bool(vgg_with_bn)
        self.width_mult = float(width_mult)
        self.num_stages = int(num_stages)
        self.base = BaseModel(vgg_with_bn=vgg_with_bn, width_mult=width_mult)
        self.stage_1 = Stage1(width_mult)
        for index in range(2, self.num_stages + 1):
            setattr(self, f"stage_{index}", StageN(width_mult))
        # a tuple registers nothing (the attributes above name the parameters); graph mode
        # unrolls the loop over it, so only the stages that exist are compiled
        self.refinement_stages = tuple(getattr(self, f"stage_{index}")
                                       for index in range(2, self.num_stages + 1))
        self.concat = ops.Concat(axis=1)

    def construct(self, x):
        features = self.base(x)
        paf, heat = self.stage_1(features)
        pafs = (paf,)
        heatmaps = (heat,)
        for stage in self.refinement_stages:
            paf, heat = stage(self.concat((paf, heat, features)))
            pafs = pafs + (paf,)
            heatmaps = heatmaps + (heat,)
        return pafs, heatmaps


class FinalStage(nn.Cell):
    """Wraps an OpenPoseNet to return only the last stage's ``(pafs, heatmaps)``.

    Used for inference and export (MindSpore's ONNX exporter cannot emit the list output).
    Its parameters keep the wrapped network's names (``auto_prefix=False``).
    """

    def __init__(self, network):
        super().__init__(auto_prefix=False)
        self.network = network

    def construct(self, x):
        pafs, heatmaps = self.network(x)
        return pafs[-1], heatmaps[-1]
