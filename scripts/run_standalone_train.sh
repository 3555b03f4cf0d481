#!/bin/bash
# One-device OpenPose training, run from the repository root (no copy of the code).
#
#   bash scripts/run_standalone_train.sh IMGPATH_TRAIN JSONPATH_TRAIN MASKPATH_TRAIN VGG_PATH [train.py args...]
#
# VGG_PATH may be "" or "none" (the VGG layers then start from random weights). Arguments after
# the fourth go to train.py unchanged (e.g. --batch_size 8 --resume auto --max_train_steps 1000).
# Environment: PYTHON (default: the repo's .venv, else python3), DEVICE_ID (default 0),
# LOG_DIR (default ./runs), SAVE_MODEL_PATH (default ./checkpoint/, unless --save_model_path given).
# The output goes to the console and to $LOG_DIR/train_<date>.log.
set -o pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh" || exit 1

train_paths_from_args "Usage: bash scripts/run_standalone_train.sh IMGPATH_TRAIN JSONPATH_TRAIN MASKPATH_TRAIN VGG_PATH [train.py args...]" "$@"
shift 4

cd_repo_root
default_python
export DEVICE_ID=${DEVICE_ID:-0}
export PYTHONUNBUFFERED=1
export GLOG_v=${GLOG_v:-2}   # MindSpore log level: 2 keeps warnings, drops INFO noise (0 = debug)

# where checkpoints go: --save_model_path from the extra arguments, else $SAVE_MODEL_PATH
SAVE_MODEL_PATH=${SAVE_MODEL_PATH:-./checkpoint/}
save_model_args "$@"

LOG_DIR=${LOG_DIR:-./runs}
mkdir -p "$LOG_DIR"
LOG_FILE="$LOG_DIR/train_$(date +%Y%m%d_%H%M%S).log"
echo "OpenPose standalone training (device $DEVICE_ID) from $REPO_ROOT"
echo "log: $LOG_FILE"
echo "checkpoints: ${SAVE_MODEL_PATH%/}/ckpt_0/"

"$PYTHON" train.py \
    --imgpath_train "$IMGPATH_TRAIN" \
    --jsonpath_train "$JSONPATH_TRAIN" \
    --maskpath_train "$MASKPATH_TRAIN" \
    --vgg_path "$VGG_PATH" \
    "${SAVE_ARGS[@]}" "$@" 2>&1 | tee "$LOG_FILE"
status=$?
echo "train.py exited with status $status; log: $LOG_FILE; checkpoints: ${SAVE_MODEL_PATH%/}/ckpt_0/"
exit $status
