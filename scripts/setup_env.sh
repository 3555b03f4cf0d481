#!/usr/bin/env bash
# Create a virtual environment (default ./.venv, if missing) and install the project into it.
#   bash scripts/setup_env.sh            # mindspore==2.8.0 + requirements, exact versions of
#                                        # constraints.txt (with Python 3.11, where it was resolved)
#   OPENPOSE_OWN_MINDSPORE=1 PYTHON=/path/to/python bash scripts/setup_env.sh
#                                        # keep the platform's MindSpore (IXUCA SDK, Ascend): venv
#                                        # with system site-packages, only requirements-base.txt
#                                        # (+ requirements-dev.txt)
#   PYTHON=python3.9 MINDSPORE_VERSION=2.0.0 VENV=.venv-ms2.0 bash scripts/setup_env.sh
#                                        # another MindSpore release from the package index
# Environment:
#   PYTHON               interpreter the venv is made from (default python3)
#   VENV                 venv folder (default .venv)
#   MINDSPORE_VERSION    MindSpore release to install (default: the pin of requirements.txt)
#   CONSTRAINTS          pip constraints file; default constraints.txt for the default release
#                        on Python 3.11, none otherwise; "none" applies none
#   OPENPOSE_DEV=0       skip requirements-dev.txt (pytest, ruff)
#   OPENPOSE_SKIP_APT=1  do not apt-get install OpenMPI (mpirun) when it is missing
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
OWN=${OPENPOSE_OWN_MINDSPORE:-0}
DEFAULT_MS=$(sed -n 's/^mindspore==\([^ ]*\).*/\1/p' requirements.txt)
MINDSPORE_VERSION=${MINDSPORE_VERSION:-$DEFAULT_MS}
PY=$VENV/bin/python
START=$(date +%s)

die() { echo "[setup] error: $*" >&2; exit 1; }
command -v "$PYTHON" >/dev/null 2>&1 || die "PYTHON=$PYTHON not found (docs/platforms.md, 'Installation details')"

if [ "${OPENPOSE_SKIP_APT:-0}" != 1 ] && ! command -v mpirun >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[setup] installing openmpi-bin (mpirun) with apt-get"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin >/dev/null
    else
        echo "[setup] note: mpirun not found; install OpenMPI for multi-process training (msrun works without it)"
    fi
fi

if [ ! -x "$PY" ]; then
    if [ "$OWN" = 1 ]; then
        "$PYTHON" -m venv --system-site-packages "$VENV"
    else
        "$PYTHON" -m venv "$VENV"
    fi
fi
"$PY" -m pip install -q --upgrade pip

REQS=()
if [ "$OWN" = 1 ]; then
    "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('mindspore') is None)" \
        || die "OPENPOSE_OWN_MINDSPORE=1, but $PYTHON has no mindspore (install the platform's MindSpore first, or point PYTHON at its interpreter)"
    REQS+=(-r requirements-base.txt)
elif [ "$MINDSPORE_VERSION" = "$DEFAULT_MS" ]; then
    REQS+=(-r requirements.txt)
else
    REQS+=("mindspore==$MINDSPORE_VERSION" -r requirements-base.txt)
fi
[ "${OPENPOSE_DEV:-1}" = 1 ] && REQS+=(-r requirements-dev.txt)

CONSTRAINTS=${CONSTRAINTS:-auto}
if [ "$CONSTRAINTS" = auto ]; then
    CONSTRAINTS=none
    if [ "$OWN" != 1 ] && [ "$MINDSPORE_VERSION" = "$DEFAULT_MS" ] \
            && "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        CONSTRAINTS=constraints.txt
    fi
fi
[ "$CONSTRAINTS" = none ] || { [ -f "$CONSTRAINTS" ] || die "CONSTRAINTS=$CONSTRAINTS: no such file"; REQS+=(-c "$CONSTRAINTS"); }

echo "[setup] $PY: pip install ${REQS[*]}"
"$PY" -m pip install -q "${REQS[@]}"

# MindSpore releases that still use Image.ANTIALIAS (2.0) need Pillow < 10 (detected, not assumed)
ERRLOG=$(mktemp)
PILLOW=$("$PY" -m src.compat --pillow-requirement 2>"$ERRLOG") || { cat "$ERRLOG" >&2; rm -f "$ERRLOG"; die "the Pillow check failed"; }
rm -f "$ERRLOG"
if [ -n "$PILLOW" ]; then
    echo "[setup] this MindSpore needs $PILLOW: installing it"
    "$PY" -m pip install -q "$PILLOW"
fi

"$PY" -c "import sys, mindspore, numpy, cv2, pycocotools; print('[setup] python', sys.version.split()[0], '| mindspore', mindspore.__version__, '| numpy', numpy.__version__, '| opencv', cv2.__version__)"
echo "[setup] $VENV ready in $(( $(date +%s) - START )) s"
