#!/bin/bash
# Data-parallel OpenPose training with OpenMPI: one process per device, run from the repository
# root (no copy of the code), in the foreground (Ctrl-C stops every rank).
#
#   DEVICE_NUM=8 bash scripts/run_distribute_train_gpu.sh IMGPATH_TRAIN JSONPATH_TRAIN MASKPATH_TRAIN VGG_PATH [train.py args...]
#
# train.py reads rank and group size from OpenMPI (src/parallel/launch.py), so the 8 processes form
# one data-parallel job (the reference read only RANK_SIZE and ran 8 independent jobs).
# VGG_PATH may be "" or "none". Arguments after the fourth go to train.py unchanged.
#
# Environment:
#   DEVICE_NUM       processes (= devices) in all, default 8
#   DEVICE_TARGET    GPU (default), Ascend or CPU (CPU: a functional test run; adds --oversubscribe)
#   PYTHON           interpreter (default: the repo's .venv, else python3)
#   RUN_DIR          folder of this run (default ./runs/distribute_<date>_<pid>): train.log (all
#                    ranks), logs/1/rank.N/stdout (one file per rank), checkpoint/ (unless
#                    SAVE_MODEL_PATH or --save_model_path is given)
#   SAVE_MODEL_PATH  checkpoint folder (default $RUN_DIR/checkpoint/); rank 0 writes ckpt_0/ in it
#                    (only rank 0 writes; --resume auto continues every rank from it: a folder
#                    all nodes see on multi-node runs)
#   MPIRUN           mpirun executable (default: mpirun on PATH)
#   MPIRUN_ARGS      extra mpirun options (hostfile, -x VAR, --mca ...)
#   DRY_RUN=1        print the command instead of running it
#
# Several nodes (same checkout path and Python on every node, data visible to all):
#   # hosts:  node1 slots=8
#   #         node2 slots=8
#   DEVICE_NUM=16 MPIRUN_ARGS="--hostfile hosts -x PATH -x LD_LIBRARY_PATH" \
#       bash scripts/run_distribute_train_gpu.sh IMG JSON MASK VGG
# On GPU/Ascend MindSpore's own OpenMPI path connects the nodes. On CPU the ranks are joined by a
# MindSpore scheduler that rank 0 starts; give its node's address to every rank:
#   DEVICE_TARGET=CPU DEVICE_NUM=4 MPIRUN_ARGS="--hostfile hosts -x OPENPOSE_SCHED_HOST=10.0.0.1" ...
# (optional: -x OPENPOSE_SCHED_PORT=29500; by default rank 0 picks a free port and broadcasts it).
set -o pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh" || exit 1

distributed_train_paths run_distribute_train_gpu.sh "$@"
shift 4

DEVICE_NUM=${DEVICE_NUM:-8}
DEVICE_TARGET=${DEVICE_TARGET:-GPU}
case "$DEVICE_NUM" in
    ''|*[!0-9]*|0) echo "run_distribute_train_gpu.sh: DEVICE_NUM must be a positive integer, got '$DEVICE_NUM'" >&2; exit 2 ;;
esac
default_python
MPIRUN=${MPIRUN:-mpirun}
if [ "${DRY_RUN:-0}" != 1 ] && ! command -v "$MPIRUN" >/dev/null 2>&1; then
    echo "run_distribute_train_gpu.sh: $MPIRUN not found (install OpenMPI: apt-get install openmpi-bin)" >&2
    exit 1
fi

distributed_train_args distribute "$@"

MPI_OPTS=(--allow-run-as-root -n "$DEVICE_NUM" --output-filename "$RUN_DIR/logs" --merge-stderr-to-stdout)
if [ "$DEVICE_TARGET" = CPU ]; then
    MPI_OPTS+=(--oversubscribe --bind-to none)   # a CPU test run: ranks may outnumber cores, and
                                                # each rank uses several cores
fi
# shellcheck disable=SC2206  # MPIRUN_ARGS is split on spaces on purpose
MPI_OPTS+=($MPIRUN_ARGS)
CMD=("$MPIRUN" "${MPI_OPTS[@]}" -x PYTHONUNBUFFERED=1 -x GLOG_v "$PYTHON" "${TRAIN_ARGS[@]}")

LOG_FILE="$RUN_DIR/train.log"
run_distributed_train mpirun "$LOG_FILE" \
    "OpenPose distributed training: $DEVICE_NUM processes ($DEVICE_TARGET, mpirun) from $REPO_ROOT" \
    "log (all ranks): $LOG_FILE" \
    "per-rank logs:   $RUN_DIR/logs/1/rank.N/stdout" \
    "checkpoints:     ${SAVE_MODEL_PATH%/}/ckpt_0/ (rank 0 only)"
