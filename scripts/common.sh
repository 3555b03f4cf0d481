# shellcheck shell=bash
# Shared pieces of the training launch scripts. Source it, do not run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/common.sh"     (scripts in scripts/)
#   source "$REPO_ROOT/scripts/common.sh"                  (scripts in the repository root)
#
# It defines functions only (nothing runs when it is sourced):
#   abspath PATH                    absolute path of PATH relative to the current directory
#   train_paths_from_args USAGE ARG...
#                                   the four training paths from the first four arguments
#   cd_repo_root                    set REPO_ROOT and cd into it
#   default_python                  set PYTHON unless it is set (the repo's .venv, else python3)
#   save_model_args ARG...          set SAVE_ARGS (and SAVE_MODEL_PATH) from train.py's arguments
#   coco_train_paths USAGE ARG...   the four training paths for the COCO 2017 recipes
#   distributed_train_paths SCRIPT ARG...
#                                   run_distribute_train_*.sh: paths from the arguments, cd to the root
#   distributed_train_args RUN_PREFIX ARG...
#                                   run_distribute_train_*.sh: RUN_DIR, GLOG_v and train.py's arguments
#   run_distributed_train LAUNCHER LOG_FILE LINE...
#                                   run_distribute_train_*.sh: run (or print) CMD, log it, exit

# abspath PATH: absolute path of PATH relative to the caller's directory ("" and "none" stay).
abspath() {
    if [ -z "$1" ] || [ "$1" = "none" ] || [ "${1:0:1}" = "/" ]; then echo "$1"; else echo "$(pwd)/$1"; fi
}

# train_paths_from_args USAGE ARG...: with fewer than four ARGs, print USAGE on stderr and exit 2;
# else set IMGPATH_TRAIN, JSONPATH_TRAIN, MASKPATH_TRAIN and VGG_PATH to the absolute paths of the
# first four (see abspath). The caller then drops them with "shift 4".
train_paths_from_args() {
    local usage=$1
    shift
    if [ $# -lt 4 ]; then
        echo "$usage" >&2
        exit 2
    fi
    IMGPATH_TRAIN=$(abspath "$1")
    JSONPATH_TRAIN=$(abspath "$2")
    MASKPATH_TRAIN=$(abspath "$3")
    VGG_PATH=$(abspath "$4")
}

# cd_repo_root: set REPO_ROOT to the repository root (the folder above scripts/) and cd into it
# (exit 1 if that fails).
cd_repo_root() {
    REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    cd "$REPO_ROOT" || exit 1
}

# default_python: unless PYTHON is set, set it to $REPO_ROOT/.venv/bin/python when that is
# executable, else to python3.
default_python() {
    if [ -z "$PYTHON" ]; then
        if [ -x "$REPO_ROOT/.venv/bin/python" ]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON=python3; fi
    fi
}

# save_model_args ARG...: SAVE_ARGS=(--save_model_path "$SAVE_MODEL_PATH"), unless the ARGs (the
# extra train.py arguments) hold --save_model_path VALUE or --save_model_path=VALUE: that one wins,
# SAVE_ARGS is then empty and SAVE_MODEL_PATH is set to VALUE.
save_model_args() {
    local arg prev=""
    SAVE_ARGS=(--save_model_path "$SAVE_MODEL_PATH")
    for arg in "$@"; do
        case "$arg" in
            --save_model_path=*) SAVE_MODEL_PATH="${arg#*=}"; SAVE_ARGS=() ;;
        esac
        if [ "$prev" = "--save_model_path" ]; then SAVE_MODEL_PATH="$arg"; SAVE_ARGS=(); fi
        prev="$arg"
    done
}

# coco_train_paths USAGE ARG...: set IMGPATH_TRAIN, JSONPATH_TRAIN, MASKPATH_TRAIN and VGG_PATH for
# the COCO 2017 recipes. Defaults (each kept when already set in the environment; VGG_PATH also
# when set to ""): $COCO_DIR/train2017, $COCO_DIR/annotations/person_keypoints_train2017.json,
# $COCO_DIR/ignore_mask_train and /home/vgg19-0-97_5004.ckpt, with COCO_DIR default /home/coco2017.
# When there are four or more ARGs and the first does not start with --, the first four are the
# paths: returns 0, and the caller drops them with "shift 4". Otherwise returns 1, except that a
# first ARG that does not start with -- prints USAGE on stderr and exits 2.
coco_train_paths() {
    local usage=$1
    shift
    COCO_DIR=${COCO_DIR:-/home/coco2017}
    IMGPATH_TRAIN=${IMGPATH_TRAIN:-$COCO_DIR/train2017}
    JSONPATH_TRAIN=${JSONPATH_TRAIN:-$COCO_DIR/annotations/person_keypoints_train2017.json}
    MASKPATH_TRAIN=${MASKPATH_TRAIN:-$COCO_DIR/ignore_mask_train}
    VGG_PATH=${VGG_PATH-/home/vgg19-0-97_5004.ckpt}

    if [ $# -ge 4 ] && [ "${1:0:2}" != "--" ]; then
        IMGPATH_TRAIN=$1; JSONPATH_TRAIN=$2; MASKPATH_TRAIN=$3; VGG_PATH=$4
        return 0
    elif [ $# -gt 0 ] && [ "${1:0:2}" != "--" ]; then
        echo "$usage" >&2
        exit 2
    fi
    return 1
}

# distributed_train_paths SCRIPT ARG...: the four training paths from the first four ARGs (see
# train_paths_from_args; the usage line names scripts/SCRIPT), RUN_DIR and SAVE_MODEL_PATH made
# absolute when set, then cd_repo_root. The caller then drops the paths with "shift 4".
distributed_train_paths() {
    local usage="Usage: DEVICE_NUM=8 bash scripts/$1"
    shift
    train_paths_from_args "$usage IMGPATH_TRAIN JSONPATH_TRAIN MASKPATH_TRAIN VGG_PATH [train.py args...]" "$@"
    RUN_DIR=${RUN_DIR:+$(abspath "$RUN_DIR")}
    SAVE_MODEL_PATH=${SAVE_MODEL_PATH:+$(abspath "$SAVE_MODEL_PATH")}
    cd_repo_root
}

# distributed_train_args RUN_PREFIX ARG...: default RUN_DIR to $REPO_ROOT/runs/RUN_PREFIX_<date>_<pid>
# and SAVE_MODEL_PATH to $RUN_DIR/checkpoint/, export GLOG_v (default 2), and set TRAIN_ARGS to
# "train.py" and its arguments: DEVICE_TARGET, the four paths, SAVE_ARGS (see save_model_args)
# and the ARGs (the extra train.py arguments).
distributed_train_args() {
    local prefix=$1
    shift
    RUN_DIR=${RUN_DIR:-$REPO_ROOT/runs/${prefix}_$(date +%Y%m%d_%H%M%S)_$$}
    SAVE_MODEL_PATH=${SAVE_MODEL_PATH:-$RUN_DIR/checkpoint/}
    save_model_args "$@"   # --save_model_path among the extra arguments wins
    export GLOG_v=${GLOG_v:-2}   # MindSpore log level: 2 keeps warnings, drops INFO noise (0 = debug)
    TRAIN_ARGS=(train.py
                --device_target "$DEVICE_TARGET"
                --imgpath_train "$IMGPATH_TRAIN"
                --jsonpath_train "$JSONPATH_TRAIN"
                --maskpath_train "$MASKPATH_TRAIN"
                --vgg_path "$VGG_PATH"
                "${SAVE_ARGS[@]}" "$@")
}

# run_distributed_train LAUNCHER LOG_FILE LINE...: with DRY_RUN=1 print the command CMD (an array,
# shell-quoted) and exit 0. Otherwise create RUN_DIR, print the LINEs, run CMD with its output
# also written to LOG_FILE, print LAUNCHER's exit status and exit with it (the caller sets
# "set -o pipefail").
run_distributed_train() {
    local launcher=$1 log_file=$2 status
    shift 2
    if [ "${DRY_RUN:-0}" = 1 ]; then
        printf '%q ' "${CMD[@]}"; echo
        exit 0
    fi
    mkdir -p "$RUN_DIR"
    printf '%s\n' "$@"
    "${CMD[@]}" 2>&1 | tee "$log_file"
    status=$?
    echo "$launcher exited with status $status; logs: $RUN_DIR; checkpoints: ${SAVE_MODEL_PATH%/}/ckpt_0/"
    exit $status
}
