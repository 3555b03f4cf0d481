"""Facts about CMU's COCO body model (``pose_deploy_linevec.prototxt``, ``pose_iter_440000``).

Layer list, from CMU's public deploy prototxt (openpose ``models/pose/coco``): VGG19's first
10 convs ``conv1_1`` ... ``conv4_2`` (3x3, max pooling 2x2/2 after ``conv1_2``, ``conv2_2``,
``conv3_4``), ``conv4_3_CPM`` (3x3, 256), ``conv4_4_CPM`` (3x3, 128); stage 1 per branch b:
``conv5_{1..3}_CPM_L{b}`` (3x3, 128), ``conv5_4_CPM_L{b}`` (1x1, 512), ``conv5_5_CPM_L{b}``
(1x1, 38 for L1 / 19 for L2); stages t = 2..6: ``concat_stage{t}`` = (last L1, last L2,
``conv4_4_CPM``) then per branch ``Mconv{1..5}_stage{t}_L{b}`` (7x7, 128), ``Mconv6`` (1x1,
128), ``Mconv7`` (1x1, 38 / 19). ReLU after every conv except the last of each branch. The
deploy net ends with ``concat_stage7`` = (``Mconv7_stage6_L2``, ``Mconv7_stage6_L1``) ->
``net_output`` (N, 57, H/8, W/8): heatmaps 0-18, then PAFs. L1 = PAFs, L2 = heatmaps.

Channel order, from CMU's openpose source (``poseParameters.cpp``): the 19 heatmaps are
:data:`CMU_HEATMAP_NAMES`; limb k joins joints ``CMU_PAIRS[k]`` (direction first -> second) and
its PAF x / y are PAF channels ``CMU_PAF_CHANNELS[2k]`` / ``[2k + 1]`` (CMU's COCO
``POSE_MAP_INDEX``; older releases list them as ``POSE_COCO_MAP_IDX`` = these + 19, indices into
``net_output``). CMU's parser scores limb k with ``x * dx + y * dy`` along joint A -> joint B.

Input: BGR, ``pixel / 256 - 0.5`` (:data:`CMU_INPUT_SCALE`).
"""
from collections import namedtuple

CMU_INPUT_SCALE = 256.0
CMU_NUM_STAGES = 6
CMU_HEATMAP_NAMES = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow",
                     "LWrist", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye",
                     "LEye", "REar", "LEar", "Background")
#: CMU's COCO body part pairs (joint indices in CMU_HEATMAP_NAMES order), limb by limb.
CMU_PAIRS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
             (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17))
#: PAF channel (0..37) of the x and y component of each CMU limb, flattened (x0, y0, x1, y1, ...).
CMU_PAF_CHANNELS = (12, 13, 20, 21, 14, 15, 16, 17, 22, 23, 24, 25, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                    10, 11, 28, 29, 30, 31, 34, 35, 32, 33, 36, 37, 18, 19, 26, 27)
CMU_VGG_NAMES = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
                 "conv3_4", "conv4_1", "conv4_2")
CMU_VGG_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512)
#: Output channels of branch L1 (PAFs) and L2 (heatmaps).
BRANCH_OUTPUTS = {"L1": 38, "L2": 19}
#: The deploy net's final blob and the last stage's two branch outputs.
NET_OUTPUT = "net_output"
INPUT_BLOB = "image"

Conv = namedtuple("Conv", "name bottom out_channels kernel relu")
Pool = namedtuple("Pool", "name bottom")
Concat = namedtuple("Concat", "name bottoms")


def last_conv(stage, branch):
    """Name of the last conv of ``branch`` ('L1' or 'L2') in ``stage`` (1..6)."""
    return f"conv5_5_CPM_{branch}" if stage == 1 else f"Mconv7_stage{stage}_{branch}"


def cmu_layers(num_stages=CMU_NUM_STAGES):
    """CMU's deploy network as a list of Conv / Pool / Concat, in prototxt order.

    Each layer's top has the layer's name (ReLUs are in place, given by ``Conv.relu``).
    """
    layers, bottom = [], INPUT_BLOB
    pools = {"conv1_2": "pool1_stage1", "conv2_2": "pool2_stage1", "conv3_4": "pool3_stage1"}
    for name, width in zip(CMU_VGG_NAMES, CMU_VGG_WIDTHS):
        layers.append(Conv(name, bottom, width, 3, True))
        bottom = name
        if name in pools:
            layers.append(Pool(pools[name], bottom))
            bottom = pools[name]
    layers.append(Conv("conv4_3_CPM", bottom, 256, 3, True))
    layers.append(Conv("conv4_4_CPM", "conv4_3_CPM", 128, 3, True))
    for branch, outputs in BRANCH_OUTPUTS.items():
        specs = ((128, 3), (128, 3), (128, 3), (512, 1), (outputs, 1))
        previous = "conv4_4_CPM"
        for index, (width, kernel) in enumerate(specs, start=1):
            name = f"conv5_{index}_CPM_{branch}"
            layers.append(Conv(name, previous, width, kernel, index < len(specs)))
            previous = name
    for stage in range(2, num_stages + 1):
        concat = f"concat_stage{stage}"
        layers.append(Concat(concat, (last_conv(stage - 1, "L1"), last_conv(stage - 1, "L2"),
                                      "conv4_4_CPM")))
        for branch, outputs in BRANCH_OUTPUTS.items():
            specs = ((128, 7),) * 5 + ((128, 1), (outputs, 1))
            previous = concat
            for index, (width, kernel) in enumerate(specs, start=1):
                name = f"Mconv{index}_stage{stage}_{branch}"
                layers.append(Conv(name, previous, width, kernel, index < len(specs)))
                previous = name
    layers.append(Concat(f"concat_stage{num_stages + 1}",
                         (last_conv(num_stages, "L2"), last_conv(num_stages, "L1"))))
    return layers


def conv_weight_shapes(layers):
    """``{conv name: ((out, in, k, k), (out,))}``: Caffe's blob shapes, inputs traced through the
    pools and concats of ``layers``."""
    channels, shapes = {INPUT_BLOB: 3}, {}
    for layer in layers:
        if isinstance(layer, Conv):
            cin = channels[layer.bottom]
            shapes[layer.name] = ((layer.out_channels, cin, layer.kernel, layer.kernel),
                                  (layer.out_channels,))
            channels[layer.name] = layer.out_channels
        elif isinstance(layer, Pool):
            channels[layer.name] = channels[layer.bottom]
        else:
            channels[layer.name] = sum(channels[b] for b in layer.bottoms)
    return shapes


def vgg_layer_indices():
    """Index of each VGG conv in our ``base.vgg_base.layers`` (no BatchNorm: conv, ReLU, pools)."""
    from src.model.network import VGG19_FRONT
    indices, position = [], 0
    for value in VGG19_FRONT:
        if value == "M":
            position += 1
            continue
        indices.append(position)
        position += 2
    return indices


def our_layer_name(cmu_name):
    """Our network's cell name for a CMU conv.

    ``conv1_1`` -> ``base.vgg_base.layers.0``, ``conv5_3_CPM_L2`` -> ``stage_1.conv3_CPM_L2``,
    ``Mconv7_stage6_L1`` -> ``stage_6.conv7_L1``.
    """
    if cmu_name in CMU_VGG_NAMES:
        return f"base.vgg_base.layers.{vgg_layer_indices()[CMU_VGG_NAMES.index(cmu_name)]}"
    if cmu_name in ("conv4_3_CPM", "conv4_4_CPM"):
        return f"base.{cmu_name}"
    if cmu_name.startswith("conv5_"):
        index, _, branch = cmu_name[len("conv5_"):].split("_")
        return f"stage_1.conv{index}_CPM_{branch}"
    if cmu_name.startswith("Mconv"):
        index, stage, branch = cmu_name[len("Mconv"):].split("_")
        return f"stage_{int(stage[len('stage'):])}.conv{index}_{branch}"
    raise KeyError(cmu_name)
