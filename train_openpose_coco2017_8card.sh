#!/bin/bash
# Train OpenPose on COCO 2017 on 8 devices with OpenMPI (the reference's 8-card recipe, whose
# published result is AP 0.3979 on val2017).
#
#   bash train_openpose_coco2017_8card.sh [IMGPATH_TRAIN JSONPATH_TRAIN MASKPATH_TRAIN VGG_PATH] [train.py args...]
#
# Without the four paths they come from the environment, defaulting to the reference layout:
#   COCO_DIR        /home/coco2017
#   IMGPATH_TRAIN   $COCO_DIR/train2017
#   JSONPATH_TRAIN  $COCO_DIR/annotations/person_keypoints_train2017.json
#   MASKPATH_TRAIN  $COCO_DIR/ignore_mask_train   (make it with scripts/gen_ignore_mask.py)
#   VGG_PATH        /home/vgg19-0-97_5004.ckpt    ("none": random VGG)
# Further arguments (those starting with --) go to train.py.
# DEVICE_NUM (default 8), DEVICE_TARGET, RUN_DIR, SAVE_MODEL_PATH, PYTHON, MPIRUN_ARGS (e.g. a
# hostfile for several nodes): see scripts/run_distribute_train_gpu.sh.
# Rank 0 writes the checkpoints ($SAVE_MODEL_PATH/ckpt_0/); add --resume auto to continue every
# rank from the newest of them (several nodes: put SAVE_MODEL_PATH on a folder all nodes see).
# A functional test on CPU with 2 processes and a tiny network (toy data: scripts/make_toy_coco.py):
#   DEVICE_TARGET=CPU DEVICE_NUM=2 bash train_openpose_coco2017_8card.sh IMG JSON MASK none \
#       --max_train_steps 3 --insize 64 --width_mult 0.25 --num_stages 2 --batch_size 1
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$REPO_ROOT/scripts/common.sh" || exit 1

if coco_train_paths "Usage: bash train_openpose_coco2017_8card.sh [IMGPATH_TRAIN JSONPATH_TRAIN MASKPATH_TRAIN VGG_PATH] [--key value ...]" "$@"; then
    shift 4
fi

export DEVICE_NUM=${DEVICE_NUM:-8}
exec bash "$REPO_ROOT/scripts/run_distribute_train_gpu.sh" "$IMGPATH_TRAIN" "$JSONPATH_TRAIN" \
    "$MASKPATH_TRAIN" "$VGG_PATH" "$@"
