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

if [ $# -lt 4 ]; then
    echo "Usage: bash scripts/run_standalone_train.sh IMGPATH_TRAIN JSONPATH_TRAIN MASKPATH_TRAIN VGG_PATH [train.py args...]" >&2
    exit 2
fi

abspath() {   # absolute path of $1 relative to the caller's directory ("" stays "")
    if [ -z "$1" ] || [ "$1" = "none" ] || [ "${1:0:1}" = "/" ]; then echo "$1"; else echo "$(pwd)/$1"; fi
}

IMGPATH_TRAIN=$(abspath "$1")
JSONPATH_TRAIN=$(abspath "$2")
MASKPATH_TRAIN=$(abspath "$3")
VGG_PATH=$(abspath "$4")
shift 4

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT" || exit 1

if [ -z "$PYTHON" ]; then
    if [ -x "$REPO_ROOT/.venv/bin/python" ]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
export DEVICE_ID=${DEVICE_ID:-0}
export PYTHONUNBUFFERED=1
export GLOG_v=${GLOG_v:-2}   # MindSpore log level: 2 keeps warnings, drops INFO noise (0 = debug)

# where checkpoints go: --save_model_path from the extra arguments, else $SAVE_MODEL_PATH
SAVE_MODEL_PATH=${SAVE_MODEL_PATH:-./checkpoint/}
SAVE_ARGS=(--save_model_path "$SAVE_MODEL_PATH")
prev=""
for arg in "$@"; do
    case "$arg" in
        --save_model_path=*) SAVE_MODEL_PATH="${arg#*=}"; SAVE_ARGS=() ;;
    esac
    if [ "$prev" = "--save_model_path" ]; then SAVE_MODEL_PATH="$arg"; SAVE_ARGS=(); fi
    prev="$arg"
done

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
