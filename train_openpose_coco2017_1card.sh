#!/bin/bash
# Train OpenPose on COCO 2017 on one device (the reference's 1-card recipe).
#
#   bash train_openpose_coco2017_1card.sh [IMGPATH_TRAIN JSONPATH_TRAIN MASKPATH_TRAIN VGG_PATH] [train.py args...]
#
# Without the four paths they come from the environment, defaulting to the reference layout:
#   COCO_DIR        /home/coco2017
#   IMGPATH_TRAIN   $COCO_DIR/train2017
#   JSONPATH_TRAIN  $COCO_DIR/annotations/person_keypoints_train2017.json
#   MASKPATH_TRAIN  $COCO_DIR/ignore_mask_train   (make it with scripts/gen_ignore_mask.py)
#   VGG_PATH        /home/vgg19-0-97_5004.ckpt    ("none": random VGG)
# Further arguments (those starting with --) go to train.py, e.g. --resume auto.
# See scripts/run_standalone_train.sh for LOG_DIR, SAVE_MODEL_PATH, PYTHON and DEVICE_ID.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$REPO_ROOT/scripts/common.sh" || exit 1

if coco_train_paths "Usage: bash train_openpose_coco2017_1card.sh [IMGPATH_TRAIN JSONPATH_TRAIN MASKPATH_TRAIN VGG_PATH] [--key value ...]" "$@"; then
    shift 4
fi

exec bash "$REPO_ROOT/scripts/run_standalone_train.sh" "$IMGPATH_TRAIN" "$JSONPATH_TRAIN" \
    "$MASKPATH_TRAIN" "$VGG_PATH" "$@"
