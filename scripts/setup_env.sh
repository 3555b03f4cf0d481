#!/usr/bin/env bash
# Create ./.venv (if missing) and install the project's requirements into it.
#   bash scripts/setup_env.sh            # mindspore==2.8.0 + the rest
#   OPENPOSE_OWN_MINDSPORE=1 bash scripts/setup_env.sh
#                                        # keep the platform's MindSpore (IXUCA SDK, Ascend):
#                                        # venv with system site-packages, only requirements-base.txt
# OpenMPI (mpirun) is installed with apt-get when missing and we are root; set
# OPENPOSE_SKIP_APT=1 to skip that.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ "${OPENPOSE_SKIP_APT:-0}" != 1 ] && ! command -v mpirun >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[setup] installing openmpi-bin (mpirun) with apt-get"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin >/dev/null
    else
        echo "[setup] note: mpirun not found; install OpenMPI for multi-process training (msrun works without it)"
    fi
fi

if [ ! -x .venv/bin/python ]; then
    if [ "${OPENPOSE_OWN_MINDSPORE:-0}" = 1 ]; then
        "$PYTHON" -m venv --system-site-packages .venv
    else
        "$PYTHON" -m venv .venv
    fi
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${OPENPOSE_OWN_MINDSPORE:-0}" = 1 ]; then
    .venv/bin/python -m pip install -q -r requirements-base.txt
else
    .venv/bin/python -m pip install -q -r requirements.txt
fi
.venv/bin/python -c "import mindspore, numpy, cv2, pycocotools; print('[setup] mindspore', mindspore.__version__, '| numpy', numpy.__version__, '| opencv', cv2.__version__)"
