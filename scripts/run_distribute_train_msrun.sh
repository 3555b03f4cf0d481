#!/bin/bash
# Data-parallel OpenPose training with MindSpore's msrun launcher (no OpenMPI needed), run from the
# repository root (no copy of the code), in the foreground.
#
#   DEVICE_NUM=8 bash scripts/run_distribute_train_msrun.sh IMGPATH_TRAIN JSONPATH_TRAIN MASKPATH_TRAIN VGG_PATH [train.py args...]
#
# msrun starts a scheduler and DEVICE_NUM workers (each runs train.py; the scheduler runs it too
# and stays inside init_distributed until the job ends). VGG_PATH may be "" or "none". Arguments
# after the fourth go to train.py unchanged.
#
# Environment:
#   DEVICE_NUM        workers on this node, default 8
#   WORKER_NUM        workers in all nodes (default DEVICE_NUM)
#   MASTER_ADDR       scheduler address (default 127.0.0.1; several nodes: node 0's address)
#   MASTER_PORT       scheduler port (default: a free port of this machine)
#   NODE_RANK         index of this node (default 0)
#   DEVICE_TARGET     GPU (default), Ascend or CPU
#   PYTHON            interpreter (default: the repo's .venv, else python3); msrun starts workers
#                     with a bare "python", so its folder is put first on PATH
#   RUN_DIR           folder of this run (default ./runs/msrun_<date>_<pid>): msrun.log,
#                     logs/worker_N.log, logs/scheduler.log, checkpoint/
#   SAVE_MODEL_PATH   checkpoint folder (default $RUN_DIR/checkpoint/); rank 0 writes ckpt_0/ in it
#                     (only rank 0 writes; --resume auto continues every rank from it: a folder
#                     all nodes see on multi-node runs)
#   DRY_RUN=1         print the command instead of running it
#
# Two nodes of 8 devices (run on each, same MASTER_ADDR/MASTER_PORT):
#   node 0: WORKER_NUM=16 DEVICE_NUM=8 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 bash scripts/run_distribute_train_msrun.sh ...
#   node 1: WORKER_NUM=16 DEVICE_NUM=8 NODE_RANK=1 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 bash scripts/run_distribute_train_msrun.sh ...
set -o pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh" || exit 1

distributed_train_paths run_distribute_train_msrun.sh "$@"
shift 4

DEVICE_NUM=${DEVICE_NUM:-8}
WORKER_NUM=${WORKER_NUM:-$DEVICE_NUM}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DEVICE_TARGET=${DEVICE_TARGET:-GPU}
for pair in "DEVICE_NUM=$DEVICE_NUM" "WORKER_NUM=$WORKER_NUM" "NODE_RANK=$NODE_RANK"; do
    case "${pair#*=}" in
        ''|*[!0-9]*) echo "run_distribute_train_msrun.sh: ${pair%%=*} must be a non-negative integer, got '${pair#*=}'" >&2; exit 2 ;;
    esac
done
default_python
PY_DIR=$(dirname "$(command -v "$PYTHON" || echo "$PYTHON")")
if [ ! -x "$PY_DIR/python" ]; then
    echo "run_distribute_train_msrun.sh: msrun runs 'python', but $PY_DIR has no 'python' (set PYTHON to a venv's python)" >&2
    exit 1
fi
export PATH="$PY_DIR:$PATH"
MSRUN=$PY_DIR/msrun
[ -x "$MSRUN" ] || MSRUN=$(command -v msrun)
if [ -z "$MSRUN" ]; then
    echo "run_distribute_train_msrun.sh: msrun not found (it comes with MindSpore >= 2.3)" >&2
    exit 1
fi
MASTER_PORT=${MASTER_PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')}

distributed_train_args msrun "$@"

export PYTHONUNBUFFERED=1
CMD=("$MSRUN" --worker_num="$WORKER_NUM" --local_worker_num="$DEVICE_NUM"
     --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" --node_rank="$NODE_RANK"
     --log_dir="$RUN_DIR/logs" --join=True
     "${TRAIN_ARGS[@]}")

LOG_FILE="$RUN_DIR/msrun.log"
run_distributed_train msrun "$LOG_FILE" \
    "OpenPose distributed training: $DEVICE_NUM of $WORKER_NUM workers on this node ($DEVICE_TARGET, msrun, scheduler $MASTER_ADDR:$MASTER_PORT)" \
    "log: $LOG_FILE; per-worker logs: $RUN_DIR/logs/worker_N.log" \
    "checkpoints: ${SAVE_MODEL_PATH%/}/ckpt_0/ (rank 0 only)"
