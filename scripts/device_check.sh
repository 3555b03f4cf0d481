#!/usr/bin/env bash
# Device check: MindSpore build and device, full-network training at 368 x 368 (batch 10,
# amp_level O0 and O2), eval.py on the COCO sample of ../shared, ONNX export; one JSON line.
#   bash scripts/device_check.sh            # on the GPU machine (under 8 minutes on one GPU)
#   bash scripts/device_check.sh --smoke    # the same path on the CPU with tiny sizes
# Extra arguments go to scripts/device_check.py (--steps N, --out DIR, --shared DIR).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd_repo_root
PYTHON=${PYTHON:-}
default_python
export GLOG_v="${GLOG_v:-2}"
exec "$PYTHON" scripts/device_check.py "$@"
